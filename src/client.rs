//! The reference client: the activation protocol exactly as a Mac app speaks it. It keeps
//! its device key (Ed25519, PKCS#8, 0600) and its lease in a state directory, activates
//! through the browser (device authorization with polling), renews with a proof signed by
//! the device key, deactivates, and verifies leases offline against the JWKS.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::crypto::{b64url, ed25519_generate};
use crate::domain::jose::{DeviceKey, Jws, sign_eddsa};
use crate::licensing::leases::{LEASE_TYP, PROOF_TYP};
use crate::licensing::policies::POLICY_TYP;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
    /// The gateway refused the VM report sent with a renewal (not the renewal itself).
    #[error("the VM report was refused: {0}")]
    ReportRefused(String),
}

pub(crate) fn failed(e: impl std::fmt::Display) -> ClientError {
    ClientError::Failed(e.to_string())
}

/// What the client remembers between runs (`state.json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub server: String,
    pub email: String,
    pub ca_cert: Option<PathBuf>,
    pub device_id: Option<String>,
    pub lease_id: Option<String>,
    pub last_proof_iat: i64,
    /// The server's answer when it last refused a renewal; cleared by the next success.
    /// The lease still verifies offline until it expires, so `status` must say this.
    #[serde(default)]
    pub last_refusal: Option<Refusal>,
    /// The license key this device was activated with (a per-device seat), if it was.
    #[serde(default)]
    pub license_key: Option<String>,
}

/// A renewal the server refused: when, and what it said.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Refusal {
    pub at: i64,
    pub reason: String,
    pub message: String,
}

pub struct Client {
    pub(crate) dir: PathBuf,
    pub(crate) agent: ureq::Agent,
    key_pkcs8: Vec<u8>,
    key: DeviceKey,
}

impl Client {
    /// Opens (creating on first use) the state directory and the device key in it.
    pub fn open(dir: &Path, ca_cert: Option<&Path>) -> Result<Client, ClientError> {
        crate::datadir::ensure_private_dir(dir)
            .map_err(|e| failed(format!("cannot use {}: {e}", dir.display())))?;
        let key_path = dir.join("device-key.p8");
        let pkcs8 = match std::fs::read(&key_path) {
            Ok(k) => k,
            Err(_) => {
                let (pkcs8, _) =
                    ed25519_generate().map_err(|_| failed("cannot generate a device key"))?;
                crate::datadir::write_private_file(&key_path, &pkcs8).map_err(failed)?;
                pkcs8
            }
        };
        let public = {
            use ring::signature::KeyPair;
            ring::signature::Ed25519KeyPair::from_pkcs8(&pkcs8)
                .map_err(|_| failed(format!("{} is not an Ed25519 key", key_path.display())))?
                .public_key()
                .as_ref()
                .to_vec()
        };
        let key =
            DeviceKey::from_jwk(&json!({"kty": "OKP", "crv": "Ed25519", "x": b64url(&public)}))
                .map_err(failed)?;
        Ok(Client {
            dir: dir.to_path_buf(),
            agent: agent(ca_cert)?,
            key_pkcs8: pkcs8,
            key,
        })
    }

    pub fn thumbprint(&self) -> &str {
        &self.key.thumbprint
    }

    pub fn state(&self) -> Option<State> {
        std::fs::read(self.dir.join("state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
    }

    pub(crate) fn save_state(&self, s: &State) -> Result<(), ClientError> {
        let text = serde_json::to_vec_pretty(s).map_err(failed)?;
        crate::datadir::write_private_file(&self.dir.join("state.json"), &text).map_err(failed)
    }

    pub fn lease_path(&self) -> PathBuf {
        self.dir.join("lease.jws")
    }

    /// Starts an activation, prints the browser URL, polls until it is decided.
    pub fn activate(
        &self,
        server: &str,
        email: &str,
        name: &str,
        ca_cert: Option<&Path>,
        out: &mut dyn std::io::Write,
    ) -> Result<Value, ClientError> {
        let server = server.trim_end_matches('/');
        let started = self.post(
            &format!("{server}/api/v1/activations"),
            &json!({"email": email, "device": {"public_key": self.key.jwk, "name": name, "os": std::env::consts::OS}}),
            None,
        )?;
        if started.0 != 201 {
            return Err(refused(&started.1));
        }
        let s = &started.1;
        let url = s["verification_uri_complete"].as_str().unwrap_or_default();
        let _ = writeln!(
            out,
            "Open this address in your browser and sign in:\n\n  {url}\n\nConfirm that the page shows the code {}.\n\
             Waiting for the sign-in: the result (a lease, or why not, such as NO_SEATS) appears here once you have signed in.",
            s["user_code"].as_str().unwrap_or_default()
        );
        let _ = out.flush();
        let device_code = s["device_code"].as_str().unwrap_or_default().to_string();
        let mut interval = s["interval"].as_u64().unwrap_or(5);
        let deadline = std::time::Instant::now()
            + Duration::from_secs(s["expires_in"].as_u64().unwrap_or(600));
        loop {
            std::thread::sleep(Duration::from_secs(interval));
            if std::time::Instant::now() > deadline {
                return Err(ClientError::Failed(
                    "the activation expired before the sign-in finished (ACTIVATION_EXPIRED)"
                        .into(),
                ));
            }
            let (status, body) = self.post(
                &format!("{server}/api/v1/activations/token"),
                &json!({"device_code": device_code}),
                None,
            )?;
            if status == 200 {
                let lease = body["license"].as_str().unwrap_or_default().to_string();
                let claims = Jws::parse(&lease).map_err(failed)?.claims;
                std::fs::write(self.lease_path(), &lease).map_err(failed)?;
                self.save_state(&State {
                    server: server.to_string(),
                    email: email.to_string(),
                    ca_cert: ca_cert.map(Path::to_path_buf),
                    device_id: body["device_id"].as_str().map(str::to_string),
                    lease_id: claims["jti"].as_str().map(str::to_string),
                    last_proof_iat: 0,
                    last_refusal: None,
                    license_key: None,
                })?;
                return Ok(claims);
            }
            match body["error"].as_str() {
                Some("authorization_pending") => {}
                Some("slow_down") => interval += 5,
                _ => return Err(refused(&body)),
            }
        }
    }

    /// Activates with a license key: a per-device seat and the lease at once, no sign-in.
    pub fn activate_with_key(
        &self,
        server: &str,
        license_key: &str,
        name: &str,
        ca_cert: Option<&Path>,
    ) -> Result<Value, ClientError> {
        let server = server.trim_end_matches('/');
        let (status, body) = self.post(
            &format!("{server}/api/v1/activations"),
            &json!({"license_key": license_key, "device": {"public_key": self.key.jwk, "name": name, "os": std::env::consts::OS}}),
            None,
        )?;
        if status != 201 {
            return Err(refused(&body));
        }
        let lease = body["license"].as_str().unwrap_or_default().to_string();
        let claims = Jws::parse(&lease).map_err(failed)?.claims;
        std::fs::write(self.lease_path(), &lease).map_err(failed)?;
        self.save_state(&State {
            server: server.to_string(),
            email: String::new(),
            ca_cert: ca_cert.map(Path::to_path_buf),
            device_id: body["device_id"].as_str().map(str::to_string),
            lease_id: claims["jti"].as_str().map(str::to_string),
            last_proof_iat: 0,
            last_refusal: None,
            license_key: claims["license_key"].as_str().map(str::to_string),
        })?;
        Ok(claims)
    }

    /// Renews the lease with a proof signed by the device key, reporting the device's
    /// virtual machines when given (a JSON array, as `domain::inventory` reads it). A
    /// refused report (400 or 413) must not cost the Mac its license: the renewal is sent
    /// again without it, and the refusal comes back in `report_refused`.
    /// Renews with a report (`{"vms": […], "app_version": "…"}`); a refused report is
    /// dropped and the renewal made without it (the reason is returned).
    pub fn renew_reporting(&self, report: &Value) -> Result<(Value, Option<String>), ClientError> {
        match self.renew(Some(report)) {
            Err(ClientError::ReportRefused(why)) => Ok((self.renew(None)?, Some(why))),
            other => other.map(|claims| (claims, None)),
        }
    }

    pub fn renew(&self, report: Option<&Value>) -> Result<Value, ClientError> {
        let mut state = self.state().ok_or_else(not_activated)?;
        let proof = self.proof(&mut state, "renew")?;
        let mut body = json!({"proof": proof});
        if let Some(fields) = report.and_then(Value::as_object) {
            for (k, v) in fields {
                body[k.as_str()] = v.clone();
            }
        }
        let (status, body) = self.post(
            &format!("{}/api/v1/leases/renew", state.server),
            &body,
            None,
        )?;
        if report.is_some() && matches!(status, 400 | 413) {
            // The report, not the Mac, was refused: nothing is recorded as a refusal.
            self.save_state(&state)?;
            return Err(ClientError::ReportRefused(refused(&body).to_string()));
        }
        if status != 200 {
            state.last_refusal = Some(Refusal {
                at: crate::clock::now_unix(),
                reason: body["reason"].as_str().unwrap_or("REFUSED").to_string(),
                message: body["message"]
                    .as_str()
                    .unwrap_or("the gateway refused")
                    .to_string(),
            });
            self.save_state(&state)?;
            return Err(refused(&body));
        }
        let lease = body["license"].as_str().unwrap_or_default();
        std::fs::write(self.lease_path(), lease).map_err(failed)?;
        state.lease_id = body["lease_id"].as_str().map(str::to_string);
        state.last_refusal = None;
        self.save_state(&state)?;
        Ok(Jws::parse(lease).map_err(failed)?.claims)
    }

    pub fn policy_path(&self) -> PathBuf {
        self.dir.join("policy.jws")
    }

    /// Fetches this device's effective policy (`If-None-Match` with the one kept), verifies
    /// it against the gateway's JWKS and keeps it.
    pub fn policy(&self) -> Result<PolicyFetch, ClientError> {
        let mut state = self.state().ok_or_else(not_activated)?;
        let jwks = self.jwks(&state.server)?;
        let kept = std::fs::read_to_string(self.policy_path())
            .ok()
            .and_then(|t| verify_policy(&t, &jwks, &state).ok().map(|c| (t, c)));
        let proof = self.proof(&mut state, "policy")?;
        let url = format!("{}/api/v1/policy", state.server);
        let mut request = self
            .agent
            .get(&url)
            .header("Authorization", &format!("Device {proof}"));
        if let Some((_, claims)) = &kept {
            let etag = format!("\"{}\"", claims["policy"].as_str().unwrap_or(""));
            request = request.header("If-None-Match", &etag);
        }
        let response = request.call().map_err(|e| transport(&url, e))?;
        self.save_state(&state)?;
        match (response.status().as_u16(), kept) {
            (304, Some((_, claims))) => Ok(PolicyFetch {
                claims,
                changed: false,
            }),
            (200, _) => {
                let token = response
                    .into_body()
                    .with_config()
                    .limit(1024 * 1024)
                    .read_to_string()
                    .map_err(failed)?;
                let claims = verify_policy(token.trim(), &jwks, &state)?;
                std::fs::write(self.policy_path(), token.trim()).map_err(failed)?;
                Ok(PolicyFetch {
                    claims,
                    changed: true,
                })
            }
            (status, _) => {
                let body = json_body(response);
                if body.is_null() {
                    return Err(failed(format!("the gateway answered {status}")));
                }
                Err(refused(&body))
            }
        }
    }

    /// Deactivates this device at the gateway and forgets the lease.
    pub fn deactivate(&self) -> Result<(), ClientError> {
        let mut state = self.state().ok_or_else(not_activated)?;
        let proof = self.proof(&mut state, "deactivate")?;
        let lease = state.lease_id.clone().unwrap_or_default();
        let response = self
            .agent
            .delete(&format!("{}/api/v1/leases/{lease}", state.server))
            .header("Authorization", &format!("Device {proof}"))
            .call()
            .map_err(|e| transport(&state.server, e))?;
        let status = response.status().as_u16();
        let body = json_body(response);
        self.save_state(&state)?;
        if status != 200 {
            return Err(refused(&body));
        }
        let _ = std::fs::remove_file(self.lease_path());
        state.lease_id = None;
        state.device_id = None;
        self.save_state(&state)
    }

    /// A proof of possession: a JWS by the device key, newer than the last one sent.
    pub(crate) fn proof(&self, state: &mut State, action: &str) -> Result<String, ClientError> {
        let mut iat = crate::clock::now_unix();
        if iat <= state.last_proof_iat {
            std::thread::sleep(Duration::from_millis(1100));
            iat = crate::clock::now_unix().max(state.last_proof_iat + 1);
        }
        state.last_proof_iat = iat;
        let device = state.device_id.clone().ok_or_else(not_activated)?;
        sign_eddsa(
            &self.key_pkcs8,
            &self.key.thumbprint,
            PROOF_TYP,
            &json!({"action": action, "device": device, "iat": iat}),
        )
        .map_err(|_| failed("cannot sign the proof"))
    }

    /// Fetches the gateway's JWKS.
    pub fn jwks(&self, server: &str) -> Result<Value, ClientError> {
        let response = self
            .agent
            .get(&format!("{server}/.well-known/jwks.json"))
            .call()
            .map_err(|e| transport(server, e))?;
        let body = json_body(response);
        if body.is_null() {
            return Err(failed("the JWKS is not JSON"));
        }
        Ok(body)
    }

    fn post(
        &self,
        url: &str,
        body: &Value,
        auth: Option<&str>,
    ) -> Result<(u16, Value), ClientError> {
        let mut request = self
            .agent
            .post(url)
            .header("Content-Type", "application/json");
        if let Some(a) = auth {
            request = request.header("Authorization", a);
        }
        let response = request
            .send(body.to_string())
            .map_err(|e| transport(url, e))?;
        let status = response.status().as_u16();
        let body = json_body(response);
        Ok((status, body))
    }
}

/// What makes a lease this client's: issued by the gateway it activated against (`iss`),
/// and bound to its device key (`cnf.jkt`). A lease copied from another device, or signed
/// by a key the JWKS shares with another gateway, is not.
pub struct Binding<'a> {
    pub issuer: &'a str,
    pub thumbprint: &'a str,
}

impl Client {
    /// This client's binding, once activated against `state.server`.
    pub fn binding<'a>(&'a self, state: &'a State) -> Binding<'a> {
        Binding {
            issuer: &state.server,
            thumbprint: self.thumbprint(),
        }
    }
}

/// Verifies a lease offline: signature against `jwks`, `typ`, `nbf`/`exp`, and, given a
/// binding, `iss` and `cnf.jkt`; returns the claims.
pub fn verify_lease(
    token: &str,
    jwks: &Value,
    now: i64,
    binding: Option<&Binding<'_>>,
) -> Result<Value, ClientError> {
    let claims = verify_signed(token, jwks, LEASE_TYP, "a seatgate lease")?;
    if claims["nbf"].as_i64().unwrap_or(i64::MAX) > now + 300 {
        return Err(ClientError::Failed("the lease is not valid yet".into()));
    }
    if claims["exp"].as_i64().unwrap_or(0) < now {
        return Err(ClientError::Failed("the lease has expired".into()));
    }
    if let Some(b) = binding {
        let issuer = claims["iss"].as_str().unwrap_or("no one");
        if issuer.trim_end_matches('/') != b.issuer.trim_end_matches('/') {
            return Err(ClientError::Failed(format!(
                "the lease was issued by {issuer}, not by {}, the gateway this client activated against",
                b.issuer
            )));
        }
        let jkt = claims["cnf"]["jkt"].as_str().unwrap_or("none");
        if jkt != b.thumbprint {
            return Err(ClientError::Failed(format!(
                "the lease is bound to another device's key (cnf.jkt {jkt}), not to this device's ({})",
                b.thumbprint
            )));
        }
    }
    Ok(claims)
}

/// Verifies a JWS of type `typ` signed by a key of `jwks`; returns its claims.
pub(crate) fn verify_signed(
    token: &str,
    jwks: &Value,
    typ: &str,
    what: &str,
) -> Result<Value, ClientError> {
    let jws = Jws::parse(token).map_err(failed)?;
    if jws.header["typ"] != typ {
        return Err(ClientError::Failed(format!("not {what}")));
    }
    let kid = jws.header["kid"].as_str().unwrap_or_default();
    let key = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid))
        .ok_or_else(|| ClientError::Failed(format!("no key {kid} in the JWKS")))?;
    let public = crate::crypto::b64url_decode(key["x"].as_str().unwrap_or_default())
        .ok_or_else(|| failed("the JWKS key is unreadable"))?;
    jws.verify_eddsa(&public).map_err(failed)?;
    Ok(jws.claims)
}

/// Verifies a policy document: signed by the gateway's lease keys, issued by the gateway
/// this client activated against for this device, and its `policy` digest that of its
/// settings (so the lease's `policy` claim can be compared with it).
pub fn verify_policy(token: &str, jwks: &Value, state: &State) -> Result<Value, ClientError> {
    let claims = verify_signed(token, jwks, POLICY_TYP, "a seatgate policy")?;
    let issuer = claims["iss"].as_str().unwrap_or("no one");
    if issuer.trim_end_matches('/') != state.server.trim_end_matches('/') {
        return Err(ClientError::Failed(format!(
            "the policy was issued by {issuer}, not by {}",
            state.server
        )));
    }
    if claims["device"].as_str() != state.device_id.as_deref() {
        return Err(failed("the policy is for another device"));
    }
    let digest = b64url(&crate::crypto::sha256(
        claims["settings"].to_string().as_bytes(),
    ));
    if claims["policy"].as_str() != Some(digest.as_str()) {
        return Err(failed("the policy's digest does not match its settings"));
    }
    Ok(claims)
}

/// A policy fetch: the verified claims, and whether the gateway sent a new document.
pub struct PolicyFetch {
    pub claims: Value,
    pub changed: bool,
}

/// A request that got no answer, in words that say what to do: above all an untrusted
/// certificate, which is the gateway's own CA not yet trusted on this Mac.
pub(crate) fn transport(url: &str, e: ureq::Error) -> ClientError {
    let host = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or(url);
    let text = e.to_string();
    // ureq wraps rustls's certificate errors; their text is what is stable to match here
    // (rustls itself belongs to the network front).
    let untrusted = text.contains("invalid peer certificate")
        || text.contains("UnknownIssuer")
        || text.contains("NotValidForName");
    ClientError::Failed(if untrusted {
        format!(
            "this machine does not trust the certificate of {host} (TLS_UNTRUSTED): pass \
             --ca-cert with the gateway's CA file (tls/ca.pem in its data directory, also \
             downloadable from the portal's welcome page at /admin/tls/ca.pem), or trust that CA \
             on this machine (on a Mac, with your MDM); ({text})"
        )
    } else if matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Timeout(_)
    ) {
        format!(
            "cannot reach the gateway at {host} (UNREACHABLE): check the address and port, and \
             that this machine can reach it; ({text})"
        )
    } else {
        format!("the request to {host} failed: {text}")
    })
}

pub(crate) fn not_activated() -> ClientError {
    ClientError::Usage("this client is not activated; run `seatgate client activate` first".into())
}

pub(crate) fn refused(body: &Value) -> ClientError {
    let reason = body["reason"].as_str().unwrap_or("");
    let message = body["message"].as_str().unwrap_or("the gateway refused");
    let error = body["error"].as_str().unwrap_or("error");
    ClientError::Failed(format!(
        "{message} ({error}{})",
        if reason.is_empty() {
            String::new()
        } else {
            format!(", {reason}")
        }
    ))
}

fn agent(ca_cert: Option<&Path>) -> Result<ureq::Agent, ClientError> {
    use ureq::tls::{RootCerts, TlsConfig};
    let mut roots: Vec<ureq::tls::Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| ClientError::Usage(format!("cannot read {}: {e}", path.display())))?;
        for item in ureq::tls::parse_pem(&pem) {
            if let Ok(ureq::tls::PemItem::Certificate(c)) = item {
                roots.push(c);
            }
        }
    }
    let roots = if roots.is_empty() {
        RootCerts::WebPki
    } else {
        RootCerts::new_with_certs(&roots)
    };
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .user_agent(concat!("seatgate-client/", env!("CARGO_PKG_VERSION")))
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build()
        .into())
}

/// A response body as JSON (`null` when it is not), read up to 1 MiB.
pub(crate) fn json_body(response: ureq::http::Response<ureq::Body>) -> Value {
    response
        .into_body()
        .with_config()
        .limit(1024 * 1024)
        .read_to_string()
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}
