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
    let page = s
        .request("GET", "/admin/licenses", &[("Cookie", &cookie)], b"")
        .text();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("csrf field");
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
