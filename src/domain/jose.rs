//! The small part of JOSE seatgate speaks: device public keys as JWKs (Ed25519 `OKP` and
//! P-256 `EC`) with RFC 7638 thumbprints, compact JWS signed with the gateway's Ed25519
//! keys (leases), and compact JWS from devices (proofs of possession).

use serde_json::{Value, json};

use crate::crypto::{DeviceAlg, b64url, b64url_decode, sha256, verify_signature};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    #[error(
        "the device public key must be a JWK: {{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":…}} or {{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":…,\"y\":…}}"
    )]
    BadKey,
    #[error("the token is not a compact JWS")]
    Malformed,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token's algorithm is not allowed here")]
    Algorithm,
}

/// A device's public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceKey {
    pub alg: DeviceAlg,
    /// The raw key: 32 bytes (Ed25519) or an uncompressed P-256 point (65 bytes).
    pub raw: Vec<u8>,
    /// The JWK with only its required members, as stored.
    pub jwk: Value,
    /// RFC 7638 thumbprint, base64url.
    pub thumbprint: String,
}

impl DeviceKey {
    /// Reads a JWK (an object, or its JSON text).
    pub fn from_jwk(value: &Value) -> Result<DeviceKey, JoseError> {
        let value = match value {
            Value::String(text) => serde_json::from_str(text).map_err(|_| JoseError::BadKey)?,
            other => other.clone(),
        };
        let member = |k: &str| {
            value
                .get(k)
                .and_then(Value::as_str)
                .ok_or(JoseError::BadKey)
        };
        let (alg, raw, canonical) = match (member("kty")?, member("crv")?) {
            ("OKP", "Ed25519") => {
                let x = member("x")?;
                let raw = b64url_decode(x)
                    .filter(|k| k.len() == 32)
                    .ok_or(JoseError::BadKey)?;
                // RFC 7638: required members, lexicographic order, no whitespace.
                (
                    DeviceAlg::EdDsa,
                    raw,
                    format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
                )
            }
            ("EC", "P-256") => {
                let (x, y) = (member("x")?, member("y")?);
                let xb = b64url_decode(x)
                    .filter(|k| k.len() == 32)
                    .ok_or(JoseError::BadKey)?;
                let yb = b64url_decode(y)
                    .filter(|k| k.len() == 32)
                    .ok_or(JoseError::BadKey)?;
                let mut raw = vec![4u8];
                raw.extend(xb);
                raw.extend(yb);
                (
                    DeviceAlg::Es256,
                    raw,
                    format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#),
                )
            }
            _ => return Err(JoseError::BadKey),
        };
        let jwk: Value = serde_json::from_str(&canonical).map_err(|_| JoseError::BadKey)?;
        Ok(DeviceKey {
            alg,
            raw,
            thumbprint: b64url(&sha256(canonical.as_bytes())),
            jwk,
        })
    }
}

/// A compact JWS signed with an Ed25519 PKCS#8 key.
pub fn sign_eddsa(
    pkcs8: &[u8],
    kid: &str,
    typ: &str,
    claims: &Value,
) -> Result<String, ring::error::Unspecified> {
    let header = json!({"alg": "EdDSA", "typ": typ, "kid": kid});
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let signature = crate::crypto::ed25519_sign(pkcs8, signing_input.as_bytes())?;
    Ok(format!("{signing_input}.{}", b64url(&signature)))
}

/// The parts of a compact JWS, before verification.
#[derive(Debug, Clone)]
pub struct Jws {
    pub header: Value,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jws {
    pub fn parse(token: &str) -> Result<Jws, JoseError> {
        if token.len() > 16 * 1024 {
            return Err(JoseError::Malformed);
        }
        let mut parts = token.trim().split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JoseError::Malformed);
        };
        let json = |p: &str| {
            b64url_decode(p)
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .filter(Value::is_object)
                .ok_or(JoseError::Malformed)
        };
        Ok(Jws {
            header: json(h)?,
            claims: json(c)?,
            signing_input: format!("{h}.{c}"),
            signature: b64url_decode(s).ok_or(JoseError::Malformed)?,
        })
    }

    /// Verifies with a device key; the header's `alg` must be that key's.
    pub fn verify_device(&self, key: &DeviceKey) -> Result<(), JoseError> {
        if self.header.get("alg").and_then(Value::as_str) != Some(key.alg.jose_name()) {
            return Err(JoseError::Algorithm);
        }
        if verify_signature(
            key.alg,
            &key.raw,
            self.signing_input.as_bytes(),
            &self.signature,
        ) {
            Ok(())
        } else {
            Err(JoseError::BadSignature)
        }
    }

    /// Verifies an EdDSA signature with a raw Ed25519 public key.
    pub fn verify_eddsa(&self, public_key: &[u8]) -> Result<(), JoseError> {
        if self.header.get("alg").and_then(Value::as_str) != Some("EdDSA") {
            return Err(JoseError::Algorithm);
        }
        if verify_signature(
            DeviceAlg::EdDsa,
            public_key,
            self.signing_input.as_bytes(),
            &self.signature,
        ) {
            Ok(())
        } else {
            Err(JoseError::BadSignature)
        }
    }
}

/// The RFC 7638 thumbprint of the gateway's Ed25519 public key: its `kid`.
pub fn okp_kid(public_key: &[u8]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        b64url(public_key)
    );
    b64url(&sha256(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_thumbprint_of_the_rfc8037_example_key() {
        // RFC 8037 appendix A.3: the thumbprint of its Ed25519 example key.
        let key = DeviceKey::from_jwk(&json!({"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}))
            .expect("key");
        assert_eq!(
            key.thumbprint,
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
        assert_eq!(key.alg, DeviceAlg::EdDsa);
    }

    #[test]
    fn bad_keys_are_refused() {
        for bad in [
            json!({"kty": "RSA", "n": "x", "e": "AQAB"}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": "short"}),
            json!({"kty": "EC", "crv": "P-384", "x": "a", "y": "b"}),
            json!("not json"),
            json!(42),
        ] {
            assert_eq!(DeviceKey::from_jwk(&bad), Err(JoseError::BadKey), "{bad}");
        }
    }

    #[test]
    fn eddsa_tokens_round_trip_and_tampering_is_caught() {
        let (pkcs8, public) = crate::crypto::ed25519_generate().expect("key");
        let token =
            sign_eddsa(&pkcs8, &okp_kid(&public), "JWT", &json!({"sub": "u1"})).expect("sign");
        let jws = Jws::parse(&token).expect("parse");
        assert!(jws.verify_eddsa(&public).is_ok());
        assert_eq!(jws.claims["sub"], "u1");
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64url(br#"{"sub":"u2"}"#);
        parts[1] = &forged;
        let tampered = Jws::parse(&parts.join(".")).expect("parse");
        assert_eq!(tampered.verify_eddsa(&public), Err(JoseError::BadSignature));
        assert!(Jws::parse("a.b").is_err());
    }
}
