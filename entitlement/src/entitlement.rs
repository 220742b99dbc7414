//! An entitlement: what an organization bought, signed by the vendor. The gateway trusts
//! only the vendor keys it was built with; an entitlement may be bound to one gateway
//! (its instance key's thumbprint). A newer serial of the same entitlement replaces the
//! older one (renewal, upgrade, edition change, trial to paid).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::jws::{self, JwsError, KeyPair};

/// The JWS `typ` of entitlements.
pub const TYP: &str = "seatgate-entitlement+jws";
/// The payload format this code reads and writes; a newer one is refused, not guessed.
pub const FORMAT: u32 = 1;
/// The longest text field (ids, names, product, edition).
const MAX_TEXT: usize = 200;
/// Dates are between 1970-01-01 and 9999-12-31 (Unix seconds).
const LAST_DATE: i64 = 253_402_300_799;

/// Characters no name may hold: control characters, and the invisible or direction-
/// changing ones (zero-width, bidi overrides and isolates, BOM) that make two names look
/// alike or reorder what an admin reads.
pub fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}')
}

/// A vendor public key the gateway trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedKey {
    /// The key id entitlements name in their header (`kid`).
    pub kid: &'static str,
    /// The raw Ed25519 public key, base64url.
    pub public_key: &'static str,
}

/// The signed claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlement {
    /// The payload format ([`FORMAT`]).
    pub format: u32,
    pub customer_id: String,
    pub customer_name: String,
    /// The vendor's id for this purchase; stays the same across renewals.
    pub entitlement_id: String,
    /// Grows with each reissue of the same entitlement; only a higher one replaces.
    pub serial: u32,
    pub product: String,
    pub edition: String,
    /// Per-user seats.
    pub seats: u32,
    /// Per-device seats (devices activated with a license key).
    #[serde(default)]
    pub device_seats: u32,
    /// Unix seconds.
    pub starts_at: i64,
    /// Unix seconds; the last moment the entitlement is valid.
    pub ends_at: i64,
    #[serde(default)]
    pub trial: bool,
    /// The longest a device may run on one lease without reaching the gateway (days).
    pub max_offline_grace_days: u32,
    /// Whether devices may be activated with license keys (per-device seats).
    #[serde(default)]
    pub per_device_keys: bool,
    /// How many gateways the customer may run with this entitlement.
    pub gateways: u32,
    /// The gateway it is bound to (its instance key's thumbprint), if bound.
    #[serde(default)]
    pub instance: Option<String>,
    /// When the vendor signed it (Unix seconds).
    pub issued_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntitlementError {
    #[error("the file is not a valid entitlement: {0}")]
    Signature(#[from] JwsError),
    #[error("the entitlement is in format {0}, newer than this seatgate reads; update seatgate")]
    NewerFormat(u32),
    #[error("the entitlement's contents are not valid: {0}")]
    Invalid(String),
}

impl Entitlement {
    /// Checks the claims' own consistency (any gateway, any time).
    pub fn check(&self) -> Result<(), EntitlementError> {
        let invalid = |what: &str| Err(EntitlementError::Invalid(what.to_string()));
        if self.format > FORMAT {
            return Err(EntitlementError::NewerFormat(self.format));
        }
        let texts = [
            &self.customer_id,
            &self.customer_name,
            &self.entitlement_id,
            &self.product,
            &self.edition,
        ];
        if texts.iter().any(|t| t.trim().is_empty()) {
            return invalid("customer, entitlement id, product and edition must not be empty");
        }
        if texts
            .iter()
            .any(|t| t.len() > MAX_TEXT || t.chars().any(is_hidden))
        {
            return invalid("a text field is too long or has control or invisible characters");
        }
        let dates = [self.starts_at, self.ends_at, self.issued_at];
        if dates.iter().any(|t| !(0..=LAST_DATE).contains(t)) {
            return invalid("a date is before 1970 or after 9999");
        }
        if self.serial == 0 {
            return invalid("the serial starts at 1");
        }
        if self.ends_at <= self.starts_at {
            return invalid("it ends before it starts");
        }
        if self.gateways == 0 {
            return invalid("it allows no gateway");
        }
        if self.device_seats > 0 && !self.per_device_keys {
            return invalid("it has per-device seats but does not allow license keys");
        }
        Ok(())
    }

    /// Signs the claims with a vendor key (the vendor's tool).
    pub fn sign(&self, key: &KeyPair, kid: &str) -> Result<String, EntitlementError> {
        self.check()?;
        let payload =
            serde_json::to_value(self).map_err(|e| EntitlementError::Invalid(e.to_string()))?;
        Ok(key.sign(TYP, &[("kid", Value::from(kid))], &payload))
    }

    /// Verifies a token against `trusted` keys and reads its claims.
    pub fn verify(token: &str, trusted: &[TrustedKey]) -> Result<Entitlement, EntitlementError> {
        Entitlement::verify_with_kid(token, trusted).map(|(claims, _)| claims)
    }

    /// As [`Entitlement::verify`], also naming the vendor key that signed it.
    pub fn verify_with_kid(
        token: &str,
        trusted: &[TrustedKey],
    ) -> Result<(Entitlement, String), EntitlementError> {
        let verified = jws::verify(token, TYP, |header| {
            let kid = header.get("kid").and_then(Value::as_str).unwrap_or("");
            trusted
                .iter()
                .find(|k| k.kid == kid)
                .and_then(|k| jws::b64url_decode(k.public_key))
                .ok_or_else(|| JwsError::UnknownKey(kid.to_string()))
        })?;
        let format = verified
            .payload
            .get("format")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if format > u64::from(FORMAT) {
            return Err(EntitlementError::NewerFormat(
                u32::try_from(format).unwrap_or(u32::MAX),
            ));
        }
        let claims: Entitlement = serde_json::from_value(verified.payload)
            .map_err(|e| EntitlementError::Invalid(e.to_string()))?;
        claims.check()?;
        let kid = verified
            .header
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok((claims, kid))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample() -> Entitlement {
        Entitlement {
            format: FORMAT,
            customer_id: "cus-1".into(),
            customer_name: "Acme Corp".into(),
            entitlement_id: "ent-1".into(),
            serial: 1,
            product: "Parallels Desktop".into(),
            edition: "Enterprise".into(),
            seats: 250,
            device_seats: 0,
            starts_at: 1_700_000_000,
            ends_at: 1_900_000_000,
            trial: false,
            max_offline_grace_days: 30,
            per_device_keys: false,
            gateways: 1,
            instance: None,
            issued_at: 1_700_000_000,
        }
    }

    fn trusted(key: &KeyPair) -> Vec<TrustedKey> {
        let public: &'static str = Box::leak(jws::b64url(key.public_key()).into_boxed_str());
        vec![TrustedKey {
            kid: "v1",
            public_key: public,
        }]
    }

    #[test]
    fn a_vendor_signed_entitlement_reads_back() {
        let key = KeyPair::generate().expect("key");
        let token = sample().sign(&key, "v1").expect("signs");
        assert_eq!(Entitlement::verify(&token, &trusted(&key)), Ok(sample()));
    }

    #[test]
    fn unknown_keys_and_rotated_key_lists() {
        let old = KeyPair::generate().expect("key");
        let token = sample().sign(&old, "v0").expect("signs");
        let new = KeyPair::generate().expect("key");
        assert_eq!(
            Entitlement::verify(&token, &trusted(&new)),
            Err(EntitlementError::Signature(JwsError::UnknownKey(
                "v0".into()
            )))
        );
        // The right kid with another key's signature.
        let forged = sample().sign(&old, "v1").expect("signs");
        assert_eq!(
            Entitlement::verify(&forged, &trusted(&new)),
            Err(EntitlementError::Signature(JwsError::BadSignature))
        );
    }

    #[test]
    fn inconsistent_claims_are_refused_on_both_sides() {
        let key = KeyPair::generate().expect("key");
        type Change = Box<dyn Fn(&mut Entitlement)>;
        let cases: Vec<(&str, Change)> = vec![
            ("serial", Box::new(|e| e.serial = 0)),
            ("dates", Box::new(|e| e.ends_at = e.starts_at)),
            ("empty", Box::new(|e| e.product = " ".into())),
            ("control", Box::new(|e| e.customer_name = "a\nb".into())),
            (
                "bidi",
                Box::new(|e| e.product = "Parallels\u{202E}potkseD".into()),
            ),
            (
                "zero width",
                Box::new(|e| e.product = "Parallels\u{200B}Desktop".into()),
            ),
            ("far future", Box::new(|e| e.ends_at = i64::MAX)),
            ("before 1970", Box::new(|e| e.starts_at = -100)),
            (
                "issued far ahead",
                Box::new(|e| e.issued_at = 253_402_300_800),
            ),
            ("long", Box::new(|e| e.edition = "x".repeat(201))),
            ("gateways", Box::new(|e| e.gateways = 0)),
            ("keys", Box::new(|e| e.device_seats = 5)),
        ];
        for (what, change) in cases {
            let mut e = sample();
            change(&mut e);
            assert!(e.sign(&key, "v1").is_err(), "{what}");
            // Signed anyway (a buggy vendor tool): the gateway refuses it too.
            let payload = serde_json::to_value(&e).expect("json");
            let token = key.sign(TYP, &[("kid", Value::from("v1"))], &payload);
            assert!(
                matches!(
                    Entitlement::verify(&token, &trusted(&key)),
                    Err(EntitlementError::Invalid(_))
                ),
                "{what}"
            );
        }
        let mut newer = serde_json::to_value(sample()).expect("json");
        newer["format"] = 2.into();
        let token = key.sign(TYP, &[("kid", Value::from("v1"))], &newer);
        assert_eq!(
            Entitlement::verify(&token, &trusted(&key)),
            Err(EntitlementError::NewerFormat(2))
        );
    }
}
