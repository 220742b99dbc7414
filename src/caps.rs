//! Length caps on the fields an unauthenticated client sends, in one place so that every
//! surface refuses the same way: 400 `FIELD_TOO_LONG` before anything is stored, logged or
//! hashed. The gatekeeper's body and head caps bound the request; these bound each field.

/// One field's cap, in bytes of UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    /// How the refusal names the field.
    pub field: &'static str,
    pub max_bytes: usize,
    /// Refuse control characters and invisible formatting (bidi overrides, line
    /// separators): text shown to people (a device name on the confirmation page) or
    /// that must be an address. Passwords may hold anything.
    pub printable: bool,
}

/// RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets.
pub const EMAIL: Cap = Cap {
    field: "email address",
    max_bytes: 254,
    printable: true,
};
/// The break-glass username rule (`admin::password::USERNAME_RULE`) allows 64.
pub const USERNAME: Cap = Cap {
    field: "username",
    max_bytes: 64,
    printable: true,
};
/// Generous for any passphrase; keeps Argon2's input small.
pub const PASSWORD: Cap = Cap {
    field: "password",
    max_bytes: 1024,
    printable: false,
};
/// What the activation page and the portal show for a device.
pub const DEVICE_NAME: Cap = Cap {
    field: "device name",
    max_bytes: 128,
    printable: true,
};
pub const DEVICE_OS: Cap = Cap {
    field: "device os",
    max_bytes: 128,
    printable: true,
};
/// `return=` of a sign-in: a local path stored with the request.
pub const RETURN_PATH: Cap = Cap {
    field: "return address",
    max_bytes: 512,
    printable: true,
};

/// A one-time code typed into a form (the setup code; a whole pasted link is cut to its
/// code first). The codes seatgate mints are 43 characters.
pub const SETUP_CODE: Cap = Cap {
    field: "setup code",
    max_bytes: 256,
    printable: true,
};

/// A loopback `redirect_uri` (RFC 8252): callbacks are short, and it is stored before
/// anyone has signed in. Refused as `INVALID_REDIRECT_URI` with the rest of its rules.
pub const REDIRECT_URI: Cap = Cap {
    field: "redirect_uri",
    max_bytes: 512,
    printable: true,
};

/// Why a value was refused (`error.rs` maps it: `FIELD_TOO_LONG`, `BAD_REQUEST`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("The {field} is too long: at most {max_bytes} bytes are accepted.")]
    TooLong {
        field: &'static str,
        max_bytes: usize,
    },
    #[error("The {field} contains a control or invisible formatting character.")]
    Invisible { field: &'static str },
}

impl Cap {
    /// `value`, or the refusal when it is longer than the cap or, for printable fields,
    /// holds a control or invisible formatting character.
    pub fn check<'a>(&self, value: &'a str) -> Result<&'a str, Refused> {
        if value.len() > self.max_bytes {
            return Err(Refused::TooLong {
                field: self.field,
                max_bytes: self.max_bytes,
            });
        }
        if self.printable && value.chars().any(invisible) {
            return Err(Refused::Invisible { field: self.field });
        }
        Ok(value)
    }
}

/// Characters that change how text around them is shown rather than showing themselves:
/// C0/C1 controls, line and paragraph separators, and Unicode's default-ignorable code
/// points (bidi marks, embeddings, overrides and isolates, zero-width characters, soft
/// hyphens, Hangul fillers, tag characters, interlinear annotations), except variation
/// selectors, which emoji need.
pub fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// A name an admin types (a product, sublicense, group, license key or token name):
/// trimmed, not empty, at most `max` characters, and no control or invisible formatting
/// characters (they would make two names look alike on a page or drive a terminal).
/// The refusal is one sentence naming `what`.
pub fn admin_name<'a>(what: &str, value: &'a str, max: usize) -> Result<&'a str, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("the {what} must not be empty"));
    }
    if value.chars().count() > max {
        return Err(format!("the {what} is longer than {max} characters"));
    }
    if value.chars().any(invisible) {
        return Err(format!(
            "the {what} holds control or invisible formatting characters"
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_fields_refuse_controls_and_invisible_formatting_passwords_do_not() {
        for bad in [
            "Mallory\u{202E}caM",
            "a\u{2028}b",
            "x\r\ny",
            "esc\u{1b}[2K",
            "zero\u{200B}width",
        ] {
            let e = crate::error::HttpError::from(DEVICE_NAME.check(bad).expect_err(bad));
            assert_eq!((e.status, e.reason.code()), (400, "BAD_REQUEST"));
        }
        assert!(EMAIL.check("kim@contoso.com\r\nX: y").is_err());
        assert!(DEVICE_NAME.check("Kim's MacBook Pro — 14\"").is_ok());
        assert!(DEVICE_NAME.check("Kim's \u{2764}\u{FE0F} Mac").is_ok());
        assert!(PASSWORD.check("tab\there\u{202E}").is_ok());
    }

    #[test]
    fn a_value_at_the_cap_passes_and_one_byte_more_is_field_too_long() {
        let at = "a".repeat(EMAIL.max_bytes);
        assert_eq!(EMAIL.check(&at).ok(), Some(at.as_str()));
        let over = crate::error::HttpError::from(
            EMAIL.check(&format!("{at}a")).expect_err("over the cap"),
        );
        assert_eq!((over.status, over.reason.code()), (400, "FIELD_TOO_LONG"));
        // Bytes, not characters: 65 two-byte characters are 130 bytes.
        assert!(DEVICE_NAME.check(&"é".repeat(65)).is_err());
    }
}
