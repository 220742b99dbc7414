//! The domain's error: what went wrong, as a stable [`Reason`], one sentence for the
//! user and, for admins, a detail. Domain code (licensing, SCIM resources, SAML
//! validation, the directory store) returns a [`Problem`]; the web layer
//! ([`crate::error::HttpError`]) adds what only HTTP has (the 405's `Allow`, a logged
//! request id) and renders it for the surface the request came in on.

/// Declares [`Reason`] and its table: each reason once, with its stable code, its HTTP
/// status and the `error` word of API errors (the OAuth-style snake_case name of that
/// status). Nothing else maps reasons to codes, statuses or words.
macro_rules! reasons {
    ($($(#[$doc:meta])* $reason:ident = ($code:literal, $status:literal, $word:literal),)*) => {
        /// Stable reason codes. They appear in API errors, logs, stored refusals and
        /// `seatgate explain`; never rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Reason {
            $($(#[$doc])* $reason,)*
        }

        impl Reason {
            /// Every reason, in the table's order.
            pub const ALL: &[Reason] = &[$(Reason::$reason,)*];

            pub fn code(self) -> &'static str {
                match self {
                    $(Reason::$reason => $code,)*
                }
            }

            /// The default HTTP status for this reason.
            pub fn status(self) -> u16 {
                match self {
                    $(Reason::$reason => $status,)*
                }
            }

            /// The `error` word of an API error with this reason at its default status.
            pub fn error_word(self) -> &'static str {
                match self {
                    $(Reason::$reason => $word,)*
                }
            }
        }
    };
}

reasons! {
    BadRequest = ("BAD_REQUEST", 400, "invalid_request"),
    FieldTooLong = ("FIELD_TOO_LONG", 400, "invalid_request"),
    Unauthorized = ("UNAUTHORIZED", 401, "unauthorized"),
    Forbidden = ("FORBIDDEN", 403, "forbidden"),
    NotFound = ("NOT_FOUND", 404, "not_found"),
    Conflict = ("CONFLICT", 409, "conflict"),
    PreconditionFailed = ("PRECONDITION_FAILED", 412, "precondition_failed"),
    UnsupportedMediaType = ("UNSUPPORTED_MEDIA_TYPE", 415, "unsupported_media_type"),
    TooManyRequests = ("TOO_MANY_REQUESTS", 429, "too_many_requests"),
    DomainUnknown = ("DOMAIN_UNKNOWN", 404, "not_found"),
    DomainNotAllowed = ("DOMAIN_NOT_ALLOWED", 403, "forbidden"),
    SamlRejected = ("SAML_RESPONSE_REJECTED", 400, "invalid_request"),
    SignInExpired = ("SIGN_IN_EXPIRED", 400, "invalid_request"),
    ClockSkew = ("CLOCK_SKEW", 400, "invalid_request"),
    ConnectionIncomplete = ("CONNECTION_INCOMPLETE", 503, "unavailable"),
    NotEntitled = ("NOT_ENTITLED", 403, "forbidden"),
    NoSeats = ("NO_SEATS", 403, "forbidden"),
    LicenseExpired = ("LICENSE_EXPIRED", 403, "forbidden"),
    DeviceLimit = ("DEVICE_LIMIT", 403, "forbidden"),
    Revoked = ("REVOKED", 403, "forbidden"),
    /// A license key that is not (or no longer, after a rotation) one of this gateway's.
    KeyUnknown = ("KEY_UNKNOWN", 403, "forbidden"),
    ActivationExpired = ("ACTIVATION_EXPIRED", 400, "invalid_request"),
    InvalidRedirectUri = ("INVALID_REDIRECT_URI", 400, "invalid_request"),
    /// A vendor entitlement that is not one, or not signed by a trusted vendor key.
    EntitlementInvalid = ("ENTITLEMENT_INVALID", 400, "invalid_request"),
    EntitlementOtherGateway = ("ENTITLEMENT_OTHER_GATEWAY", 400, "invalid_request"),
    EntitlementExpired = ("ENTITLEMENT_EXPIRED", 400, "invalid_request"),
    EntitlementNotStarted = ("ENTITLEMENT_NOT_STARTED", 400, "invalid_request"),
    /// An older serial than the one held, or a serial reused with other contents.
    EntitlementOutdated = ("ENTITLEMENT_OUTDATED", 409, "conflict"),
    UserNotProvisioned = ("USER_NOT_PROVISIONED", 403, "forbidden"),
    UserInactive = ("USER_INACTIVE", 403, "forbidden"),
    NotAdmin = ("NOT_ADMIN", 403, "forbidden"),
    InvalidCredentials = ("INVALID_CREDENTIALS", 401, "unauthorized"),
    SessionExpired = ("SESSION_EXPIRED", 401, "unauthorized"),
    CsrfFailed = ("CSRF_FAILED", 403, "forbidden"),
    OriginMismatch = ("ORIGIN_MISMATCH", 403, "forbidden"),
    MethodNotAllowed = ("METHOD_NOT_ALLOWED", 405, "method_not_allowed"),
    RequestTimeout = ("REQUEST_TIMEOUT", 408, "request_timeout"),
    LengthRequired = ("LENGTH_REQUIRED", 411, "length_required"),
    PayloadTooLarge = ("PAYLOAD_TOO_LARGE", 413, "payload_too_large"),
    HeadersTooLarge = ("HEADERS_TOO_LARGE", 431, "headers_too_large"),
    UnsupportedFeature = ("UNSUPPORTED_FEATURE", 501, "not_implemented"),
    Overloaded = ("OVERLOADED", 503, "unavailable"),
    Unavailable = ("UNAVAILABLE", 503, "unavailable"),
    DatabaseChecking = ("DATABASE_CHECKING", 503, "unavailable"),
    DatabaseCorrupt = ("DATABASE_CORRUPT", 503, "unavailable"),
    DiskFull = ("DISK_FULL", 503, "unavailable"),
    StorageError = ("STORAGE_ERROR", 503, "unavailable"),
    /// Only the command line says the backup reasons; 400 if ever sent.
    BackupWrongPassphrase = ("BACKUP_WRONG_PASSPHRASE", 400, "invalid_request"),
    BackupPassphraseRequired = ("BACKUP_PASSPHRASE_REQUIRED", 400, "invalid_request"),
    BackupDamaged = ("BACKUP_DAMAGED", 400, "invalid_request"),
    BackupNotEncrypted = ("BACKUP_NOT_ENCRYPTED", 400, "invalid_request"),
    /// Another request is writing the same upload.
    UploadBusy = ("UPLOAD_BUSY", 409, "conflict"),
    /// An upload piece that does not start where the stored bytes end (its answer says
    /// where to resume).
    UploadOffsetMismatch = ("UPLOAD_OFFSET_MISMATCH", 409, "conflict"),
    /// An upload whose bytes do not hash to the SHA-256 it declared; nothing is kept.
    HashMismatch = ("HASH_MISMATCH", 422, "invalid_request"),
    /// The storage folder's file system cannot take the file (or leave its reserve).
    StorageFull = ("STORAGE_FULL", 507, "insufficient_storage"),
    /// The file is larger than `[storage] max_file_size`, or would pass
    /// `max_total_size`.
    QuotaExceeded = ("QUOTA_EXCEEDED", 507, "insufficient_storage"),
    RangeNotSatisfiable = ("RANGE_NOT_SATISFIABLE", 416, "range_not_satisfiable"),
    /// An image or package version that already exists.
    VersionExists = ("VERSION_EXISTS", 409, "conflict"),
    Internal = ("INTERNAL_ERROR", 500, "server_error"),
}

impl Reason {
    /// The reason with this code (stored reasons are read back with it).
    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.code() == code)
    }
}

/// A refusal or failure, in the domain's terms. Its HTTP status is its reason's
/// ([`Reason::status`]); nothing below the web layer chooses a status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Problem {
    pub reason: Reason,
    /// One sentence for the user.
    pub message: String,
    /// The SCIM `scimType` (RFC 7644 §3.12), for errors of SCIM requests.
    pub scim_type: Option<&'static str>,
    /// What an admin needs to know about a refusal (the sign-in log); never shown to
    /// the user, never secret material.
    pub detail: Option<String>,
    /// Seconds after which trying again may succeed (a busy or full database).
    pub retry_after: Option<u32>,
}

impl Problem {
    pub fn new(reason: Reason, message: impl Into<String>) -> Problem {
        Problem {
            reason,
            message: message.into(),
            scim_type: None,
            detail: None,
            retry_after: None,
        }
    }

    /// A SCIM error with its `scimType`.
    pub fn scim(reason: Reason, scim_type: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            scim_type: Some(scim_type),
            ..Problem::new(reason, message)
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Problem {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_retry_after(mut self, seconds: u32) -> Problem {
        self.retry_after = Some(seconds);
        self
    }

    pub fn not_found() -> Problem {
        Problem::new(Reason::NotFound, "There is nothing at this address.")
    }

    pub fn internal() -> Problem {
        Problem::new(
            Reason::Internal,
            "The gateway hit an internal error; the details are in its log.",
        )
    }

    /// Every change while the database is damaged (the portal and the log say what to
    /// restore; clients only learn that it is not their fault).
    pub fn database_corrupt() -> Problem {
        Problem::new(
            Reason::DatabaseCorrupt,
            "The gateway's database is damaged, so it accepts no changes until an administrator restores a backup.",
        )
    }
}

impl From<crate::preauth::TooMany> for Problem {
    fn from(e: crate::preauth::TooMany) -> Problem {
        Problem::new(Reason::TooManyRequests, e.to_string()).with_retry_after(e.retry_after)
    }
}

impl From<crate::caps::Refused> for Problem {
    fn from(e: crate::caps::Refused) -> Problem {
        let reason = match e {
            crate::caps::Refused::TooLong { .. } => Reason::FieldTooLong,
            crate::caps::Refused::Invisible { .. } => Reason::BadRequest,
        };
        Problem::new(reason, e.to_string())
    }
}

impl From<crate::http::BadEncoding> for Problem {
    fn from(e: crate::http::BadEncoding) -> Problem {
        Problem::new(Reason::BadRequest, e.0)
    }
}
