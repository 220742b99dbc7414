//! Compact JWS with EdDSA (Ed25519) only: no `alg` negotiation, no `none`, no HMAC. A token
//! is verified against a key the caller chooses from the header's `kid` (or, for
//! self-signed requests, the header's own `jwk`), and its `typ` must be the one expected,
//! so a token of one kind is never accepted as another.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde_json::{Value, json};

/// The largest token read (an entitlement is about 1 KB; a usage report for a month of
/// many products some tens of KB).
pub const MAX_TOKEN_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("it is not a signed token (a compact JWS: three base64url parts)")]
    Malformed,
    #[error("it is larger than {MAX_TOKEN_BYTES} bytes")]
    TooLarge,
    #[error("its signature algorithm is {0:?}; only EdDSA is accepted")]
    Algorithm(String),
    #[error("it is a {found:?}, not a {expected:?}")]
    Type { expected: String, found: String },
    #[error("it is signed by an unknown key ({0:?})")]
    UnknownKey(String),
    #[error(
        "its signature does not verify (it was changed after signing, or signed by another key)"
    )]
    BadSignature,
    #[error("the signing key is not a valid Ed25519 key")]
    BadKey,
    #[error("it requires extensions this reader does not support (crit)")]
    Critical,
}

pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// The RFC 7638 thumbprint of an Ed25519 public key (base64url of SHA-256 over the
/// canonical JWK): how a key is named.
pub fn thumbprint(public_key: &[u8]) -> String {
    let jwk = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        b64url(public_key)
    );
    b64url(&sha256(jwk.as_bytes()))
}

/// The public JWK of an Ed25519 key.
pub fn public_jwk(public_key: &[u8]) -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "x": b64url(public_key)})
}

/// An Ed25519 key pair held as its PKCS#8 document.
pub struct KeyPair {
    pkcs8: Vec<u8>,
    pair: Ed25519KeyPair,
}

impl KeyPair {
    /// A new random key.
    pub fn generate() -> Result<KeyPair, JwsError> {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| JwsError::BadKey)?;
        KeyPair::from_pkcs8(doc.as_ref())
    }

    /// Reads a PKCS#8 document (v2, as generated here, or v1 as `openssl genpkey` writes).
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<KeyPair, JwsError> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8))
            .map_err(|_| JwsError::BadKey)?;
        Ok(KeyPair {
            pkcs8: pkcs8.to_vec(),
            pair,
        })
    }

    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    pub fn thumbprint(&self) -> String {
        thumbprint(self.public_key())
    }

    /// A compact JWS of `payload` with header `{"alg":"EdDSA","typ":typ,…extra}`.
    pub fn sign(&self, typ: &str, extra_header: &[(&str, Value)], payload: &Value) -> String {
        let mut header = json!({"alg": "EdDSA", "typ": typ});
        for (k, v) in extra_header {
            header[*k] = v.clone();
        }
        let signing_input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(payload.to_string().as_bytes())
        );
        let signature = self.pair.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", b64url(signature.as_ref()))
    }
}

/// A gateway's own key: it signs registration requests and usage reports, and the
/// entitlements bound to the gateway name its thumbprint.
pub type InstanceKey = KeyPair;

/// A token whose signature verified.
#[derive(Debug, Clone)]
pub struct Verified {
    pub header: Value,
    pub payload: Value,
    /// The public key that verified it.
    pub key: Vec<u8>,
}

/// Verifies a compact JWS of type `typ` with the key `key_for` picks from its header.
pub fn verify(
    token: &str,
    typ: &str,
    key_for: impl FnOnce(&Value) -> Result<Vec<u8>, JwsError>,
) -> Result<Verified, JwsError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_BYTES {
        return Err(JwsError::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed);
    };
    let header: Value = b64url_decode(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(Value::is_object)
        .ok_or(JwsError::Malformed)?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if alg != "EdDSA" {
        return Err(JwsError::Algorithm(alg.to_string()));
    }
    let found = header.get("typ").and_then(Value::as_str).unwrap_or("");
    if found != typ {
        return Err(JwsError::Type {
            expected: typ.to_string(),
            found: found.to_string(),
        });
    }
    // RFC 7515 §4.1.11: a token that needs an extension we do not know is refused.
    if header.get("crit").is_some() {
        return Err(JwsError::Critical);
    }
    let signature = b64url_decode(s).ok_or(JwsError::Malformed)?;
    let key = key_for(&header)?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    UnparsedPublicKey::new(&ED25519, &key)
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| JwsError::BadSignature)?;
    let payload: Value = b64url_decode(p)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(Value::is_object)
        .ok_or(JwsError::Malformed)?;
    Ok(Verified {
        header,
        payload,
        key,
    })
}

/// The raw public key of the header's own `jwk` (self-signed requests and reports).
pub fn embedded_key(header: &Value) -> Result<Vec<u8>, JwsError> {
    let jwk = header.get("jwk").ok_or(JwsError::Malformed)?;
    let member = |k: &str| jwk.get(k).and_then(Value::as_str);
    match (
        member("kty"),
        member("crv"),
        member("x").and_then(b64url_decode),
    ) {
        (Some("OKP"), Some("Ed25519"), Some(x)) if x.len() == 32 => Ok(x),
        _ => Err(JwsError::BadKey),
    }
}

/// Why a self-signed document (registration request, usage report) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelfSignedError {
    #[error("{0}")]
    Signature(#[from] JwsError),
    #[error("{0}")]
    Invalid(String),
}

/// Signs `value` with a gateway's instance key, its public JWK in the header.
pub fn sign_self<T: serde::Serialize>(value: &T, typ: &str, key: &KeyPair) -> String {
    let payload = serde_json::to_value(value).unwrap_or_default();
    key.sign(typ, &[("jwk", public_jwk(key.public_key()))], &payload)
}

/// Verifies a document signed by the key in its header, in a format this code reads,
/// naming that key's instance (`fields` gives the document's format and instance).
pub fn verify_self<T: serde::de::DeserializeOwned>(
    token: &str,
    typ: &str,
    max_format: u32,
    fields: impl Fn(&T) -> (u32, &str),
) -> Result<T, SelfSignedError> {
    let verified = verify(token, typ, embedded_key)?;
    let value: T = serde_json::from_value(verified.payload)
        .map_err(|e| SelfSignedError::Invalid(e.to_string()))?;
    let (format, instance) = fields(&value);
    if format > max_format {
        return Err(SelfSignedError::Invalid(format!(
            "format {format} is newer than this tool reads"
        )));
    }
    if instance != thumbprint(&verified.key) {
        return Err(SelfSignedError::Invalid(
            "it names another instance than the key that signed it".into(),
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(pair: &KeyPair) -> impl FnOnce(&Value) -> Result<Vec<u8>, JwsError> {
        let k = pair.public_key().to_vec();
        move |_| Ok(k)
    }

    #[test]
    fn a_signed_token_verifies_and_any_changed_byte_does_not() {
        let pair = KeyPair::generate().expect("key");
        let token = pair.sign("t", &[], &json!({"a": 1}));
        let ok = verify(&token, "t", key_of(&pair)).expect("verifies");
        assert_eq!(ok.payload["a"], 1);
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).expect("ascii");
            if changed == token {
                continue;
            }
            assert!(verify(&changed, "t", key_of(&pair)).is_err(), "byte {i}");
        }
    }

    #[test]
    fn none_hmac_other_types_and_extra_parts_are_refused() {
        let pair = KeyPair::generate().expect("key");
        let payload = b64url(br#"{"a":1}"#);
        for alg in ["none", "HS256", "RS256", "ES256", "eddsa"] {
            let header = b64url(format!(r#"{{"alg":"{alg}","typ":"t"}}"#).as_bytes());
            let token = format!("{header}.{payload}.");
            assert_eq!(
                verify(&token, "t", key_of(&pair)).map(|_| ()),
                Err(JwsError::Algorithm(alg.to_string()))
            );
        }
        let token = pair.sign("other", &[], &json!({}));
        assert!(matches!(
            verify(&token, "t", key_of(&pair)),
            Err(JwsError::Type { .. })
        ));
        let token = pair.sign("t", &[("crit", json!(["exp"]))], &json!({}));
        assert_eq!(
            verify(&token, "t", key_of(&pair)).map(|_| ()),
            Err(JwsError::Critical)
        );
        let token = pair.sign("t", &[], &json!({}));
        assert_eq!(
            verify(&format!("{token}.x"), "t", key_of(&pair)).map(|_| ()),
            Err(JwsError::Malformed)
        );
        let other = KeyPair::generate().expect("key");
        assert_eq!(
            verify(&token, "t", key_of(&other)).map(|_| ()),
            Err(JwsError::BadSignature)
        );
        let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert_eq!(
            verify(&huge, "t", key_of(&pair)).map(|_| ()),
            Err(JwsError::TooLarge)
        );
    }

    #[test]
    fn thumbprints_follow_rfc_7638() {
        // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
        let x = b64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").expect("x");
        assert_eq!(
            thumbprint(&x),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }
}
