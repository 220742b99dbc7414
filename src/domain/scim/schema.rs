//! The SCIM schemas seatgate implements, as data. The same tables drive attribute-name
//! canonicalization (names are case-insensitive), type coercion (Entra's `"True"`), and the
//! `/Schemas` discovery document, so what is advertised is exactly what is handled.

use serde_json::{Value, json};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Boolean,
    Complex,
    Reference,
    DateTime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadWrite,
    ReadOnly,
    WriteOnly,
    Immutable,
}

#[derive(Debug)]
pub struct Attr {
    pub name: &'static str,
    /// Advertised `canonicalValues` (empty: any value).
    pub canonical: &'static [&'static str],
    pub kind: Kind,
    pub multi: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub required: bool,
    pub description: &'static str,
    pub sub: &'static [Attr],
}

const fn s(name: &'static str, description: &'static str) -> Attr {
    Attr {
        name,
        canonical: &[],
        kind: Kind::String,
        multi: false,
        case_exact: false,
        mutability: Mutability::ReadWrite,
        required: false,
        description,
        sub: &[],
    }
}

const fn b(name: &'static str, description: &'static str) -> Attr {
    Attr {
        kind: Kind::Boolean,
        ..s(name, description)
    }
}

const fn complex(name: &'static str, description: &'static str, sub: &'static [Attr]) -> Attr {
    Attr {
        kind: Kind::Complex,
        sub,
        ..s(name, description)
    }
}

const fn multi(name: &'static str, description: &'static str, sub: &'static [Attr]) -> Attr {
    Attr {
        kind: Kind::Complex,
        multi: true,
        sub,
        ..s(name, description)
    }
}

/// value/display/type/primary, the sub-attributes of most multi-valued attributes.
const VDTP: &[Attr] = &[
    s("value", "The value."),
    s("display", "A human-readable name."),
    s("type", "A label such as 'work' or 'home'."),
    b("primary", "Whether this is the primary value."),
];

const NAME: &[Attr] = &[
    s("formatted", "The full name for display."),
    s("familyName", "The family name."),
    s("givenName", "The given name."),
    s("middleName", "The middle name."),
    s("honorificPrefix", "Title or prefix, e.g. 'Ms.'."),
    s("honorificSuffix", "Suffix, e.g. 'III'."),
];

const ADDRESS: &[Attr] = &[
    s("formatted", "The full mailing address."),
    s("streetAddress", "The street address."),
    s("locality", "The city or locality."),
    s("region", "The state or region."),
    s("postalCode", "The postal code."),
    s("country", "The country."),
    s("type", "A label such as 'work' or 'home'."),
    b("primary", "Whether this is the primary address."),
];

const GROUP_REF: &[Attr] = &[
    Attr {
        mutability: Mutability::ReadOnly,
        ..s("value", "The id of the group.")
    },
    Attr {
        kind: Kind::Reference,
        mutability: Mutability::ReadOnly,
        ..s("$ref", "The URI of the group.")
    },
    Attr {
        mutability: Mutability::ReadOnly,
        ..s("display", "The group's display name.")
    },
    Attr {
        mutability: Mutability::ReadOnly,
        ..s("type", "'direct'.")
    },
];

pub const USER_ATTRS: &[Attr] = &[
    Attr {
        required: true,
        ..s(
            "userName",
            "Unique identifier for the user, typically their sign-in name; unique case-insensitively.",
        )
    },
    complex("name", "The components of the user's name.", NAME),
    s("displayName", "The name of the user, suitable for display."),
    s("nickName", "The casual way to address the user."),
    Attr {
        kind: Kind::Reference,
        ..s("profileUrl", "A URI of the user's online profile.")
    },
    s("title", "The user's title."),
    s(
        "userType",
        "The relationship between the organization and the user.",
    ),
    s("preferredLanguage", "The user's preferred language."),
    s("locale", "The user's default location."),
    s("timezone", "The user's time zone."),
    b("active", "Whether the user may sign in and hold a seat."),
    Attr {
        mutability: Mutability::WriteOnly,
        ..s(
            "password",
            "Accepted and discarded; seatgate never stores passwords.",
        )
    },
    multi("emails", "Email addresses.", VDTP),
    multi("phoneNumbers", "Phone numbers.", VDTP),
    multi("ims", "Instant messaging addresses.", VDTP),
    multi("photos", "URIs of photos.", VDTP),
    multi("addresses", "Physical mailing addresses.", ADDRESS),
    Attr {
        mutability: Mutability::ReadOnly,
        ..multi(
            "groups",
            "The groups the user belongs to (read-only; change a group's members instead).",
            GROUP_REF,
        )
    },
    multi("entitlements", "Entitlements.", VDTP),
    multi("roles", "Roles.", VDTP),
    multi("x509Certificates", "Certificates.", VDTP),
];

const MANAGER: &[Attr] = &[
    s("value", "The id of the manager."),
    Attr {
        kind: Kind::Reference,
        ..s("$ref", "The URI of the manager.")
    },
    Attr {
        mutability: Mutability::ReadOnly,
        ..s("displayName", "The manager's display name.")
    },
];

pub const ENTERPRISE_ATTRS: &[Attr] = &[
    s("employeeNumber", "The employee number."),
    s("costCenter", "The cost center."),
    s("organization", "The organization."),
    s("division", "The division."),
    s("department", "The department."),
    complex("manager", "The user's manager.", MANAGER),
];

const MEMBER: &[Attr] = &[
    Attr {
        mutability: Mutability::Immutable,
        ..s("value", "The id of a user.")
    },
    Attr {
        kind: Kind::Reference,
        mutability: Mutability::Immutable,
        ..s("$ref", "The URI of the user.")
    },
    Attr {
        mutability: Mutability::Immutable,
        canonical: &["User"],
        ..s("type", "'User' (nested groups are not supported).")
    },
];

pub const GROUP_ATTRS: &[Attr] = &[
    Attr {
        required: true,
        ..s("displayName", "A human-readable name for the group.")
    },
    multi("members", "The users in the group.", MEMBER),
];

/// Finds the canonical attribute for `name`, case-insensitively.
pub fn find<'a>(attrs: &'a [Attr], name: &str) -> Option<&'a Attr> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// The `/Schemas` resource for one schema.
pub fn schema_resource(
    id: &str,
    name: &str,
    description: &str,
    attrs: &[Attr],
    base: &str,
) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": id,
        "name": name,
        "description": description,
        "attributes": attrs.iter().map(attr_json).collect::<Vec<_>>(),
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
    })
}

fn attr_json(a: &Attr) -> Value {
    let mut v = json!({
        "name": a.name,
        "type": match a.kind {
            Kind::String => "string",
            Kind::Boolean => "boolean",
            Kind::Complex => "complex",
            Kind::Reference => "reference",
            Kind::DateTime => "dateTime",
        },
        "multiValued": a.multi,
        "description": a.description,
        "required": a.required,
        "mutability": match a.mutability {
            Mutability::ReadWrite => "readWrite",
            Mutability::ReadOnly => "readOnly",
            Mutability::WriteOnly => "writeOnly",
            Mutability::Immutable => "immutable",
        },
        "returned": if a.mutability == Mutability::WriteOnly { "never" } else { "default" },
        "uniqueness": if a.name == "userName" { "server" } else { "none" },
    });
    if matches!(a.kind, Kind::String | Kind::Reference) {
        v["caseExact"] = json!(a.case_exact);
    }
    if !a.canonical.is_empty() {
        v["canonicalValues"] = json!(a.canonical);
    }
    if a.kind == Kind::Reference {
        v["referenceTypes"] = json!(if a.name == "$ref" {
            vec!["User", "Group"]
        } else {
            vec!["external"]
        });
    }
    if !a.sub.is_empty() {
        v["subAttributes"] = json!(a.sub.iter().map(attr_json).collect::<Vec<_>>());
    }
    v
}
