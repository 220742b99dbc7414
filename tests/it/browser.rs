//! The admin portal in a real browser: headless Chromium driven over WebDriver (Debian's
//! `chromium` and `chromium-driver`, which `.ci/run` installs). Screenshots of each step
//! are saved under `target/browser-screenshots/` as test artifacts.
//!
//! 1. A fresh gateway over HTTPS: first-run setup from the setup link (its fragment read
//!    by the page's script), IdP connection setup, a license and a group mapping.
//! 2. The demo: a Mac activation through the demo IdP entirely in the browser (its
//!    auto-posting form included), the admin portal by the one-time link, the user's
//!    detail with the diagnosis, and the device's deactivation.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::activation::client;
use crate::kit::wait::poll_until;
use crate::support::{TestServer, server};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    shots: PathBuf,
}

impl Browser {
    fn start(name: &str) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        crate::kit::tools::require(
            "chromedriver",
            "Debian packages chromium and chromium-driver",
        );
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver) must be installed; .ci/run installs it");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        crate::kit::wait::wait_until(Duration::from_secs(20), "chromedriver to start", || {
            agent.get(&format!("{base}/status")).call().is_ok()
        });
        let mut options = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1100"]
        });
        // Debian's Chromium; elsewhere chromedriver finds Chrome itself.
        let binary =
            std::env::var("SEATGATE_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        if std::path::Path::new(&binary).exists() {
            options["binary"] = json!(binary);
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": options
        }}});
        let mut b = Browser {
            driver,
            base,
            session: String::new(),
            agent,
            shots: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/browser-screenshots")
                .join(name),
        };
        let created = b.call("POST", "/session", Some(caps));
        b.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_string();
        std::fs::create_dir_all(&b.shots).expect("screenshot dir");
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let response = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, body) => self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.unwrap_or(json!({})).to_string()),
        };
        let mut response = response.unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let text = response
            .body_mut()
            .read_to_string()
            .expect("WebDriver body");
        let value: Value = serde_json::from_str(&text).expect("WebDriver JSON");
        if let Some(error) = value["value"]["error"].as_str() {
            panic!(
                "WebDriver {method} {path}: {error}: {}",
                value["value"]["message"]
            );
        }
        value["value"].clone()
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    fn go(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({ "url": url })));
    }

    fn find(&self, css: &str) -> String {
        let url = format!("{}{}", self.base, self.s("/element"));
        let mut found = None;
        let appeared = poll_until(Duration::from_secs(10), || {
            let mut r = self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(json!({"using": "css selector", "value": css}).to_string())
                .expect("find");
            let v: Value =
                serde_json::from_str(&r.body_mut().read_to_string().expect("body")).expect("json");
            found = v["value"][ELEMENT].as_str().map(str::to_string);
            found.is_some()
        });
        assert!(
            appeared,
            "no element {css:?} on {}:\n{}",
            self.url(),
            self.source()
        );
        found.unwrap_or_default()
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{id}/click")),
            Some(json!({})),
        );
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.call(
            "POST",
            &self.s(&format!("/element/{id}/clear")),
            Some(json!({})),
        );
        self.call(
            "POST",
            &self.s(&format!("/element/{id}/value")),
            Some(json!({ "text": text })),
        );
    }

    /// Sets a field's value directly (long texts such as metadata XML).
    fn set_value(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": "arguments[0].value = arguments[1];", "args": [{ELEMENT: id}, text]})),
        );
    }

    fn value_of(&self, css: &str) -> String {
        let id = self.find(css);
        self.call(
            "GET",
            &self.s(&format!("/element/{id}/property/value")),
            None,
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    /// Runs `script` in the page and returns what it returns.
    fn exec(&self, script: &str) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            Some(json!({"script": script, "args": [null]})),
        )
    }

    fn url(&self) -> String {
        self.call("GET", &self.s("/url"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn source(&self) -> String {
        self.call("GET", &self.s("/source"), None)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits until the page holds `text`.
    fn wait_for(&self, text: &str) {
        let appeared = poll_until(Duration::from_secs(15), || self.source().contains(text));
        assert!(
            appeared,
            "{text:?} never appeared on {}:\n{}",
            self.url(),
            self.source()
        );
    }

    fn screenshot(&self, name: &str) {
        use base64::Engine;
        let png = self.call("GET", &self.s("/screenshot"), None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("png");
        std::fs::write(self.shots.join(format!("{name}.png")), bytes).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .agent
                .delete(&format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn base(s: &TestServer) -> String {
    let scheme = if s.tls { "https" } else { "http" };
    format!("{scheme}://127.0.0.1:{}", s.addr.port())
}

#[test]
#[ignore = "needs Chromium and chromedriver; scripts/test runs it"]
fn browser_first_run_setup_idp_connection_license_and_mapping() {
    let s = server().start();
    assert!(s.wait_for_log("first-run setup", Duration::from_secs(5)));
    let link = std::fs::read_to_string(s.data_dir.join("setup-link.txt")).expect("link");
    let link = link.lines().last().expect("link").to_string();
    let b = Browser::start("setup");

    // First-run setup: the script moves the fragment's token into the form.
    b.go(&link);
    b.wait_for("Set up seatgate");
    assert!(
        !b.value_of("#token").is_empty(),
        "the setup code was filled in from the link"
    );
    assert!(
        !b.url().contains('#'),
        "the token is removed from the address bar"
    );
    let code = b.value_of("#token");
    // A refused form keeps everything but the passwords (issue 16 item 1).
    b.set_value("#username", "owner");
    b.type_into("#password", "correct horse battery");
    b.type_into("#confirm", "correct horse batterY");
    b.click("form[action='/setup'] button[type=submit]");
    b.wait_for("The two passwords differ.");
    assert_eq!(b.value_of("#token"), code, "the setup code is kept");
    assert_eq!(b.value_of("#username"), "owner");
    assert!(b.value_of("#password").is_empty());
    b.screenshot("01a-setup-refused");
    b.type_into("#password", "correct horse battery");
    b.type_into("#confirm", "correct horse battery");
    b.screenshot("01-setup");
    b.click("form[action='/setup'] button[type=submit]");
    b.wait_for("seatgate is set up");
    assert!(b.source().contains("Download the CA certificate"));
    b.screenshot("02-welcome-tls");

    // IdP connection: preset and name, the values to copy, then the metadata.
    b.click("a[href='/admin/idp/new']");
    b.wait_for("Connect an identity provider");
    b.click("select[name=preset] option[value=okta]");
    b.type_into("input[name=name]", "Contoso Okta");
    b.click("form[action='/admin/idp/new'] button");
    b.wait_for("/saml/acs/contoso-okta");
    // Every value to paste into the IdP has a Copy button (issue 16 item 6).
    b.wait_for("copy-button");
    let buttons = b.exec("return document.querySelectorAll('dl.copy button.copy-button').length");
    let values = b.exec("return document.querySelectorAll('dl.copy code.copy').length");
    assert_eq!(buttons, values, "one button per value");
    assert!(values.as_u64() >= Some(5), "{values}");
    b.click("dl.copy button.copy-button");
    let copied = poll_until(Duration::from_secs(5), || {
        let said =
            b.exec("return document.querySelector('dl.copy button.copy-button').textContent");
        said == "Copied" || said == "Selected: press Cmd+C"
    });
    assert!(copied, "the button says what it did");
    let entity = b.exec("return document.querySelector('dl.copy code.copy').textContent");
    let said = b.exec("return document.querySelector('dl.copy button.copy-button').textContent");
    if said != "Copied" {
        // No clipboard permission (headless): the value is selected for Cmd+C instead.
        let selected = b.exec("return window.getSelection().toString()");
        assert_eq!(selected, entity, "the value is selected");
    }
    b.screenshot("03-idp-values-to-copy");
    let idp = crate::saml::TestIdp::new("http://www.okta.com/exk1contoso");
    b.type_into("#domains", "contoso.com");
    b.set_value("#metadata_xml", &idp.metadata());
    b.click("form[action='/admin/idp'] button[type=submit]");
    b.wait_for("What seatgate knows about the IdP");
    assert!(b.url().ends_with("/admin/idp/contoso-okta"), "{}", b.url());
    b.screenshot("04-idp-connection");

    // A license, then a mapping of a group to its primary pool.
    b.click("a[href='/admin/licenses']");
    b.wait_for("Register a license");
    b.type_into(
        "form[action='/admin/licenses'] input[name=product]",
        "Parallels Desktop",
    );
    b.type_into("form[action='/admin/licenses'] input[name=seats]", "10");
    b.click("form[action='/admin/licenses'] button");
    b.wait_for("Primary pool");
    b.type_into(
        "form[action='/admin/mappings'] input[name=group]",
        "Engineers",
    );
    b.click("form[action='/admin/mappings'] select[name=role] option[value^='primary:']");
    b.click("form[action='/admin/mappings'] button");
    b.wait_for("Remove");
    b.screenshot("05-license-and-mapping");

    // Issue 17: a license key shown once with its Copy button, the Deploy page and an
    // invitation, in a real browser (the pages' CSP lets the portal's script run).
    b.click("a[href='/admin/keys']");
    b.wait_for("Create a license key");
    b.type_into("form[action='/admin/keys'] input[name=devices]", "25");
    b.type_into("form[action='/admin/keys'] input[name=name]", "Lab 3");
    b.click("form[action='/admin/keys'] button");
    b.wait_for("shown only once");
    let key = b.exec("return document.querySelector('code.copy.token').textContent");
    assert!(key.as_str().is_some_and(|k| k.starts_with("SGK-")), "{key}");
    b.wait_for("copy-button");
    b.screenshot("06-license-key-shown-once");
    b.click("a[href='/admin/deploy']");
    b.wait_for("Configuration profile");
    assert!(
        b.source().contains("contoso.com"),
        "the profile names the IdP's domain"
    );
    b.screenshot("07-deploy");
    b.click("a[href='/admin/invitations']");
    b.wait_for("Invitation email");
    b.type_into(
        "form[action='/admin/invitations'] textarea[name=addresses]",
        "ryan@contoso.com, not-an-address",
    );
    b.click("form[action='/admin/invitations'] button");
    b.wait_for("Invited 1 person");
    assert!(
        b.source().contains("No mail server is set"),
        "the page says mail waits"
    );
    b.screenshot("08-invitations");
    let (_, maps, _) = s.cli(&["group-map", "list"]);
    assert!(maps.contains("Engineers"), "{maps}");
    let (_, list, _) = s.cli(&["license", "list"]);
    assert!(
        list.contains("Parallels Desktop") && list.contains("of 10"),
        "{list}"
    );
}

#[test]
#[ignore = "needs Chromium and chromedriver; scripts/test runs it"]
fn browser_demo_activation_user_detail_and_device_deactivation() {
    let s = server().demo().start();
    assert!(s.wait_for_log("Break-glass admin:", Duration::from_secs(20)));
    let url = base(&s);
    let b = Browser::start("demo");

    // A Mac asks to be activated; the user finishes in the browser.
    let state = tempfile::tempdir().expect("tmp");
    let run = client(
        state.path(),
        &[
            "activate",
            "--server",
            &url,
            "--email",
            "alice@acme.example",
        ],
    );
    let activation = run.browser_url();
    b.go(&activation);
    b.wait_for("Continue with single sign-on");
    b.screenshot("01-activation-confirm");
    b.click("button[type=submit]");
    b.wait_for("Demo identity provider");
    b.screenshot("02-demo-idp");
    b.click("tr.highlight button, input[value='alice@acme.example'] ~ button");
    // The demo IdP's page posts the assertion on its own (same-origin script).
    b.wait_for("ctivated");
    b.screenshot("03-activated");
    let (ok, out) = run.finish();
    assert!(ok, "{out}");

    // The admin portal by the printed one-time link; Alice's detail; her device.
    let link = s
        .log()
        .lines()
        .find(|l| l.contains("/admin/login/link?token="))
        .expect("link")
        .trim()
        .to_string();
    b.go(&link);
    b.wait_for("Overview");
    b.click("a[href='/admin/users']");
    b.type_into("#q", "alice");
    b.click("form.search button");
    b.wait_for("alice@acme.example");
    b.screenshot("04-users");
    b.click("td a[href^='/admin/users/']");
    b.wait_for("Diagnosis");
    assert!(b.source().contains("it would succeed"), "{}", b.source());
    b.screenshot("05-user-detail");
    // History reads as sentences, times in the browser's zone with UTC on hover (item 2).
    assert!(
        b.source().contains("alice@acme.example activated"),
        "{}",
        b.source()
    );
    let shown = b.exec("var t = document.querySelector('time.local'); return [t.textContent, t.title, t.getAttribute('datetime')]");
    let datetime = shown[2].as_str().expect("datetime");
    assert_ne!(shown[0].as_str(), Some(datetime), "localized: {shown}");
    assert_eq!(
        shown[1].as_str(),
        Some(format!("{datetime} (UTC)").as_str())
    );
    // Deactivating asks for confirmation, then says what it did and when the Mac stops.
    b.click("td details summary");
    b.click("form[action$='/deactivate'] input[name=confirm]");
    b.click("form[action$='/deactivate'] button");
    b.wait_for("DEACTIVATED");
    assert!(
        b.source()
            .contains("revoked on the server. The Mac stops at its next renewal"),
        "{}",
        b.source()
    );
    b.screenshot("06-device-deactivated");
    // The audit log reads as sentences (issue 16 item 2).
    b.click("a[href='/admin/audit']");
    b.wait_for("demo-admin released the device");
    b.screenshot("07-audit-log");

    // The client learns at its next renewal.
    let renew = std::process::Command::new(env!("CARGO_BIN_EXE_seatgate"))
        .args(["client", "--state-dir"])
        .arg(state.path())
        .arg("renew")
        .output()
        .expect("renew");
    assert!(!renew.status.success());
    let said = String::from_utf8_lossy(&renew.stderr).to_string()
        + &String::from_utf8_lossy(&renew.stdout);
    assert!(said.contains("REVOKED"), "{said}");
}

/// Issue 18: a policy edited in its form, and the Licenses page's usage chart drawn by
/// Chromium from the server's SVG (its lines have size, the page's CSP allowed it).
#[test]
#[ignore = "needs Chromium and chromedriver; scripts/test runs it"]
fn browser_policy_form_and_usage_chart() {
    let s = server().start();
    let (code, _, err) = s.cli(&["admin", "set-password", "--username", "root", "--generate"]);
    assert_eq!(code, 0, "{err}");
    let license = {
        let (code, out, err) = s.cli(&[
            "license",
            "add",
            "--product",
            "Parallels Desktop",
            "--seats",
            "40",
        ]);
        assert_eq!(code, 0, "{err}");
        out.trim().to_string()
    };
    // 36 people in a mapped group hold seats today.
    let (code, _, err) = s.cli(&["group-map", "add", "--group", "Mac Users", "--primary"]);
    assert_eq!(code, 0, "{err}");
    let scim = s.scim();
    let members: Vec<Value> = (0..36)
        .map(|i| {
            let r = scim.post(
                "/Users",
                json!({"userName": format!("u{i}@contoso.com"), "active": true}),
            );
            json!({"value": r.json()["id"]})
        })
        .collect();
    assert_eq!(
        scim.post(
            "/Groups",
            json!({"displayName": "Mac Users", "members": members})
        )
        .status,
        201
    );
    // Thirty days as the housekeeping would have recorded them, some reconstructed.
    let now = seatgate::clock::now_unix();
    for d in 1..30i64 {
        let day = seatgate::db::usage::day_of(now - d * 86_400);
        let used = 20 + (30 - d) / 2 + (d % 3);
        let pending = if d < 8 { 8 - d } else { 0 };
        crate::support::db_exec(
            &s,
            &format!(
                "INSERT INTO pool_days VALUES ('{license}', '', '{day}', {used}, {pending}, {}, {})",
                if d > 20 { 30 } else { 40 },
                i64::from(d > 24)
            ),
        );
    }
    let b = Browser::start("fleet");
    b.go(&format!(
        "{}{}",
        base(&s),
        crate::portal::login_link_path(&s)
    ));
    b.wait_for("Overview");

    b.go(&format!("{}/admin/licenses", base(&s)));
    b.wait_for("Seat usage over time");
    let width = b.exec("return document.querySelector('svg.chart polyline.used').getBBox().width");
    assert!(
        width.as_f64().is_some_and(|w| w > 300.0),
        "the used line is drawn: {width}"
    );
    let dashed = b.exec(
        "return getComputedStyle(document.querySelector('svg.chart polyline.capacity')).strokeDasharray",
    );
    assert!(dashed.as_str().is_some_and(|d| d.contains('7')), "{dashed}");
    b.exec("document.getElementById('usage').scrollIntoView(); return 0");
    b.screenshot("01-usage-chart");

    b.go(&format!("{}/admin/policies", base(&s)));
    b.type_into(
        "form[action='/admin/policies'] input[name=name]",
        "Engineering",
    );
    b.click("form[action='/admin/policies'] button");
    b.wait_for("Choose its settings below");
    b.click("select[name=lock_on_suspend] option[value=on]");
    b.click("select[name=usb_default] option[value=deny]");
    b.type_into("textarea[name=usb_exceptions]", "05ac:12a8 allow");
    b.click("select[name=update_branch] option[value=beta]");
    b.click("form.policy button[type=submit]");
    b.wait_for("Saved the policy Engineering");
    b.screenshot("02-policy-form");
    let (_, shown, _) = s.cli(&["policy", "show", "Engineering", "--json"]);
    let shown: Value = serde_json::from_str(&shown).expect("json");
    assert_eq!(shown["lock_on_suspend"], json!(true));
    assert_eq!(shown["usb"]["exceptions"][0]["device"], "05ac:12a8");
    assert_eq!(shown["update_branch"], "beta");
}
