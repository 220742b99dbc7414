//! An IdP connection as the rest of the gateway sees it: the identity provider's
//! metadata (parsed by `saml::metadata`) and how a directory scope is named.

/// A signing certificate of an IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpCertificate {
    pub der: Vec<u8>,
    pub sha256: String,
    pub subject: String,
    pub not_after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpMetadata {
    pub entity_id: String,
    pub sso_url: String,
    pub certificates: Vec<IdpCertificate>,
}

/// How a directory scope is named to admins.
pub fn scope_label(connection: Option<&str>) -> String {
    match connection {
        Some(c) => format!("connection {c}"),
        None => "SCIM tokens without a connection".to_string(),
    }
}
