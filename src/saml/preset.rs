//! What each IdP sends, and what its admin must configure (IDP-DIALECTS.md, SAML table).

/// Where the user's identity comes from in an assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    NameId,
    Attribute(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    pub key: &'static str,
    pub label: &'static str,
    pub identity: Identity,
    /// Attribute carrying the email when the identity is not it.
    pub email_attribute: Option<&'static str>,
    /// Attribute carrying group memberships, and whether its values are ids (Entra's
    /// object ids) rather than names.
    pub group_attribute: Option<&'static str>,
    pub groups_are_ids: bool,
    /// An immutable user id to key users by, when the IdP sends one.
    pub immutable_id_attribute: Option<&'static str>,
    /// Add `login_hint=<email>` to the sign-on URL (Entra).
    pub login_hint: bool,
    /// Create users from sign-ins by default (IdPs without SCIM for custom apps).
    pub jit_by_default: bool,
    /// The IdP can verify signed AuthnRequests (Google Workspace cannot).
    pub accepts_signed_requests: bool,
    /// Steps for the IdP admin, beyond entity ID and ACS URL.
    pub instructions: &'static [&'static str],
}

pub const PRESETS: &[Preset] = &[
    Preset {
        key: "entra",
        label: "Microsoft Entra ID",
        identity: Identity::NameId,
        email_attribute: Some("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"),
        group_attribute: Some("http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"),
        groups_are_ids: true,
        immutable_id_attribute: Some(
            "http://schemas.microsoft.com/identity/claims/objectidentifier",
        ),
        login_hint: true,
        jit_by_default: false,
        accepts_signed_requests: true,
        instructions: &[
            "Enterprise application > Single sign-on > SAML: set Identifier (Entity ID) and Reply URL (ACS URL) as shown.",
            "Unique User Identifier (Name ID): user.userprincipalname, format Email address.",
            "Add a group claim: Groups assigned to the application, source attribute Group ID (object ids are matched).",
            "Give seatgate the App Federation Metadata Url (refreshed daily, so certificate rollovers need no action) or the downloaded Federation Metadata XML.",
        ],
    },
    Preset {
        key: "okta",
        label: "Okta",
        identity: Identity::NameId,
        email_attribute: Some("email"),
        group_attribute: Some("groups"),
        groups_are_ids: false,
        immutable_id_attribute: None,
        login_hint: false,
        jit_by_default: false,
        accepts_signed_requests: true,
        instructions: &[
            "SAML 2.0 app: Single sign on URL = ACS URL, Audience URI (SP Entity ID) = Entity ID, as shown.",
            "Name ID format: Unspecified or EmailAddress; Application username: Email.",
            "Attribute statement email = user.email; group attribute statement groups, filter: Matches regex .*",
            "Sign the assertion (the response may be signed too). Copy the metadata URL or download the XML.",
        ],
    },
    Preset {
        key: "google",
        label: "Google Workspace",
        identity: Identity::NameId,
        email_attribute: None,
        group_attribute: Some("groups"),
        groups_are_ids: false,
        immutable_id_attribute: None,
        login_hint: false,
        jit_by_default: true,
        accepts_signed_requests: false,
        instructions: &[
            "Admin console > Apps > Web and mobile apps > Add custom SAML app: ACS URL and Entity ID as shown.",
            "Name ID format: EMAIL, Name ID: Basic Information > Primary email.",
            "Group membership: map the groups to the app attribute groups (Google sends up to 75 names).",
            "Google has no SCIM for custom apps: users are created on their first sign-in.",
        ],
    },
    Preset {
        key: "jumpcloud",
        label: "JumpCloud",
        identity: Identity::NameId,
        email_attribute: Some("email"),
        group_attribute: Some("memberOf"),
        groups_are_ids: false,
        immutable_id_attribute: None,
        login_hint: false,
        jit_by_default: false,
        accepts_signed_requests: true,
        instructions: &[
            "Custom SAML App: SP Entity ID and ACS URL as shown; IdP Entity ID is free text of your choice.",
            "SAMLSubject NameID: email. Enable Include group attribute with the name memberOf.",
            "Sign the assertion. Export the metadata and give it to seatgate.",
        ],
    },
    Preset {
        key: "ping",
        label: "PingOne / PingFederate",
        identity: Identity::Attribute("email"),
        email_attribute: Some("email"),
        group_attribute: Some("memberOf"),
        groups_are_ids: false,
        immutable_id_attribute: None,
        login_hint: false,
        jit_by_default: false,
        accepts_signed_requests: true,
        instructions: &[
            "SAML application: ACS URL and Entity ID as shown.",
            "PingOne sends the user's UUID as Name ID: map an attribute named email to the user's email.",
            "Map group membership to an attribute named memberOf (group names).",
        ],
    },
    Preset {
        key: "generic",
        label: "Other SAML 2.0 IdP",
        identity: Identity::NameId,
        email_attribute: Some("email"),
        group_attribute: Some("groups"),
        groups_are_ids: false,
        immutable_id_attribute: None,
        login_hint: false,
        jit_by_default: false,
        accepts_signed_requests: true,
        instructions: &[
            "ACS URL (HTTP-POST) and SP Entity ID as shown; sign the assertion with SHA-256.",
            "Send the user's email as Name ID, or as an attribute named email; groups as an attribute named groups.",
        ],
    },
];

pub fn find(key: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.key.eq_ignore_ascii_case(key))
}

/// The preset keys, for messages.
pub fn keys() -> String {
    PRESETS.iter().map(|p| p.key).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_preset_is_findable_and_entra_uses_object_ids() {
        for p in super::PRESETS {
            assert_eq!(
                super::find(&p.key.to_uppercase()).map(|f| f.key),
                Some(p.key)
            );
        }
        let entra = super::find("entra").expect("entra");
        assert!(entra.groups_are_ids && entra.login_hint);
        assert!(super::find("unknown").is_none());
        assert_eq!(
            super::keys(),
            "entra, okta, google, jumpcloud, ping, generic"
        );
    }
}
