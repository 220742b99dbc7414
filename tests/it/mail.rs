//! Issue 17 §2: invitation emails and the outbox, against a real SMTP server started by the
//! tests (Python's aiosmtpd, `tests/smtp/sink.py`): delivery, a server that refuses (5xx:
//! failed with its reason), one that is down (retried, delivered once it is back, across a
//! restart of seatgate), one that hangs (timeouts; the message stays queued); the landing
//! page, guessed links, resend, revoke, key invitations activated end to end; templates;
//! admin notifications.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{HttpResponse, TestServer, db_query, server, wait_until};

/// aiosmtpd on a port of its own, writing what it accepts to a file.
pub(crate) struct Sink {
    child: Child,
    pub port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Sink {
    pub(crate) fn start() -> Sink {
        Sink::on(free_port())
    }

    pub(crate) fn on(port: u16) -> Sink {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("mails.jsonl");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/sink.py");
        let mut child = Command::new(crate::pysaml2::python())
            .arg(script)
            .arg(port.to_string())
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("aiosmtpd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready");
        assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
        Sink {
            child,
            port,
            out,
            _dir: dir,
        }
    }

    /// Every message accepted so far: {"from", "to", "data"}.
    pub(crate) fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub(crate) fn wait_for(&self, n: usize) -> Vec<Value> {
        wait_until(Duration::from_secs(20), &format!("{n} message(s)"), || {
            self.messages().len() >= n
        });
        self.messages()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn smtp_config(port: u16, extra: &str) -> String {
    format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\nfrom = \"Contoso IT <it@contoso.com>\"\nretry_after = \"1s\"\n{extra}"
    )
}

fn ok(s: &TestServer, args: &[&str]) -> String {
    let (code, out, err) = s.cli(args);
    assert_eq!(code, 0, "{args:?}: {out}{err}");
    out
}

fn connect_contoso(s: &TestServer) {
    let idp = crate::kit::saml::TestIdp::new("https://idp.contoso.example/metadata");
    crate::saml::connect(s, "Contoso", "entra", "contoso.com", &idp.metadata());
}

/// The invitation link in a message the sink received, as a path.
fn link_path(message: &Value) -> String {
    let data = message["data"].as_str().expect("data");
    // Quoted-printable may wrap lines with "=\r\n": undo it before looking.
    let data = data.replace("=\r\n", "");
    let at = data.find("/invite/").expect("a link");
    let token: String = data[at + 8..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(token.len(), 43, "{data}");
    format!("/invite/{token}")
}

fn status(s: &TestServer, email: &str) -> String {
    let out = ok(s, &["invite", "list"]);
    out.lines()
        .find(|l| l.split('\t').nth(1) == Some(email))
        .and_then(|l| l.split('\t').nth(3))
        .unwrap_or("none")
        .to_string()
}

/// The landing page's Continue, as a browser does it: the cookie and the form token the
/// page set, and the gateway's Origin.
fn continue_from(s: &TestServer, page: &HttpResponse, path: &str) -> HttpResponse {
    let text = page.text();
    let at = text.find("name=\"csrf\" value=\"").expect("csrf");
    let csrf = &text[at + 19..at + 19 + text[at + 19..].find('"').expect("end")];
    let cookie = page
        .headers
        .iter()
        .find(|(k, v)| k == "set-cookie" && v.contains("sg_invite="))
        .map(|(_, v)| v.split(';').next().expect("pair").to_string())
        .expect("cookie");
    let origin = format!("https://127.0.0.1:{}", s.addr.port());
    s.request(
        "POST",
        path,
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
            ("Origin", &origin),
        ],
        format!("csrf={csrf}").as_bytes(),
    )
}

#[test]
#[ignore = "needs Python with aiosmtpd (scripts/test-venv); scripts/test runs it"]
fn invitations_are_delivered_and_lead_to_an_activation() {
    let sink = Sink::start();
    let s = server().config(&smtp_config(sink.port, "")).start();
    connect_contoso(&s);
    ok(
        &s,
        &[
            "license",
            "add",
            "--product",
            "Parallels Desktop",
            "--seats",
            "5",
        ],
    );

    // Typed addresses: a bad one and one outside every connection's domains are refused.
    let out = ok(
        &s,
        &[
            "invite",
            "send",
            "--email",
            "ryan@contoso.com",
            "--email",
            "not-an-address@",
            "--email",
            "x@elsewhere.com",
        ],
    );
    assert!(out.contains("invited 1"), "{out}");
    assert!(out.contains("not invited: x@elsewhere.com: no identity provider connection serves elsewhere.com (DOMAIN_UNKNOWN)"), "{out}");
    assert!(
        out.contains("not invited: not-an-address@: not an email address"),
        "{out}"
    );
    let mails = sink.wait_for(1);
    let m = &mails[0];
    assert_eq!(m["to"], json!(["ryan@contoso.com"]));
    let data = m["data"].as_str().expect("data");
    assert!(
        data.contains("Subject: Set up 127.0.0.1 licensing on your Mac"),
        "{data}"
    );
    assert!(
        data.contains("multipart/alternative") && data.contains("text/html"),
        "{data}"
    );
    assert!(data.contains("Message-ID:"), "{data}");
    let path = link_path(m);
    wait_until(Duration::from_secs(10), "sent", || {
        status(&s, "ryan@contoso.com") == "sent"
    });
    // The token is not stored, only its hash.
    let token = path.trim_start_matches("/invite/");
    assert_eq!(
        db_query(
            &s,
            &format!(
                "SELECT count(*) FROM invitations WHERE token_hash = '{}'",
                seatgate::crypto::sha256_hex(token.as_bytes())
            )
        )[0][0],
        "1"
    );
    // The email that carried it is not kept once sent (checkpointed within seconds).
    wait_until(
        Duration::from_secs(20),
        "the link gone from the database file",
        || {
            !std::fs::read(s.data_dir.join("seatgate.db"))
                .expect("db")
                .windows(token.len())
                .any(|w| w == token.as_bytes())
        },
    );

    // Guessed and malformed links: 404, nothing said about whether they exist.
    for bad in [
        "/invite/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "/invite/short",
        "/invite/..%2f..%2fetc",
    ] {
        let r = s.get(bad);
        assert_eq!(r.status, 404, "{bad}: {}", r.text());
    }
    // The landing page: opened, not yet spent (a mail scanner may have opened it).
    let page = s.get(&path);
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("ryan@contoso.com"));
    assert_eq!(status(&s, "ryan@contoso.com"), "opened");
    assert_eq!(s.get(&path).status, 200, "showing it again is fine");
    // Continue without the page's token: refused.
    let forged = s.request(
        "POST",
        &path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"csrf=x",
    );
    assert_eq!(forged.status, 403, "{}", forged.text());
    let steps = continue_from(&s, &page, &path);
    assert_eq!(steps.status, 200, "{}", steps.text());
    let text = steps.text();
    assert!(
        text.contains("--email ryan@contoso.com")
            && text.contains("Activate it with your work email"),
        "{text}"
    );
    assert_eq!(s.get(&path).status, 404, "the link is spent");

    // A license-key invitation: Continue shows a one-device key; the Mac activates with it.
    let out = ok(
        &s,
        &[
            "invite",
            "send",
            "--email",
            "kim@contoso.com",
            "--key-license",
            "Parallels Desktop",
        ],
    );
    assert!(out.contains("invited 1"), "{out}");
    let mails = sink.wait_for(2);
    let path = link_path(&mails[1]);
    let page = s.get(&path);
    let steps = continue_from(&s, &page, &path);
    let text = steps.text();
    let key_at = text.find("SGK-").expect("a key");
    let key = &text[key_at..key_at + 33];
    let mac = tempfile::tempdir().expect("tmp");
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let ca = s.ca_path();
    let (done, out) = crate::activation::client(
        mac.path(),
        &[
            "activate",
            "--server",
            &base,
            "--key",
            key,
            "--ca-cert",
            ca.to_str().expect("utf8"),
        ],
    )
    .finish();
    assert!(done, "{out}");
    assert_eq!(status(&s, "kim@contoso.com"), "activated");
    let second = crate::license_keys::activate_raw(&s, key);
    assert_eq!(
        second.json()["reason"],
        "NO_SEATS",
        "the invitation's key activates one Mac"
    );

    // A license-key invitation continued but not activated, then revoked: its key goes too.
    ok(
        &s,
        &[
            "invite",
            "send",
            "--email",
            "kay@contoso.com",
            "--key-license",
            "Parallels Desktop",
        ],
    );
    let mails = sink.wait_for(3);
    let kay = mails
        .iter()
        .rev()
        .find(|m| m["to"] == json!(["kay@contoso.com"]))
        .expect("kay");
    let path = link_path(kay);
    let page = s.get(&path);
    // Six presses of Continue at once: one wins, and only one key is made.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| continue_from(&s, &page, &path).status))
            .collect();
        runs.into_iter().map(|r| r.join().expect("press")).collect()
    });
    assert_eq!(
        statuses.iter().filter(|c| **c == 200).count(),
        1,
        "{statuses:?}"
    );
    let made = db_query(
        &s,
        "SELECT count(*) FROM license_keys WHERE name = 'Invitation for kay@contoso.com'",
    );
    assert_eq!(made[0][0], "1", "racing presses make one key");
    let id = ok(&s, &["invite", "list"])
        .lines()
        .find(|l| l.contains("kay@contoso.com"))
        .and_then(|l| l.split('\t').next())
        .expect("id")
        .to_string();
    let kay_keys = |s: &TestServer| -> Vec<String> {
        ok(s, &["license", "key", "list"])
            .lines()
            .filter(|l| l.contains("Invitation for kay@contoso.com"))
            .map(str::to_string)
            .collect()
    };
    // Resent after Continue: the key the old link made is revoked; the new link makes one.
    ok(&s, &["invite", "resend", &id]);
    let mails = sink.wait_for(4);
    let path = link_path(&mails[3]);
    assert!(
        kay_keys(&s).iter().all(|k| k.contains("revoked")),
        "{:?}",
        kay_keys(&s)
    );
    let page = s.get(&path);
    assert_eq!(continue_from(&s, &page, &path).status, 200);
    assert_eq!(
        kay_keys(&s).iter().filter(|k| k.contains("active")).count(),
        1
    );
    ok(&s, &["invite", "revoke", &id]);
    let keys = kay_keys(&s);
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k.contains("revoked")), "{keys:?}");

    // Resend: a new link, the old one dead. Revoke: the link dead, the status says so.
    ok(&s, &["invite", "send", "--email", "lee@contoso.com"]);
    let mails = sink.wait_for(5);
    let first_link = link_path(&mails[4]);
    let id = ok(&s, &["invite", "list"])
        .lines()
        .find(|l| l.contains("lee@contoso.com"))
        .and_then(|l| l.split('\t').next())
        .expect("id")
        .to_string();
    let out = ok(&s, &["invite", "resend", &id]);
    assert!(out.contains("new link"), "{out}");
    let mails = sink.wait_for(6);
    let second_link = link_path(&mails[5]);
    assert_ne!(first_link, second_link);
    assert_eq!(s.get(&first_link).status, 404);
    assert_eq!(s.get(&second_link).status, 200);
    let (code, _, err) = s.cli(&["invite", "send", "--email", "lee@contoso.com"]);
    assert_eq!(code, 0, "{err}");
    ok(&s, &["invite", "revoke", &id]);
    assert_eq!(s.get(&second_link).status, 404);
    assert_eq!(status(&s, "lee@contoso.com"), "revoked");

    // The admin API: invite, list, revoke; the outbox.
    let token = crate::admin_api::admin_token(&s);
    let call = |m: &str, p: &str, b: Option<Value>| crate::admin_api::call(&s, &token, m, p, b);
    let r = call(
        "POST",
        "/api/v1/admin/invitations",
        Some(json!({"emails": ["ann@contoso.com", "bob@nowhere.example"]})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = r.json();
    assert_eq!(r["invited"].as_array().map(Vec::len), Some(1));
    assert!(
        r["refused"][0]["reason"]
            .as_str()
            .is_some_and(|w| w.contains("DOMAIN_UNKNOWN"))
    );
    let id = r["invited"][0].as_str().expect("id").to_string();
    let list = call("GET", "/api/v1/admin/invitations", None).json();
    assert!(
        list["invitations"]
            .as_array()
            .is_some_and(|l| l.iter().any(|i| i["id"] == id.as_str()))
    );
    assert_eq!(
        call("DELETE", &format!("/api/v1/admin/invitations/{id}"), None).status,
        200
    );
    assert_eq!(
        call("DELETE", &format!("/api/v1/admin/invitations/{id}"), None).status,
        409
    );
    assert_eq!(
        call(
            "POST",
            "/api/v1/admin/invitations",
            Some(json!({"emails": "x"}))
        )
        .status,
        400
    );
    let outbox = call("GET", "/api/v1/admin/outbox", None).json();
    assert!(outbox["sent"].as_i64().is_some_and(|n| n >= 4), "{outbox}");

    // The template: a typo is refused; a new subject is used by the next invitation.
    let cookie = crate::portal::session(&s);
    let page = crate::portal::get(&s, "/admin/invitations", &cookie).text();
    let refused = crate::portal::submit(
        &s,
        &cookie,
        &page,
        "value=\"save\"",
        &[
            ("text", "Hi {{lnk}} {{link}}"),
            ("html", "<a href=\"{{link}}\">go</a>"),
            ("do", "save"),
        ],
    );
    assert_eq!(refused.status, 400);
    assert!(refused.text().contains("{{lnk}}"), "{}", refused.text());
    let saved = crate::portal::submit(
        &s,
        &cookie,
        &page,
        "value=\"save\"",
        &[
            ("subject", "Your Mac, {{email}}"),
            ("text", "Go: {{link}}"),
            ("html", "<a href=\"{{link}}\">go</a>"),
            ("do", "save"),
        ],
    );
    assert_eq!(saved.status, 303, "{}", saved.text());
    ok(&s, &["invite", "send", "--email", "zoe@contoso.com"]);
    // (Ann's invitation was revoked at once: its email may have been cancelled unsent.)
    wait_until(Duration::from_secs(20), "Zoe's invitation", || {
        sink.messages()
            .iter()
            .any(|m| m["to"] == json!(["zoe@contoso.com"]))
    });
    let zoe = sink
        .messages()
        .into_iter()
        .find(|m| m["to"] == json!(["zoe@contoso.com"]))
        .expect("zoe");
    let data = zoe["data"].as_str().expect("data");
    assert!(
        data.contains("Subject: Your Mac, zoe@contoso.com"),
        "{data}"
    );
}

#[test]
#[ignore = "needs Python with aiosmtpd (scripts/test-venv); scripts/test runs it"]
fn refused_and_unavailable_mail_servers_are_handled() {
    let sink = Sink::start();
    let s = server()
        .config(&smtp_config(sink.port, "max_attempts = 3\n"))
        .start();
    // 550: failed at once with the server's reason. 451: retried, then given up.
    ok(&s, &["mail", "test", "--to", "reject@contoso.com"]);
    ok(&s, &["mail", "test", "--to", "busy@contoso.com"]);
    ok(&s, &["mail", "test", "--to", "ok@contoso.com"]);
    sink.wait_for(1);
    let outbox = || ok(&s, &["mail", "outbox"]);
    wait_until(Duration::from_secs(20), "the 451 to be given up", || {
        outbox()
            .lines()
            .any(|l| l.contains("busy@contoso.com") && l.contains("\tfailed\t"))
    });
    let out = outbox();
    let reject = out
        .lines()
        .find(|l| l.contains("reject@contoso.com"))
        .expect("line");
    assert!(
        reject.contains("\tfailed\t") && reject.contains("550") && reject.contains("User unknown"),
        "{out}"
    );
    assert!(
        reject.contains("1 attempt(s)"),
        "a permanent refusal is not retried: {out}"
    );
    let busy = out
        .lines()
        .find(|l| l.contains("busy@contoso.com"))
        .expect("line");
    assert!(
        busy.contains("3 attempt(s)") && busy.contains("451"),
        "{out}"
    );
    // Retry puts a failed message back.
    let id = reject.split('\t').next().expect("id");
    ok(&s, &["mail", "retry", id]);
    let (code, _, err) = s.cli(&["mail", "retry", "99999"]);
    assert_eq!(code, 2, "{err}");
    drop(sink);

    // A server that is down: queued and retried; still queued across a kill -9 of
    // seatgate; delivered once the server is back.
    let port = free_port();
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let mut s = server()
        .data_dir(&data)
        .config(&smtp_config(port, ""))
        .start();
    ok(&s, &["mail", "test", "--to", "later@contoso.com"]);
    wait_until(Duration::from_secs(20), "a failed attempt", || {
        let out = ok(&s, &["mail", "outbox"]);
        out.contains("later@contoso.com\tqueued") && !out.contains("\t0 attempt(s)")
    });
    let out = ok(&s, &["mail", "outbox"]);
    assert!(
        out.to_lowercase().contains("connection refused") || out.contains("Connection"),
        "{out}"
    );
    s.kill9();
    let sink = Sink::on(port);
    let s = server()
        .data_dir(&data)
        .config(&smtp_config(port, ""))
        .start();
    let mails = sink.wait_for(1);
    assert_eq!(mails[0]["to"], json!(["later@contoso.com"]));
    wait_until(Duration::from_secs(10), "sent", || {
        ok(&s, &["mail", "outbox"]).contains("later@contoso.com\tsent")
    });
}

/// A mail server that accepts connections and never answers: each attempt ends at
/// `[smtp] timeout`, the message stays queued, and the server keeps serving.
#[test]
fn a_hanging_mail_server_times_out_and_the_message_stays_queued() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let held = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = std::sync::Arc::clone(&held);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            keep.lock().expect("held").push(conn);
        }
    });
    let s = server()
        .config(&smtp_config(port, "timeout = \"1s\"\n"))
        .start();
    ok(&s, &["mail", "test", "--to", "someone@contoso.com"]);
    wait_until(Duration::from_secs(20), "a timed-out attempt", || {
        ok(&s, &["mail", "outbox"]).contains("1 attempt(s)")
    });
    let out = ok(&s, &["mail", "outbox"]);
    assert!(out.contains("someone@contoso.com\tqueued"), "{out}");
    assert!(
        out.to_lowercase().contains("timed out") || out.to_lowercase().contains("timeout"),
        "{out}"
    );
    assert!(!held.lock().expect("held").is_empty(), "it did connect");
    assert_eq!(s.get("/healthz").status, 200, "the gateway keeps serving");
}

#[test]
#[ignore = "needs Python with aiosmtpd (scripts/test-venv); scripts/test runs it"]
fn admins_are_notified_once_of_an_ending_license() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    let s = server()
        .data_dir(&data)
        .config(&smtp_config(sink.port, ""))
        .start();
    let ends = seatgate::clock::rfc3339(seatgate::clock::now_unix() + 5 * 86_400)[..10].to_string();
    ok(
        &s,
        &[
            "license",
            "add",
            "--product",
            "Parallels Desktop",
            "--seats",
            "5",
            "--expires",
            &ends,
        ],
    );
    // Recipients are set in the portal (or the API); nobody is notified without them.
    let cookie = crate::portal::session(&s);
    let page = crate::portal::get(&s, "/admin/invitations", &cookie).text();
    let bad = crate::portal::submit(
        &s,
        &cookie,
        &page,
        "Save notifications",
        &[("license_ending.to", "not an address")],
    );
    assert_eq!(bad.status, 400);
    let saved = crate::portal::submit(
        &s,
        &cookie,
        &page,
        "Save notifications",
        &[
            ("license_ending.on", "yes"),
            ("license_ending.to", "it-licensing@contoso.com"),
        ],
    );
    assert_eq!(saved.status, 303, "{}", saved.text());
    drop(s);
    // Housekeeping checks at start, then every five minutes.
    let s = server()
        .data_dir(&data)
        .config(&smtp_config(sink.port, ""))
        .start();
    let mails = sink.wait_for(1);
    assert_eq!(mails[0]["to"], json!(["it-licensing@contoso.com"]));
    let d = mails[0]["data"].as_str().expect("data");
    assert!(
        d.contains(&format!("Parallels Desktop ends on {ends} (in 5 days)")),
        "{d}"
    );
    // Recorded as sent before the restart (a kill between the send and its record would
    // send it again: at least once).
    wait_until(Duration::from_secs(10), "recorded as sent", || {
        ok(&s, &["mail", "outbox"]).contains("\tsent\t")
    });
    drop(s);
    let _s = server()
        .data_dir(&data)
        .config(&smtp_config(sink.port, ""))
        .start();
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        sink.messages().len(),
        1,
        "once per occasion, across restarts"
    );
}

/// Guessing invitation links: every guess is the same 404, and one address soon gets 429s
/// (the pre-authentication limits: a burst of 60, then 2 per second).
#[test]
fn guessing_invitation_links_is_rate_limited() {
    let s = server().start();
    let mut statuses = Vec::new();
    for i in 0..80 {
        let guess = format!("/invite/{}", seatgate::crypto::b64url(&[i as u8; 32]));
        statuses.push(s.get(&guess).status);
    }
    assert!(statuses[..50].iter().all(|&c| c == 404), "{statuses:?}");
    assert!(statuses[60..].contains(&429), "{statuses:?}");
    assert!(
        statuses.iter().all(|&c| c == 404 || c == 429),
        "{statuses:?}"
    );
}
