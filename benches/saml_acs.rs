//! SAML ACS benchmark (issue 4), run with `cargo bench --bench saml_acs`.
//!
//! Validated logins per second through the release binary's ACS over HTTPS with 8
//! keep-alive clients. Every login is real: its own SP-initiated request (and binding
//! cookie), and a response signed by the `xmlsec1` CLI with an RSA-2048 key, minted before
//! the timed part. The share of time spent in signature verification is measured by timing
//! samael's verification of the same responses in-process, single-threaded.
//!
//! Needs `openssl` and `xmlsec1` on PATH. `LOGINS` (default 2000) sets the count;
//! `SEATGATE_BENCH_BIN` runs another binary (e.g. the self-contained build).

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine;

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
    let cert_b64 = common::idp_certificate(&tmp);
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
    let addr = server.addr;
    let base = format!("https://127.0.0.1:{}", addr.port());
    common::add_idp(&tmp, &data, entity, &cert_b64, "contoso.com");
    let tls = common::client_config(&data.join("tls/ca.pem"));

    // Mint: a request per login, then its signed response (xmlsec1, both cores).
    println!("# seatgate SAML ACS benchmark\n\nminting {logins} signed responses with xmlsec1 …");
    let mut c = Client::new(addr, &tls);
    let requests: Vec<(String, String, String)> = (0..logins).map(|_| c.begin()).collect();
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
                    *signed[i].lock().expect("lock") = sign(&tmp, &xml, i);
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
                let mut c = Client::new(addr, &tls);
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= logins {
                        break;
                    }
                    let (_, relay, cookie) = &requests[i];
                    let t = Instant::now();
                    let status = c.acs(&signed[i], relay, cookie);
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

fn sign(dir: &Path, xml: &str, i: usize) -> String {
    let input = dir.join(format!("r{i}.xml"));
    let output = dir.join(format!("r{i}.signed.xml"));
    std::fs::write(&input, xml).expect("write");
    let key = format!(
        "{},{}",
        dir.join("key.pem").display(),
        dir.join("cert.pem").display()
    );
    let out = Command::new("xmlsec1")
        .args([
            "--sign",
            "--privkey-pem",
            &key,
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
            "--output",
        ])
        .arg(&output)
        .arg(&input)
        .output()
        .expect("xmlsec1");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(output).expect("signed")
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
        idp_metadata: common::idp_metadata(entity, cert_b64)
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

struct Client {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    fn new(addr: SocketAddr, tls: &Arc<rustls::ClientConfig>) -> Client {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        Client {
            stream: rustls::StreamOwned::new(
                rustls::ClientConnection::new(Arc::clone(tls), name).expect("tls"),
                tcp,
            ),
            buf: Vec::new(),
        }
    }

    /// Starts a sign-in: (request id, relay state, cookie).
    fn begin(&mut self) -> (String, String, String) {
        self.stream
            .write_all(b"GET /saml/login/bench HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .expect("write");
        let (status, headers, _) = self.read();
        assert_eq!(status, 302);
        let header = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
                .expect(n)
        };
        let location = header("location");
        let relay = location
            .split('&')
            .find_map(|p| p.strip_prefix("RelayState="))
            .expect("relay")
            .to_string();
        let cookie = header("set-cookie")
            .split(';')
            .next()
            .expect("cookie")
            .to_string();
        let q = location.split_once('?').expect("query").1;
        let v = q
            .split('&')
            .find_map(|p| p.strip_prefix("SAMLRequest="))
            .expect("request");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(seatgate::http::percent_decode(v).expect("decode"))
            .expect("b64");
        let mut xml = String::new();
        flate2::read::DeflateDecoder::new(&raw[..])
            .read_to_string(&mut xml)
            .expect("inflate");
        let id = xml
            .split("ID=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("id")
            .to_string();
        (id, relay, cookie)
    }

    fn acs(&mut self, signed: &str, relay: &str, cookie: &str) -> u16 {
        let b64 = base64::engine::general_purpose::STANDARD.encode(signed.as_bytes());
        let body = format!(
            "SAMLResponse={}&RelayState={relay}",
            seatgate::http::percent_encode(&b64)
        );
        let head = format!(
            "POST /saml/acs/bench HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.stream.write_all(head.as_bytes()).expect("write");
        self.stream.write_all(body.as_bytes()).expect("write");
        self.read().0
    }

    fn read(&mut self) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut chunk = [0u8; 16384];
        loop {
            let mut hs = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut hs);
            if let Ok(httparse::Status::Complete(head)) = r.parse(&self.buf) {
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let status = r.code.unwrap_or(0);
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .unwrap_or(0);
                if self.buf.len() >= head + len {
                    let body = self.buf[head..head + len].to_vec();
                    self.buf.drain(..head + len);
                    return (status, headers, body);
                }
            }
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "closed");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
