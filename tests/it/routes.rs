//! Walks the route table (`seatgate::routes::ROUTES`) against the real binary: every
//! authenticated route refuses a request without credentials and one with the wrong kind
//! of credential, and every state-changing admin route refuses a request without its CSRF
//! token. A route added to the table is covered here without a new test.

use seatgate::routes::{Auth, Csrf, ROUTES, Route};

use crate::support::{HttpResponse, TestServer, server};

/// A concrete path for a pattern: parameters filled with an id no record has.
fn path_of(route: &Route) -> String {
    route
        .pattern
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "no-such-id"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Each method the route accepts (a fallback is tried with GET and POST).
fn methods_of(route: &Route) -> Vec<&'static str> {
    ["GET", "POST", "PUT", "PATCH", "DELETE"]
        .into_iter()
        .filter(|m| route.methods.accepts(m))
        .take(if route.is_fallback() { 2 } else { 5 })
        .collect()
}

/// The CSRF token of a portal session, as its pages carry it.
fn session_csrf(s: &TestServer, cookie: &str) -> String {
    let page = s
        .request("GET", "/admin/licenses", &[("Cookie", cookie)], b"")
        .text();
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("csrf field")
        .to_string()
}

struct Credentials {
    session: String,
    admin_token: String,
    scim_token: String,
    metrics_token: &'static str,
}

fn call(s: &TestServer, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    s.request(method, path, &all, b"{}")
}

fn refused(route: &Route, r: &HttpResponse) -> bool {
    match route.auth {
        // A browser is sent to sign in.
        Auth::AdminSession => {
            matches!(r.status, 302 | 303) && r.header("location") == Some("/admin/login")
        }
        // A device route refuses what is not a device's proof: 401, or 400 for a body
        // that holds none.
        Auth::DeviceProof => matches!(r.status, 400 | 401),
        _ => r.status == 401,
    }
}

#[test]
fn every_authenticated_route_refuses_no_credentials_and_the_wrong_kind() {
    let metrics_token = "metrics-token-0123456789";
    let s = server()
        .env("SEATGATE_METRICS_ENABLED", "true")
        .env("SEATGATE_METRICS_TOKEN", metrics_token)
        .start();
    let creds = Credentials {
        session: crate::portal::session(&s),
        admin_token: {
            let (_, out, _) = s.cli(&["admin-token", "create", "--name", "ops"]);
            out.lines().last().expect("token").to_string()
        },
        scim_token: s.scim().token,
        metrics_token,
    };
    let cookie = creds.session.clone();
    let bearer = |t: &str| format!("Bearer {t}");
    let (admin, scim, metrics) = (
        bearer(&creds.admin_token),
        bearer(&creds.scim_token),
        bearer(creds.metrics_token),
    );
    let mut checked = 0;
    for route in ROUTES
        .iter()
        .filter(|r| !matches!(r.auth, Auth::None | Auth::Loopback))
    {
        // Every kind of credential this route does not take.
        let wrong: Vec<(&str, &str)> = match route.auth {
            Auth::AdminSession => vec![("Authorization", &admin), ("Authorization", &scim)],
            Auth::AdminTokenOrSession => {
                vec![("Authorization", &scim), ("Authorization", &metrics)]
            }
            Auth::ScimToken => vec![("Authorization", &admin), ("Cookie", &cookie)],
            Auth::MetricsToken => vec![("Authorization", &admin), ("Authorization", &scim)],
            Auth::DeviceProof => vec![("Authorization", &scim), ("Cookie", &cookie)],
            Auth::None | Auth::Loopback => vec![],
        };
        let path = path_of(route);
        for method in methods_of(route) {
            let r = call(&s, method, &path, &[]);
            assert!(
                refused(route, &r),
                "{method} {path} without credentials answered {}: {}",
                r.status,
                r.text()
            );
            for (header, value) in &wrong {
                let r = call(&s, method, &path, &[(header, value)]);
                assert!(
                    refused(route, &r),
                    "{method} {path} with {header}: {value:.20}… answered {}: {}",
                    r.status,
                    r.text()
                );
            }
            checked += 1;
        }
    }
    // The table has routes of every authenticated kind; a filter that lost them would
    // check nothing.
    assert!(
        checked > 50,
        "only {checked} method/route pairs were checked"
    );
    crate::support::assert_still_serving(&s);
}

#[test]
fn every_state_changing_admin_route_refuses_a_request_without_its_csrf_token() {
    let s = server().start();
    let cookie = crate::portal::session(&s);
    let mut checked = 0;
    // The double-submit forms before any session (sign-in, setup, activation) re-render
    // themselves on a refusal; their own tests cover them.
    for route in ROUTES
        .iter()
        .filter(|r| matches!(r.csrf, Csrf::SessionForm | Csrf::SessionHeader))
    {
        let path = path_of(route);
        let refused = |r: &HttpResponse| r.status == 403 && r.text().contains("CSRF_FAILED");
        for method in methods_of(route).into_iter().filter(|m| *m != "GET") {
            let r = match route.csrf {
                Csrf::SessionForm => s.request(
                    method,
                    &path,
                    &[
                        ("Content-Type", "application/x-www-form-urlencoded"),
                        ("Cookie", &cookie),
                    ],
                    b"confirm=yes&name=x",
                ),
                _ => call(&s, method, &path, &[("Cookie", &cookie)]),
            };
            assert!(
                refused(&r),
                "{method} {path} without a CSRF token answered {}: {}",
                r.status,
                r.text()
            );
            checked += 1;
        }
    }
    assert!(checked > 15, "only {checked} routes were checked");
    // The same request with the session's token gets past the check (to the handler's
    // own answer about the missing record), so the refusals above were the CSRF check's.
    let csrf = session_csrf(&s, &cookie);
    let r = s.request(
        "POST",
        "/admin/mappings/no-such-id/delete",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        format!("csrf={csrf}").as_bytes(),
    );
    assert_ne!(r.status, 403, "{}", r.text());
}

/// Black-box round (issue 14): the activation confirmation accepted a foreign or `null`
/// Origin, and its double-submit cookie could be planted by a sibling subdomain.
#[test]
fn a_cross_site_page_cannot_confirm_an_activation_in_the_users_browser() {
    let s = server().start();
    let idp = crate::kit::saml::TestIdp::new("https://idp.contoso.test");
    crate::kit::saml::connect(
        &s.data_dir,
        "Contoso",
        "generic",
        "contoso.com",
        &idp.metadata(),
    );
    let key = seatgate::crypto::b64url(&[5u8; 32]);
    let body = format!(
        r#"{{"email": "kim@contoso.com", "device": {{"name": "Mac", "os": "macOS", "public_key": {{"kty": "OKP", "crv": "Ed25519", "x": "{key}"}}}}}}"#
    );
    let started = s.request(
        "POST",
        "/api/v1/activations",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(started.status, 201, "{}", started.text());
    let url = started.json()["verification_uri_complete"]
        .as_str()
        .expect("url")
        .to_string();
    let path = format!("/{}", url.splitn(4, '/').nth(3).expect("path"));
    let page = s.get(&path);
    assert_eq!(page.status, 200, "{}", page.text());
    // Path=/ over HTTPS: `__Host-`, which no other host can set.
    let set = page
        .set_cookie_header("__Host-sg_activate")
        .expect("__Host- cookie");
    assert!(set.contains("Path=/;") && set.contains("Secure"), "{set}");
    let confirm = |origin: Option<&str>, cookie: &str, csrf: &str| {
        let mut headers = vec![
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", cookie),
        ];
        if let Some(o) = origin {
            headers.push(("Origin", o));
        }
        s.request("POST", &path, &headers, format!("csrf={csrf}").as_bytes())
    };
    // A made-up pair from another site, or from a sandboxed page (`null`): refused.
    for origin in ["https://evil.example", "null"] {
        let r = confirm(Some(origin), "__Host-sg_activate=forged", "forged");
        assert_eq!(r.status, 403, "{origin}: {}", r.text());
        assert!(r.text().contains("ORIGIN_MISMATCH"), "{}", r.text());
    }
    // From the page itself (its own Origin), the made-up pair still fails the token check.
    let own = format!("https://127.0.0.1:{}", s.addr.port());
    let r = confirm(Some(&own), "__Host-sg_activate=forged", "other");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("CSRF_FAILED"), "{}", r.text());
}

/// Black-box round (issue 14): a portal session's API change from a foreign Origin reached
/// the handler; and a HEAD (link checkers, mail scanners) used up a one-time sign-in link.
#[test]
fn session_api_changes_need_our_origin_and_head_never_uses_a_sign_in_link() {
    let s = server().start();
    let cookie = crate::portal::session(&s);
    let csrf = session_csrf(&s, &cookie);
    let delete = |origin: &str| {
        s.request(
            "DELETE",
            "/api/v1/admin/devices/no-such-device",
            &[
                ("Cookie", &cookie),
                ("X-CSRF-Token", &csrf),
                ("Origin", origin),
            ],
            b"",
        )
    };
    let foreign = delete("https://evil.example");
    assert_eq!(foreign.status, 403, "{}", foreign.text());
    assert_eq!(foreign.json()["reason"], "ORIGIN_MISMATCH");
    let own = delete(&format!("https://127.0.0.1:{}", s.addr.port()));
    assert_eq!(own.status, 404, "reaches the handler: {}", own.text());

    let path = crate::portal::login_link_path(&s);
    let head = s.request("HEAD", &path, &[], b"");
    assert_eq!(head.status, 200);
    let get = s.get(&path);
    assert_eq!(
        get.status,
        303,
        "the link still works after a HEAD: {}",
        get.text()
    );
    assert_eq!(s.get(&path).status, 401, "and only once");
}
