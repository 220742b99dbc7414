//! The audit log's vocabulary: who made a change ([`Actor`]) and what it was
//! ([`AuditAction`]), each with exactly one stored string form. The strings are those
//! earlier versions wrote, byte for byte: existing databases, the audit CSV and the API
//! keep reading them.

use std::fmt;

/// Who a change is audited under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An admin signed in to the portal, by the session's display name: `admin:{name}`.
    Admin(String),
    /// An admin API token, by its name: `admin-token:{name}`.
    AdminToken(String),
    /// A SCIM token, by its name: `scim:{name}`.
    Scim(String),
    /// A SAML sign-in, by its IdP connection: `saml:{connection}`.
    Saml(String),
    /// A device proving its key, by its id: `device:{id}`.
    Device(String),
    /// The command line: `admin:cli`.
    Cli,
    /// First-run setup: `setup`.
    Setup,
    /// The gateway itself (expiries, silent devices, one-time links): `system`.
    System,
    /// The demo organization's seed: `demo`.
    Demo,
    /// A license key activating a device, by the key's id: `license-key:{id}`.
    LicenseKey(String),
}

impl Actor {
    /// The actor a stored string names. The command line's `admin:cli` reads back as
    /// [`Actor::Cli`], never as an admin called `cli`.
    pub fn parse(s: &str) -> Option<Actor> {
        let named = |prefix: &str| s.strip_prefix(prefix).map(str::to_string);
        Some(match s {
            "admin:cli" => Actor::Cli,
            "setup" => Actor::Setup,
            "system" => Actor::System,
            "demo" => Actor::Demo,
            _ => {
                if let Some(n) = named("admin-token:") {
                    Actor::AdminToken(n)
                } else if let Some(n) = named("admin:") {
                    Actor::Admin(n)
                } else if let Some(n) = named("scim:") {
                    Actor::Scim(n)
                } else if let Some(n) = named("saml:") {
                    Actor::Saml(n)
                } else if let Some(n) = named("license-key:") {
                    Actor::LicenseKey(n)
                } else {
                    Actor::Device(named("device:")?)
                }
            }
        })
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Admin(name) => write!(f, "admin:{name}"),
            Actor::AdminToken(name) => write!(f, "admin-token:{name}"),
            Actor::Scim(name) => write!(f, "scim:{name}"),
            Actor::Saml(connection) => write!(f, "saml:{connection}"),
            Actor::Device(id) => write!(f, "device:{id}"),
            Actor::Cli => f.write_str("admin:cli"),
            Actor::Setup => f.write_str("setup"),
            Actor::System => f.write_str("system"),
            Actor::Demo => f.write_str("demo"),
            Actor::LicenseKey(id) => write!(f, "license-key:{id}"),
        }
    }
}

/// Declares [`AuditAction`] with each action's stored string, once.
macro_rules! audit_actions {
    ($($action:ident = $text:literal,)*) => {
        /// What an audit entry records.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum AuditAction {
            $($action,)*
        }

        impl AuditAction {
            pub const ALL: &[AuditAction] = &[$(AuditAction::$action,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(AuditAction::$action => $text,)*
                }
            }
        }
    };
}

audit_actions! {
    ActivationRefused = "activation_refused",
    AdminLoginLinkCreated = "admin_login_link_created",
    AdminTokenCreated = "admin_token_created",
    AdminTokenRevoked = "admin_token_revoked",
    DeviceActivated = "device_activated",
    DeviceMovedToUser = "device_moved_to_user",
    DeviceReleased = "device_released",
    DeviceRevoked = "device_revoked",
    EntitlementImported = "entitlement_imported",
    IdpConnectionAdded = "idp_connection_added",
    ImageAssigned = "image_assigned",
    ImageUnassigned = "image_unassigned",
    ImageVersionAdded = "image_version_added",
    ImageVersionDeleted = "image_version_deleted",
    InvitationResent = "invitation_resent",
    InvitationTemplateChanged = "invitation_template_changed",
    InvitationRevoked = "invitation_revoked",
    InvitationsSent = "invitations_sent",
    IdpConnectionChanged = "idp_connection_changed",
    IdpConnectionRemoved = "idp_connection_removed",
    LicenseAdded = "license_added",
    LicenseChanged = "license_changed",
    LicenseKeyChanged = "license_key_changed",
    LicenseKeyCreated = "license_key_created",
    LicenseKeyRevoked = "license_key_revoked",
    LicenseKeyRotated = "license_key_rotated",
    LocalAdminCreated = "local_admin_created",
    LocalAdminPasswordChanged = "local_admin_password_changed",
    LocalAdminRemoved = "local_admin_removed",
    MappingAdded = "mapping_added",
    MappingRemoved = "mapping_removed",
    NotificationsChanged = "notifications_changed",
    PackageAdded = "package_added",
    PackageRetired = "package_retired",
    PendingCleared = "pending_cleared",
    PolicyAssigned = "policy_assigned",
    PolicyChanged = "policy_changed",
    PolicyCreated = "policy_created",
    PolicyDefaultChanged = "policy_default_changed",
    PolicyDeleted = "policy_deleted",
    PolicyPriorityChanged = "policy_priority_changed",
    PolicyUnassigned = "policy_unassigned",
    ProfileWithKeyExported = "profile_with_key_exported",
    RenewalRefused = "renewal_refused",
    ScimTokenCreated = "scim_token_created",
    ScimTokenRevoked = "scim_token_revoked",
    SeatGranted = "seat_granted",
    SeatPending = "seat_pending",
    SeatRevoked = "seat_revoked",
    UsageReportExported = "usage_report_exported",
    SublicenseAdded = "sublicense_added",
    SublicenseChanged = "sublicense_changed",
    SublicenseRemoved = "sublicense_removed",
    TestEmailQueued = "test_email_queued",
}

impl AuditAction {
    /// The action a stored string names (the audit filters read it back).
    pub fn parse(s: &str) -> Option<AuditAction> {
        AuditAction::ALL.iter().copied().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_keep_their_stored_strings_and_read_back() {
        for (actor, text) in [
            (Actor::Admin("Ada Admin".into()), "admin:Ada Admin"),
            (Actor::AdminToken("ci".into()), "admin-token:ci"),
            (Actor::Scim("okta".into()), "scim:okta"),
            (Actor::Saml("conn-1".into()), "saml:conn-1"),
            (Actor::Device("dev-01".into()), "device:dev-01"),
            (Actor::Cli, "admin:cli"),
            (Actor::Setup, "setup"),
            (Actor::System, "system"),
            (Actor::Demo, "demo"),
            (Actor::LicenseKey("key-01".into()), "license-key:key-01"),
        ] {
            assert_eq!(actor.to_string(), text);
            assert_eq!(Actor::parse(text), Some(actor), "{text}");
        }
        assert_eq!(Actor::parse("someone"), None);
    }

    #[test]
    fn audit_actions_have_one_unique_string_each() {
        let mut seen = std::collections::HashSet::new();
        for &action in AuditAction::ALL {
            assert!(seen.insert(action.as_str()), "{action} twice");
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(AuditAction::parse("nothing"), None);
    }
}
