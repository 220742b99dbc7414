//! `GET /api/v1/admin/openapi.json`: the admin API described as OpenAPI 3.1. Each
//! operation is one entry of [`OPERATIONS`]; a test holds this list and the route table to
//! the same (method, path) pairs, so the document cannot drift from what is served.

use serde_json::{Value, json};

/// A JSON body: its properties (name, JSON type, description), and which are required.
pub type Body = (&'static [Property], &'static [&'static str]);
pub type Property = (&'static str, &'static str, &'static str);

/// One operation of the admin API.
pub struct Operation {
    pub method: &'static str,
    /// As in the route table: `/api/v1/admin/licenses/{id}`.
    pub path: &'static str,
    pub summary: &'static str,
    /// The JSON body, if the operation takes one.
    pub body: Option<Body>,
    /// Query parameters: (name, JSON type, description).
    pub query: &'static [Property],
    /// The success status.
    pub status: u16,
}

const fn op(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    status: u16,
) -> Operation {
    Operation {
        method,
        path,
        summary,
        body: None,
        query: &[],
        status,
    }
}

const EXPIRES: (&str, &str, &str) = (
    "expires",
    "string",
    "last day of validity, YYYY-MM-DD (valid to its end, 23:59:59 UTC)",
);

pub const OPERATIONS: &[Operation] = &[
    op("GET", "/api/v1/admin/openapi.json", "This document", 200),
    Operation {
        query: &[
            (
                "q",
                "string",
                "matched anywhere in the user name, email, given, family or display name",
            ),
            ("seat", "string", "seated, waiting, none or inactive"),
            (
                "sort",
                "string",
                "name (default), email, status, seat or devices",
            ),
            ("dir", "string", "asc (default) or desc"),
            ("offset", "integer", "0 or more"),
            ("limit", "integer", "1 to 1000 (default 100)"),
        ],
        ..op(
            "GET",
            "/api/v1/admin/users",
            "Users with seat, pool, waiting position, groups and devices",
            200,
        )
    },
    op(
        "GET",
        "/api/v1/admin/users/{id}",
        "A user and what activation would answer for them now",
        200,
    ),
    op(
        "GET",
        "/api/v1/admin/users/{id}/devices",
        "A user's devices",
        200,
    ),
    Operation {
        query: &[("email", "string", "any email, provisioned or not")],
        ..op(
            "GET",
            "/api/v1/admin/explain",
            "What activation would answer for an email now, and why",
            200,
        )
    },
    op(
        "DELETE",
        "/api/v1/admin/devices/{id}",
        "Deactivate a device: the Mac is refused at its next renewal (the person keeps their seat)",
        204,
    ),
    op(
        "GET",
        "/api/v1/admin/licenses",
        "Licenses and their pools",
        200,
    ),
    Operation {
        body: Some((
            &[
                ("product", "string", "the product name"),
                ("seats", "integer", "0 or more"),
                EXPIRES,
                ("key", "string", "a license key, kept as a label"),
            ],
            &["product", "seats"],
        )),
        ..op(
            "POST",
            "/api/v1/admin/licenses",
            "Register a license by hand (not from the vendor)",
            201,
        )
    },
    Operation {
        body: Some((
            &[
                (
                    "seats",
                    "integer",
                    "refused for a license from a vendor entitlement",
                ),
                (
                    "expires",
                    "string|null",
                    "YYYY-MM-DD, or null for never; refused for a vendor license",
                ),
                (
                    "max_offline_days",
                    "integer|null",
                    "1 to 365: how long a Mac works without the gateway; null for the default",
                ),
            ],
            &[],
        )),
        ..op(
            "PATCH",
            "/api/v1/admin/licenses/{id}",
            "Change a license; seats are re-decided at once",
            200,
        )
    },
    Operation {
        body: Some((
            &[(
                "entitlement",
                "string",
                "the entitlement file's contents (the file itself may also be sent as the body)",
            )],
            &["entitlement"],
        )),
        ..op(
            "POST",
            "/api/v1/admin/entitlements",
            "Import a vendor entitlement",
            200,
        )
    },
    Operation {
        body: Some((
            &[
                ("license", "string", "the license's id or product"),
                ("name", "string", "the sublicense's name"),
                ("seats", "integer", "0 or more"),
                (
                    "reserved",
                    "boolean",
                    "reserved seats, else dynamic (drawn from the primary pool)",
                ),
                EXPIRES,
            ],
            &["license", "name", "seats", "reserved"],
        )),
        ..op("POST", "/api/v1/admin/sublicenses", "Add a sublicense", 201)
    },
    Operation {
        body: Some((
            &[
                ("seats", "integer", "0 or more"),
                ("expires", "string|null", "YYYY-MM-DD, or null for never"),
            ],
            &[],
        )),
        ..op(
            "PATCH",
            "/api/v1/admin/sublicenses/{id}",
            "Change a sublicense; seats are re-decided at once",
            200,
        )
    },
    op(
        "DELETE",
        "/api/v1/admin/sublicenses/{id}",
        "Remove a sublicense no mapping and no user draws from",
        204,
    ),
    op("GET", "/api/v1/admin/mappings", "Group mappings", 200),
    Operation {
        body: Some((
            &[
                (
                    "group",
                    "string",
                    "the IdP group: SCIM displayName or externalId, or the SAML group value",
                ),
                (
                    "connection",
                    "string",
                    "the IdP connection whose groups it applies to; absent: SCIM tokens without a connection",
                ),
                ("grants", "string", "admins, primary or sublicense"),
                (
                    "license",
                    "string",
                    "primary: which license (needed when there are several)",
                ),
                ("sublicense", "string", "sublicense: its id or name"),
            ],
            &["group", "grants"],
        )),
        ..op(
            "POST",
            "/api/v1/admin/mappings",
            "Map a group to a role; seats are re-decided at once",
            201,
        )
    },
    op(
        "DELETE",
        "/api/v1/admin/mappings/{id}",
        "Remove a mapping; its members lose what it granted",
        200,
    ),
    op(
        "GET",
        "/api/v1/admin/invitations",
        "Invitations with their status: queued, sent, failed (with the mail server's reason), opened, activated, expired, revoked",
        200,
    ),
    Operation {
        body: Some((
            &[
                ("emails", "array", "addresses to invite"),
                (
                    "group",
                    "string",
                    "also everyone in this group (name or external id) without an active device",
                ),
                (
                    "license",
                    "string",
                    "activate with a one-device license key of this license (else single sign-on)",
                ),
                (
                    "sublicense",
                    "string",
                    "with license: from this sublicense's seats",
                ),
            ],
            &[],
        )),
        ..op(
            "POST",
            "/api/v1/admin/invitations",
            "Invite people: the answer lists the invitations made and the addresses refused, with why",
            201,
        )
    },
    op(
        "POST",
        "/api/v1/admin/invitations/{id}/resend",
        "Send an invitation again with a new link (the old link stops working)",
        200,
    ),
    op(
        "DELETE",
        "/api/v1/admin/invitations/{id}",
        "Revoke an invitation: its link stops working",
        200,
    ),
    op(
        "GET",
        "/api/v1/admin/outbox",
        "The outbox: counts per state and the newest messages with their last error",
        200,
    ),
    Operation {
        body: Some((&[("to", "string", "the address to send it to")], &["to"])),
        ..op(
            "POST",
            "/api/v1/admin/outbox/test",
            "Queue a test email",
            202,
        )
    },
    Operation {
        query: &[(
            "activation",
            "string",
            "sso (the default) or key: how the Macs activate",
        )],
        ..op(
            "GET",
            "/api/v1/admin/profile",
            "The MDM configuration profile (.mobileconfig, signed when [profile] signing_identity is set)",
            200,
        )
    },
    Operation {
        body: Some((
            &[
                ("activation", "string", "sso or key"),
                (
                    "license_key",
                    "string",
                    "a live license key to put in the profile (activation key)",
                ),
            ],
            &[],
        )),
        ..op(
            "POST",
            "/api/v1/admin/profile",
            "The MDM configuration profile with a license key in it",
            200,
        )
    },
    op(
        "GET",
        "/api/v1/admin/profile/info",
        "What the profile holds: identifier, version, signer, CA, email domains",
        200,
    ),
    op(
        "GET",
        "/api/v1/admin/license-keys",
        "License keys: pool, device limit, devices in use (never the keys)",
        200,
    ),
    Operation {
        body: Some((
            &[
                ("license", "string", "the license's id or product name"),
                (
                    "sublicense",
                    "string",
                    "draw the seats from this sublicense (id or name) instead of the primary pool",
                ),
                ("name", "string", "at most 100 characters"),
                (
                    "devices",
                    "integer",
                    "how many devices it may activate, 1 or more",
                ),
            ],
            &["license", "devices"],
        )),
        ..op(
            "POST",
            "/api/v1/admin/license-keys",
            "Create a license key; the answer holds the key (license_key), once",
            201,
        )
    },
    Operation {
        body: Some((
            &[
                ("name", "string", "at most 100 characters"),
                (
                    "devices",
                    "integer",
                    "how many devices it may activate, 1 or more",
                ),
                (
                    "policy",
                    "string",
                    "the policy its devices get (id or name); null: the default policy",
                ),
            ],
            &[],
        )),
        ..op(
            "PATCH",
            "/api/v1/admin/license-keys/{id}",
            "Rename a key, change its device limit, or its policy",
            200,
        )
    },
    op(
        "DELETE",
        "/api/v1/admin/license-keys/{id}",
        "Revoke a key and its devices (refused at their next renewal with REVOKED)",
        200,
    ),
    op(
        "POST",
        "/api/v1/admin/license-keys/{id}/rotate",
        "Give a key a new secret, in the answer once; its devices keep their seats",
        200,
    ),
    op(
        "GET",
        "/api/v1/admin/license-keys/{id}/devices",
        "The live devices holding a key's seats",
        200,
    ),
    op(
        "GET",
        "/api/v1/admin/images",
        "Golden images: versions (size, SHA-256, devices reporting each), group assignments",
        200,
    ),
    Operation {
        body: Some((
            &[
                (
                    "name",
                    "string",
                    "the image's name (created with its first version)",
                ),
                (
                    "version",
                    "string",
                    "letters, digits, '.', '-', '_', '+'; unique per image",
                ),
                ("size", "integer", "the file's size in bytes"),
                (
                    "sha256",
                    "string",
                    "the file's SHA-256 (hex); checked when complete",
                ),
                ("description", "string", "the image's description"),
                ("notes", "string", "the version's release notes"),
            ],
            &["name", "version", "size"],
        )),
        ..op(
            "POST",
            "/api/v1/admin/images/uploads",
            "Start (or resume: same target, size and hash) an upload; PUT its pieces to the url",
            201,
        )
    },
    Operation {
        body: Some((
            &[
                ("group", "string", "the group as the IdP names it"),
                (
                    "connection",
                    "string",
                    "the IdP connection whose group it is",
                ),
                (
                    "version",
                    "string",
                    "a version to pin; absent or null: the latest",
                ),
            ],
            &["group"],
        )),
        ..op(
            "POST",
            "/api/v1/admin/images/{image}/assignments",
            "Assign an image to a group (assigning again changes the pin)",
            201,
        )
    },
    op(
        "DELETE",
        "/api/v1/admin/images/{image}/assignments/{id}",
        "Remove an image assignment",
        204,
    ),
    op(
        "DELETE",
        "/api/v1/admin/images/{image}/versions/{version}",
        "Delete a version and its file (refused while pinned)",
        204,
    ),
    op(
        "GET",
        "/api/v1/admin/updates",
        "App packages per branch, the app versions devices run, the feeds and the update key",
        200,
    ),
    Operation {
        body: Some((
            &[
                ("version", "string", "the app version; unique"),
                ("branch", "string", "stable or beta"),
                (
                    "min_os",
                    "string",
                    "the oldest macOS it installs on, e.g. 13.0",
                ),
                ("size", "integer", "the file's size in bytes"),
                (
                    "sha256",
                    "string",
                    "the file's SHA-256 (hex); checked when complete",
                ),
                ("notes", "string", "release notes"),
                (
                    "file_name",
                    "string",
                    "the name it is offered under (default App-VERSION.pkg)",
                ),
            ],
            &["version", "branch", "min_os", "size"],
        )),
        ..op(
            "POST",
            "/api/v1/admin/updates/uploads",
            "Start (or resume) the upload of an app package; PUT its pieces to the url",
            201,
        )
    },
    op(
        "POST",
        "/api/v1/admin/updates/{version}/retire",
        "Retire a version: no feed offers it, its file is no longer served",
        200,
    ),
    op("GET", "/api/v1/admin/uploads", "Uploads in progress", 200),
    op(
        "GET",
        "/api/v1/admin/uploads/{id}",
        "An upload's progress (received; also the Upload-Offset header)",
        200,
    ),
    op(
        "PUT",
        "/api/v1/admin/uploads/{id}",
        "A piece: Content-Range bytes FIRST-LAST/TOTAL starting at received (bytes */TOTAL without a body asks); 201 when complete",
        200,
    ),
    op(
        "DELETE",
        "/api/v1/admin/uploads/{id}",
        "Cancel an upload and remove its partial file",
        204,
    ),
    op(
        "GET",
        "/api/v1/admin/policies",
        "Client policies: the settings each sets, its group assignments, which is the default",
        200,
    ),
    Operation {
        body: Some((
            &[
                ("name", "string", "at most 100 characters, unique"),
                ("description", "string", "at most 500 characters"),
                (
                    "settings",
                    "object",
                    "the settings it sets (the JSON Schema at /api/v1/policy-schema); the rest is inherited",
                ),
                ("default", "boolean", "make it the default policy"),
            ],
            &["name"],
        )),
        ..op("POST", "/api/v1/admin/policies", "Create a policy", 201)
    },
    op("GET", "/api/v1/admin/policies/{id}", "One policy", 200),
    Operation {
        body: Some((
            &[
                ("name", "string", "at most 100 characters, unique"),
                ("description", "string", "at most 500 characters"),
                (
                    "settings",
                    "object",
                    "replaces every setting it sets; the audit log records each change",
                ),
                (
                    "default",
                    "boolean",
                    "true: the default policy; false: no default (if it was)",
                ),
            ],
            &[],
        )),
        ..op(
            "PATCH",
            "/api/v1/admin/policies/{id}",
            "Change a policy; devices get it at their next renewal or policy fetch",
            200,
        )
    },
    op(
        "DELETE",
        "/api/v1/admin/policies/{id}",
        "Delete a policy no group or license key uses",
        200,
    ),
    Operation {
        body: Some((
            &[
                ("group", "string", "the group as the IdP names it"),
                (
                    "connection",
                    "string",
                    "the IdP connection whose group it is (null: unassigned SCIM tokens)",
                ),
                (
                    "priority",
                    "integer",
                    "1 (highest) to 100000, unique among assignments",
                ),
            ],
            &["group", "priority"],
        )),
        ..op(
            "POST",
            "/api/v1/admin/policies/{id}/assignments",
            "Assign a policy to a group",
            201,
        )
    },
    Operation {
        body: Some((
            &[("priority", "integer", "1 (highest) to 100000, unique")],
            &["priority"],
        )),
        ..op(
            "PATCH",
            "/api/v1/admin/policy-assignments/{id}",
            "Give an assignment another priority",
            200,
        )
    },
    op(
        "DELETE",
        "/api/v1/admin/policy-assignments/{id}",
        "Remove an assignment",
        200,
    ),
    Operation {
        query: &[
            (
                "user",
                "string",
                "part of the user's name or email, or of the Mac's name",
            ),
            ("group", "string", "a group the user is in"),
            ("guest_os", "string", "the guest operating system"),
            ("unencrypted", "boolean", "only unencrypted VMs"),
            (
                "expiring",
                "boolean",
                "only VMs expired or expiring within 30 days",
            ),
            (
                "outdated",
                "boolean",
                "only VMs from an older version of their golden image",
            ),
            ("offset", "integer", "skip this many"),
            (
                "limit",
                "integer",
                "at most this many (1 to 1000, default 100)",
            ),
        ],
        ..op(
            "GET",
            "/api/v1/admin/vms",
            "The fleet's virtual machines as the devices last reported them",
            200,
        )
    },
    Operation {
        query: &[(
            "days",
            "integer",
            "how many days back, today included (1 to 760, default 30)",
        )],
        ..op(
            "GET",
            "/api/v1/admin/usage-history",
            "Seat usage per pool and day: most used, most waiting, capacity",
            200,
        )
    },
    op(
        "GET",
        "/api/v1/admin/scim-tokens",
        "SCIM tokens (never their secrets)",
        200,
    ),
    Operation {
        body: Some((
            &[
                ("name", "string", "at most 100 characters"),
                (
                    "connection",
                    "string",
                    "the IdP connection it provisions for",
                ),
            ],
            &["name"],
        )),
        ..op(
            "POST",
            "/api/v1/admin/scim-tokens",
            "Create a SCIM token; the answer holds the secret, once",
            201,
        )
    },
    op(
        "DELETE",
        "/api/v1/admin/scim-tokens/{id}",
        "Revoke a SCIM token",
        204,
    ),
    op(
        "GET",
        "/api/v1/admin/admin-tokens",
        "Admin API tokens (never their secrets)",
        200,
    ),
    Operation {
        body: Some((&[("name", "string", "at most 100 characters")], &["name"])),
        ..op(
            "POST",
            "/api/v1/admin/admin-tokens",
            "Create an admin API token; the answer holds the secret, once",
            201,
        )
    },
    op(
        "DELETE",
        "/api/v1/admin/admin-tokens/{id}",
        "Revoke an admin API token",
        204,
    ),
    op(
        "GET",
        "/api/v1/admin/connections",
        "IdP connections and their switches",
        200,
    ),
    Operation {
        body: Some((
            &[
                (
                    "jit_users",
                    "boolean",
                    "create users at their first sign-in",
                ),
                (
                    "sign_requests",
                    "boolean",
                    "sign AuthnRequests (where the IdP checks them)",
                ),
                (
                    "allow_idp_initiated",
                    "boolean",
                    "accept IdP-initiated sign-in to the portal",
                ),
            ],
            &[],
        )),
        ..op(
            "PATCH",
            "/api/v1/admin/connections/{id}",
            "Change a connection's switches; fields left out keep their value",
            200,
        )
    },
    Operation {
        query: &[
            ("user_id", "string", "one user's entries"),
            ("action", "string", "one action, e.g. seat_granted"),
            ("since", "string", "a date or RFC 3339 time"),
            ("until", "string", "a date or RFC 3339 time"),
            ("limit", "integer", "1 to 10000 (default 100)"),
        ],
        ..op(
            "GET",
            "/api/v1/admin/audit",
            "The audit log, newest first",
            200,
        )
    },
];

/// `"string|null"` as OpenAPI 3.1 writes a nullable type: a list of types.
fn json_type(kind: &str) -> Value {
    let kinds: Vec<&str> = kind.split('|').collect();
    match kinds.as_slice() {
        [one] => json!(one),
        many => json!(many),
    }
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for o in OPERATIONS {
        let mut parameters: Vec<Value> = o
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        parameters.extend(o.query.iter().map(|(name, kind, description)| {
            json!({"name": name, "in": "query", "required": false,
                   "description": description, "schema": {"type": json_type(kind)}})
        }));
        let mut operation = json!({
            "summary": o.summary,
            "parameters": parameters,
            "responses": {
                o.status.to_string(): {"description": "done"},
                "400": {"description": "refused: {\"error\", \"reason\", \"message\"}"},
                "401": {"description": "no admin API token or portal session"},
                "403": {"description": "a portal session's change without its X-CSRF-Token, or from another origin"},
                "404": {"description": "no such record"},
                "413": {"description": "the body is larger than this address takes"},
                "429": {"description": "too many requests; see Retry-After"},
            },
        });
        if let Some((properties, required)) = o.body {
            let props: serde_json::Map<String, Value> = properties
                .iter()
                .map(|(name, kind, description)| {
                    let mut schema = json!({"type": json_type(kind), "description": description});
                    if *kind == "array" {
                        schema["items"] = json!({"type": "string"});
                    }
                    (name.to_string(), schema)
                })
                .collect();
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": false,
                    "properties": props, "required": required,
                }}},
            });
        }
        let entry = paths.entry(o.path.to_string()).or_insert_with(|| json!({}));
        entry[o.method.to_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "seatgate admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Authenticate with an admin API token (Authorization: Bearer …) or a portal session, which must send X-CSRF-Token with changes. Errors are {\"error\", \"reason\", \"message\"} with a stable reason code. Times are RFC 3339 UTC.",
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    })
}
