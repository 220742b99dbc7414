//! SAML ACS benchmark (issue 4), run with `cargo bench --bench saml_acs`.
//!
//! Validated logins per second through the release binary's ACS over HTTPS with 8
//! keep-alive clients. Every login is real: its own SP-initiated request (and binding
//! cookie), and a response signed by the `xmlsec1` CLI with an RSA-2048 key, minted before
//! the timed part. The share of time spent in signature verification is measured by timing
//! samael's verification of the same responses in-process, single-threaded.
//!
//! Needs the `xmlsec1` CLI on PATH. `LOGINS` (default 2000) sets the count;
//! `SEATGATE_BENCH_BIN` runs another binary (e.g. the self-contained build).

mod common;

use std::sync::Mutex;
use std::time::Instant;

use common::kit::http::Conn;

const CLIENTS: usize = 8;

fn main() {
    let logins: usize = std::env::var("LOGINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let tmp = std::env::temp_dir().join(format!("seatgate-saml-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("tmp");

    // The IdP: an RSA key and certificate, as most IdPs use.
    let entity = "https://idp.bench.example";
    let idp = common::kit::saml::TestIdp::new(entity);
    let cert_b64 = idp.cert_b64();
    let data = tmp.join("data");
    // Every login starts with its own SSO request from one address: lift the
    // pre-authentication limits (issue 12), which would answer most of them 429.
    let server = common::spawn(
        &data,
        &[
            ("SEATGATE_LOG_LEVEL", "warn"),
            ("SEATGATE_PRE_AUTH_PER_CLIENT_PER_MINUTE", "0"),
            ("SEATGATE_PRE_AUTH_GLOBAL_PER_MINUTE", "0"),
        ],
    );
    let base = format!("https://127.0.0.1:{}", server.addr.port());
    common::add_idp(&data, entity, &cert_b64, "contoso.com");

    // Mint: a request per login, then its signed response (xmlsec1, both cores).
    println!("# seatgate SAML ACS benchmark\n\nminting {logins} signed responses with xmlsec1 …");
    let mut c = connect(&server);
    let requests: Vec<(String, String, String)> = (0..logins).map(|_| begin(&mut c)).collect();
    let signed: Vec<Mutex<String>> = (0..logins).map(|_| Mutex::new(String::new())).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= logins {
                        break;
                    }
                    let xml = response(entity, &base, &requests[i].0, i);
                    *signed[i].lock().expect("lock") = idp.sign(&xml);
                }
            });
        }
    });
    let signed: Vec<String> = signed
        .into_iter()
        .map(|m| m.into_inner().expect("lock"))
        .collect();

    // Timed: every login through the ACS, 8 clients.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let lat = Mutex::new(Vec::with_capacity(logins));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..CLIENTS {
            scope.spawn(|| {
                let mut c = connect(&server);
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= logins {
                        break;
                    }
                    let (_, relay, cookie) = &requests[i];
                    let t = Instant::now();
                    let status = acs(&mut c, &signed[i], relay, cookie);
                    assert_eq!(status, 200, "login {i}");
                    lat.lock().expect("lock").push(t.elapsed());
                }
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let mut lat = lat.into_inner().expect("lock");
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0;
    let rate = logins as f64 / secs;
    println!("\n| logins | wall time | logins/s | p50 | p99 |\n|---|---|---|---|---|");
    println!(
        "| {logins} | {secs:.2} s | {rate:.0} | {:.2} ms | {:.2} ms |",
        pct(0.5),
        pct(0.99)
    );

    // Verification alone, in-process: samael's signature check of the same responses.
    let sp = service_provider(entity, &cert_b64, &base);
    let sample = signed.len().min(500);
    let t = Instant::now();
    for (i, xml) in signed.iter().take(sample).enumerate() {
        let id = requests[i].0.as_str();
        sp.parse_xml_response(xml, Some(&[id])).expect("verifies");
    }
    let verify_ms = t.elapsed().as_secs_f64() * 1000.0 / sample as f64;
    let cpu_ms_per_login = 2.0 * 1000.0 / rate;
    println!(
        "\nsamael verification alone: {verify_ms:.2} ms per response (single thread, {sample} responses);\nat {rate:.0} logins/s on 2 cores a login costs at most {cpu_ms_per_login:.2} ms of CPU, so verification is at least {:.0}% of it",
        100.0 * verify_ms / cpu_ms_per_login
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&tmp);
}

fn response(entity: &str, base: &str, request_id: &str, i: usize) -> String {
    let now = seatgate::clock::now_unix();
    let (issue, until) = (
        seatgate::clock::rfc3339(now),
        seatgate::clock::rfc3339(now + 600),
    );
    let acs = format!("{base}/saml/acs/bench");
    format!(
        r##"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r{i}" Version="2.0" IssueInstant="{issue}" Destination="{acs}" InResponseTo="{request_id}"><saml:Issuer>{entity}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status><saml:Assertion ID="_a{i}" Version="2.0" IssueInstant="{issue}"><saml:Issuer>{entity}</saml:Issuer><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#_a{i}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature><saml:Subject><saml:NameID>user{i}@contoso.com</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData InResponseTo="{request_id}" NotOnOrAfter="{until}" Recipient="{acs}"/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="{issue}" NotOnOrAfter="{until}"><saml:AudienceRestriction><saml:Audience>{base}/saml/metadata</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant="{issue}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement><saml:Attribute Name="email"><saml:AttributeValue>user{i}@contoso.com</saml:AttributeValue></saml:Attribute><saml:Attribute Name="groups"><saml:AttributeValue>Engineers</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion></samlp:Response>"##
    )
}

/// samael configured as the ACS configures it.
fn service_provider(
    entity: &str,
    cert_b64: &str,
    base: &str,
) -> samael::service_provider::ServiceProvider {
    use samael::crypto::AllowedSignatureAlgorithm as A;
    samael::service_provider::ServiceProvider {
        entity_id: Some(format!("{base}/saml/metadata")),
        acs_url: Some(format!("{base}/saml/acs/bench")),
        idp_metadata: common::kit::saml::metadata(entity, "signing", cert_b64)
            .parse()
            .expect("metadata"),
        allow_idp_initiated: false,
        allowed_signature_algorithms: Some(vec![
            A::RsaSha256,
            A::RsaSha384,
            A::RsaSha512,
            A::EcdsaSha256,
        ]),
        ..Default::default()
    }
}

/// A keep-alive connection, one request at a time.
fn connect(server: &common::Server) -> Conn {
    let c = server.connect();
    c.tcp().set_nodelay(true).expect("nodelay");
    c
}

/// Starts a sign-in: (request id, relay state, cookie).
fn begin(c: &mut Conn) -> (String, String, String) {
    c.send("GET", "/saml/login/bench", &[], b"");
    common::kit::saml::started(&c.read_response())
}

fn acs(c: &mut Conn, signed: &str, relay: &str, cookie: &str) -> u16 {
    let body = common::kit::saml::acs_form(signed, relay);
    c.send(
        "POST",
        "/saml/acs/bench",
        &[
            ("Cookie", cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body.as_bytes(),
    );
    c.read_response().status
}
