//! A usage report: a month of seat usage per product and day, for the vendor's true-up.
//! Signed with the gateway's instance key (its public JWK in the header), so the vendor
//! can verify it offline and any edit after signing shows. Personal data (who held a
//! seat) is included only when the admin opts in.

use serde::{Deserialize, Serialize};

use crate::jws::{self, InstanceKey, JwsError};

pub const TYP: &str = "seatgate-usage+jws";
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub format: u32,
    /// The instance key's thumbprint.
    pub instance: String,
    /// `YYYY-MM` (UTC).
    pub month: String,
    pub gateway_version: String,
    /// Unix seconds.
    pub generated_at: i64,
    /// The entitlements held when the report was made.
    #[serde(default)]
    pub entitlements: Vec<crate::registration::Held>,
    pub products: Vec<ProductUsage>,
    /// Seat holders' user names, when the admin opted in; otherwise absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat_holders: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductUsage {
    pub product: String,
    /// The gateway's license, and the vendor entitlement behind it (if any).
    pub license: String,
    #[serde(default)]
    pub entitlement_id: Option<String>,
    /// Seats the product's licenses allowed at the end of the month.
    pub licensed_seats: i64,
    pub days: Vec<DayUsage>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayUsage {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// The most seats held at once that day.
    pub peak_seats: i64,
    /// Seats held, averaged over the day's samples.
    pub average_seats: f64,
    /// Devices activated that day.
    pub activations: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("the usage report is not valid: {0}")]
    Signature(#[from] JwsError),
    #[error("the usage report is not valid: {0}")]
    Invalid(String),
}

impl Report {
    /// Signs it with the gateway's instance key.
    pub fn sign(&self, key: &InstanceKey) -> String {
        jws::sign_self(self, TYP, key)
    }

    /// Verifies it: unchanged since the instance key in its header, the instance it
    /// names, signed it.
    pub fn verify(token: &str) -> Result<Report, ReportError> {
        jws::verify_self(token, TYP, FORMAT, |r: &Report| {
            (r.format, r.instance.as_str())
        })
        .map_err(|e| match e {
            jws::SelfSignedError::Signature(e) => ReportError::Signature(e),
            jws::SelfSignedError::Invalid(why) => ReportError::Invalid(why),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jws::KeyPair;

    #[test]
    fn an_edited_report_is_refused() {
        let key = KeyPair::generate().expect("key");
        let report = Report {
            format: FORMAT,
            instance: key.thumbprint(),
            month: "2026-10".into(),
            gateway_version: "0.1.0".into(),
            generated_at: 1_700_000_000,
            entitlements: vec![],
            products: vec![ProductUsage {
                product: "P".into(),
                license: "lic-1".into(),
                entitlement_id: None,
                licensed_seats: 10,
                days: vec![DayUsage {
                    date: "2026-10-01".into(),
                    peak_seats: 7,
                    average_seats: 6.5,
                    activations: 2,
                }],
            }],
            seat_holders: None,
        };
        let token = report.sign(&key);
        assert_eq!(Report::verify(&token), Ok(report.clone()));
        // Lower the peak and re-encode the payload, keeping the signature.
        let parts: Vec<&str> = token.split('.').collect();
        let mut edited = report;
        edited.products[0].days[0].peak_seats = 3;
        let payload = jws::b64url(serde_json::to_string(&edited).expect("json").as_bytes());
        let forged = format!("{}.{}.{}", parts[0], payload, parts[2]);
        assert_eq!(
            Report::verify(&forged),
            Err(ReportError::Signature(JwsError::BadSignature))
        );
    }
}
