//! Length caps on the fields an unauthenticated client sends, in one place so that every
//! surface refuses the same way: 400 `FIELD_TOO_LONG` before anything is stored, logged or
//! hashed. The gatekeeper's body and head caps bound the request; these bound each field.

use crate::error::{HttpError, Reason};

/// One field's cap, in bytes of UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    /// How the refusal names the field.
    pub field: &'static str,
    pub max_bytes: usize,
}

/// RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets.
pub const EMAIL: Cap = Cap {
    field: "email address",
    max_bytes: 254,
};
/// The break-glass username rule (`admin::password::USERNAME_RULE`) allows 64.
pub const USERNAME: Cap = Cap {
    field: "username",
    max_bytes: 64,
};
/// Generous for any passphrase; keeps Argon2's input small.
pub const PASSWORD: Cap = Cap {
    field: "password",
    max_bytes: 1024,
};
/// What the activation page and the portal show for a device.
pub const DEVICE_NAME: Cap = Cap {
    field: "device name",
    max_bytes: 128,
};
pub const DEVICE_OS: Cap = Cap {
    field: "device os",
    max_bytes: 128,
};
/// `return=` of a sign-in: a local path stored with the request.
pub const RETURN_PATH: Cap = Cap {
    field: "return address",
    max_bytes: 512,
};

/// A loopback `redirect_uri` (RFC 8252): callbacks are short, and it is stored before
/// anyone has signed in. Refused as `INVALID_REDIRECT_URI` with the rest of its rules.
pub const REDIRECT_URI: Cap = Cap {
    field: "redirect_uri",
    max_bytes: 512,
};

impl Cap {
    /// `value`, or the refusal when it is longer than the cap.
    pub fn check<'a>(&self, value: &'a str) -> Result<&'a str, HttpError> {
        if value.len() <= self.max_bytes {
            Ok(value)
        } else {
            Err(HttpError::new(
                Reason::FieldTooLong,
                format!(
                    "The {} is too long: at most {} bytes are accepted.",
                    self.field, self.max_bytes
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_at_the_cap_passes_and_one_byte_more_is_field_too_long() {
        let at = "a".repeat(EMAIL.max_bytes);
        assert_eq!(EMAIL.check(&at).ok(), Some(at.as_str()));
        let over = EMAIL.check(&format!("{at}a")).expect_err("over the cap");
        assert_eq!((over.status, over.reason.code()), (400, "FIELD_TOO_LONG"));
        // Bytes, not characters: 65 two-byte characters are 130 bytes.
        assert!(DEVICE_NAME.check(&"é".repeat(65)).is_err());
    }
}
