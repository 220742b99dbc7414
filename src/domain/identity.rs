//! Who signed in: what a verified SAML assertion says about a person, and what the
//! directory knows about them. The SAML layer produces these; licensing and the portal
//! act on them.

use std::collections::BTreeMap;

/// What a sign-in is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// An admin checking a connection: the result page shows what the IdP sent.
    Test,
    /// Signing into the admin portal.
    Admin,
    /// Completing a device activation.
    Activation,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Test => "test",
            Purpose::Admin => "admin",
            Purpose::Activation => "activation",
        }
    }

    /// The stored word; the table's CHECK admits only the three.
    pub fn parse(s: &str) -> Purpose {
        match s {
            "admin" => Purpose::Admin,
            "activation" => Purpose::Activation,
            _ => Purpose::Test,
        }
    }
}

/// A verified sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub connection: String,
    /// The identity per the preset (NameID or a named attribute), lower-cased if an email.
    pub identity: String,
    pub email: Option<String>,
    /// The IdP's immutable user id (Entra's object id), when its preset names one.
    pub immutable_id: Option<String>,
    pub groups: Vec<String>,
    pub attributes: BTreeMap<String, Vec<String>>,
    /// The connection creates users unknown to the directory (no SCIM).
    pub jit_users: bool,
    pub return_to: Option<String>,
    /// What the sign-in was started for.
    pub purpose: Purpose,
    /// The AuthnRequest it answers (none for IdP-initiated sign-in).
    pub request_id: Option<String>,
    /// The connection's email domains (case-folded), which the resolved user must be in.
    pub domains: Vec<String>,
}

/// What the directory knows about a signed-in identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    User {
        id: String,
        user_name: String,
        active: bool,
    },
    NotProvisioned,
}
