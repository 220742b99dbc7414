//! A registration request: a gateway asks the vendor for an entitlement bound to it. It is
//! signed with the gateway's instance key, whose public JWK travels in the header, so the
//! vendor can check that whoever sent it holds the key the entitlement will name.

use serde::{Deserialize, Serialize};

use crate::jws::{self, InstanceKey, JwsError};

pub const TYP: &str = "seatgate-registration+jws";
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub format: u32,
    /// The instance key's thumbprint: what a bound entitlement names.
    pub instance: String,
    /// The seatgate version that wrote it.
    pub gateway_version: String,
    /// Where the gateway answers (its public URL) and the machine's name, to help the
    /// vendor's support staff recognize it.
    pub public_url: String,
    pub hostname: String,
    /// The entitlements the gateway holds now (id and serial), for renewals.
    #[serde(default)]
    pub current: Vec<Held>,
    /// Unix seconds.
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub entitlement_id: String,
    pub serial: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the registration request is not valid: {0}")]
    Signature(#[from] JwsError),
    #[error("the registration request is not valid: {0}")]
    Invalid(String),
}

impl Request {
    /// Signs it with the gateway's instance key.
    pub fn sign(&self, key: &InstanceKey) -> String {
        jws::sign_self(self, TYP, key)
    }

    /// Verifies it: unchanged since the instance key in its header, the instance it
    /// names, signed it.
    pub fn verify(token: &str) -> Result<Request, RequestError> {
        jws::verify_self(token, TYP, FORMAT, |r: &Request| {
            (r.format, r.instance.as_str())
        })
        .map_err(|e| match e {
            jws::SelfSignedError::Signature(e) => RequestError::Signature(e),
            jws::SelfSignedError::Invalid(why) => RequestError::Invalid(why),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jws::KeyPair;

    fn request(key: &KeyPair) -> Request {
        Request {
            format: FORMAT,
            instance: key.thumbprint(),
            gateway_version: "0.1.0".into(),
            public_url: "https://gw.example".into(),
            hostname: "gw".into(),
            current: vec![],
            created_at: 1_700_000_000,
        }
    }

    #[test]
    fn a_request_proves_its_instance_key() {
        let key = KeyPair::generate().expect("key");
        let token = request(&key).sign(&key);
        assert_eq!(Request::verify(&token), Ok(request(&key)));
        // Naming another gateway's instance with one's own key is refused.
        let other = KeyPair::generate().expect("key");
        let mut lying = request(&key);
        lying.instance = other.thumbprint();
        assert!(matches!(
            Request::verify(&lying.sign(&key)),
            Err(RequestError::Invalid(_))
        ));
    }
}
