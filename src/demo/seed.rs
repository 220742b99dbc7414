//! The demo organization, Acme (acme.example): one 25-seat license with a reserved
//! Engineering sublicense (10) and a dynamic Design one (4), 34 people in four groups,
//! IT Admins mapped to the admins role. More people than seats, so some wait (NO_SEATS);
//! one is deactivated (USER_INACTIVE) and one is in no mapped group (NOT_ENTITLED).
//!
//! Users and groups arrive through the SCIM handler, exactly as an IdP would send them,
//! so seats are granted by the same reconciliation as in production.

use serde_json::{Value, json};

use super::idp::DemoIdp;
use crate::app::App;
use crate::audit::Actor;
use crate::clock::now_unix;
use crate::db::tokens::{self, Scope};
use crate::http::Request;
use crate::licensing::entitlements::{self, Imported};
use crate::licensing::manage::{self, MapTo, NewSublicense};
use crate::licensing::policies::{self, PolicyInput};

/// The demo organization's entitlement (`demo-entitlement.toml`, minted with the
/// development key).
const DEMO_ENTITLEMENT: &str = include_str!("demo-entitlement.jws");

pub const DOMAIN: &str = "acme.example";
const ACTOR: &Actor = &Actor::Demo;
pub const ADMIN_USER: &str = "demo-admin";

const ENGINEERING: &[&str] = &[
    "Alice Archer",
    "Bob Baker",
    "Carol Chen",
    "Dave Diaz",
    "Erin Evans",
    "Frank Fischer",
    "Grace Gupta",
    "Heidi Hansen",
    "Ivan Ivanov",
    "Judy Jones",
    "Mallory Moore",
    "Niaj Nakamura",
];
const DESIGN: &[&str] = &[
    "Olivia Ortiz",
    "Peggy Park",
    "Quentin Quinn",
    "Rupert Russo",
    "Sybil Singh",
];
const STAFF: &[&str] = &[
    "Trent Turner",
    "Uma Usman",
    "Victor Vega",
    "Walter White",
    "Xena Xu",
    "Yusuf Yilmaz",
    "Zoe Zimmer",
    "Amir Aziz",
    "Bianca Bruno",
    "Chen Cho",
    "Dara Doyle",
    "Emeka Eze",
    "Fatima Farah",
    "Goran Gill",
];
/// In Staff, but deactivated in the directory.
const DEACTIVATED: &str = "Henry Hall";
/// In the directory, in no mapped group.
const UNMAPPED: &str = "Ines Ito";
const IT_ADMIN: &str = "Ian Irving";

pub struct Seeded {
    pub login_link: String,
    pub scim_token: String,
    pub admin_user: String,
    pub admin_password: String,
    /// An entitled, seated user to activate as.
    pub alice: String,
    /// A user waiting for a seat.
    pub pending: String,
    /// The SCIM id of the Design group, for the printed provisioning example.
    pub design_group: String,
}

pub fn email(name: &str) -> String {
    let first = name.split_whitespace().next().unwrap_or(name);
    format!("{}@{DOMAIN}", first.to_lowercase())
}

pub fn seed(app: &App, idp: &DemoIdp) -> Result<Seeded, String> {
    let connection = add_connection(app, idp)?;
    add_licenses(app, &connection)?;
    let token = app
        .db
        .write(|tx| tokens::create(tx, Scope::Scim, "demo", ACTOR, Some(&connection)))
        .map_err(|x| x.to_string())?
        .1;
    let design_group = provision_directory(&Scim { app, token: &token })?;
    let (admin_password, login_link) = add_admin(app)?;
    Ok(Seeded {
        login_link,
        scim_token: token,
        admin_user: ADMIN_USER.into(),
        admin_password,
        alice: email(ENGINEERING[0]),
        pending: email(ENGINEERING[ENGINEERING.len() - 1]),
        design_group,
    })
}

/// The connection to the demo's built-in IdP; returns its id.
fn add_connection(app: &App, idp: &DemoIdp) -> Result<String, String> {
    let connection = crate::saml::connections::add(
        &app.db,
        &crate::saml::connections::AddRequest {
            actor: ACTOR,
            name: "Acme demo IdP",
            preset: "generic",
            metadata_xml: &idp.metadata_xml(),
            metadata_source: "the demo's built-in IdP",
            domains: &[DOMAIN.to_string()],
            jit_users: Some(false),
            sign_requests: false,
            allow_idp_initiated: false,
        },
    )
    .map_err(|x| x.to_string())?;
    Ok(connection.id)
}

/// The license, its two sublicenses and the group mappings.
fn add_licenses(app: &App, connection: &str) -> Result<(), String> {
    let db = &app.db;
    let e = |e: &dyn std::fmt::Display| e.to_string();
    // The demo's licenses come from the vendor like everyone's: a demo entitlement signed
    // with the development key, which only the demo (and test builds) trust.
    let (imported, _) = entitlements::import(
        db,
        DEMO_ENTITLEMENT,
        &entitlements::trusted_keys(true),
        ACTOR,
        now_unix(),
    )
    .map_err(|x| e(&x))?;
    let license = match imported {
        Imported::Added { license } => license,
        other => return Err(format!("the demo entitlement was not new: {other:?}")),
    };
    for (name, seats, reserved) in [("Engineering", 10, true), ("Design", 4, false)] {
        manage::add_sublicense(
            db,
            ACTOR,
            &NewSublicense {
                license: &license,
                name,
                seats,
                reserved,
                expires_at: None,
            },
        )
        .map_err(|x| e(&x))?;
    }
    for (group, to) in [
        ("Engineering", MapTo::Sublicense("Engineering")),
        ("Design", MapTo::Sublicense("Design")),
        ("Staff", MapTo::Primary { license: None }),
        ("IT Admins", MapTo::Admins),
    ] {
        manage::add_mapping(db, ACTOR, group, Some(connection), to).map_err(|x| e(&x))?;
    }
    add_policies(app, connection)
}

/// A default policy for everyone and a stricter one for Engineering, so `explain`, the
/// user pages and `client policy` show where each setting comes from.
fn add_policies(app: &App, connection: &str) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let bounds = policies::bounds(&crate::config::LeaseConfig::default());
    let now = now_unix();
    for (name, settings) in [
        (
            "Acme default",
            json!({
                "support_link": {
                    "url": "https://help.acme.example",
                    "label": "Acme IT help"
                },
                "customer_experience_program": false,
                "update_branch": "stable"
            }),
        ),
        (
            "Engineering Macs",
            json!({"usb": {"default": "ask", "exceptions": [{"device": "05ac:12a8", "action": "allow"}]},
                   "lock_on_suspend": true, "update_branch": "beta",
                   "restricted_actions": ["export_vm"]}),
        ),
    ] {
        let input = PolicyInput {
            name: Some(name),
            description: None,
            settings: Some(&settings),
        };
        policies::create(&app.db, ACTOR, bounds, &input, now).map_err(|x| e(&x))?;
    }
    policies::set_default(&app.db, ACTOR, Some("Acme default"), now).map_err(|x| e(&x))?;
    policies::assign(
        &app.db,
        ACTOR,
        "Engineering Macs",
        "Engineering",
        Some(connection),
        1,
        now,
    )
    .map_err(|x| e(&x))?;
    Ok(())
}

/// The people and groups, sent as an IdP would; Henry is then deactivated.
/// Creates the people and their groups; returns the Design group's id.
fn provision_directory(scim: &Scim<'_>) -> Result<String, String> {
    let mut design = String::new();
    let everyone =
        ENGINEERING
            .iter()
            .chain(DESIGN)
            .chain(STAFF)
            .chain([&DEACTIVATED, &UNMAPPED, &IT_ADMIN]);
    let mut ids = std::collections::HashMap::new();
    for name in everyone {
        let (given, family) = name.split_once(' ').unwrap_or((name, ""));
        let created = scim.send(
            "POST",
            "/scim/v2/Users",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": email(name),
                "externalId": format!("demo-{}", crate::crypto::random_hex(4)),
                "name": {"givenName": given, "familyName": family},
                "displayName": name,
                "emails": [{"value": email(name), "type": "work", "primary": true}],
                "active": true
            }),
        )?;
        ids.insert(
            *name,
            created["id"].as_str().unwrap_or_default().to_string(),
        );
    }
    let members = |names: &[&str]| -> Value {
        names
            .iter()
            .map(|n| json!({"value": ids.get(n).cloned().unwrap_or_default()}))
            .collect()
    };
    let mut staff: Vec<&str> = STAFF.to_vec();
    staff.push(DEACTIVATED);
    for (group, names) in [
        ("Engineering", ENGINEERING.to_vec()),
        ("Design", DESIGN.to_vec()),
        ("Staff", staff),
        ("IT Admins", vec![ENGINEERING[0], IT_ADMIN]),
    ] {
        let created = scim.send(
            "POST",
            "/scim/v2/Groups",
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": group,
                "members": members(&names),
            }),
        )?;
        if group == "Design" {
            design = created["id"].as_str().unwrap_or_default().to_string();
        }
    }
    let henry = ids.get(DEACTIVATED).cloned().unwrap_or_default();
    scim.send(
        "PATCH",
        &format!("/scim/v2/Users/{henry}"),
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}]
        }),
    )?;
    Ok(design)
}

/// The break-glass admin with a fresh password, and a sign-in link for it; marks setup
/// done. Returns (password, link).
fn add_admin(app: &App) -> Result<(String, String), String> {
    let db = &app.db;
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let admin_password = crate::admin::password::generate();
    let hash = crate::admin::password::hash(&admin_password).map_err(|x| e(&x))?;
    let now = now_unix();
    db.write(|tx| {
        crate::db::admin::set_local_admin(tx, ADMIN_USER, &hash, now)?;
        // The demo is set up; there is no first-run link to follow.
        crate::db::settings::put(
            tx,
            crate::db::settings::SETUP_COMPLETED_AT,
            &now.to_string(),
            now,
        )?;
        Ok::<_, rusqlite::Error>(())
    })
    .map_err(|x| e(&x))?;
    let login_link = crate::admin::login_link(
        db,
        &app.public_url,
        ADMIN_USER,
        std::time::Duration::from_secs(12 * 3600),
    )
    .map_err(|x| e(&x))?;
    Ok((admin_password, login_link))
}

/// The SCIM API, called in-process (through the whole pipeline) with the demo's token.
struct Scim<'a> {
    app: &'a App,
    token: &'a str,
}

impl Scim<'_> {
    fn send(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        let req = Request {
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: vec![
                ("authorization".into(), format!("Bearer {}", self.token)),
                ("content-type".into(), "application/scim+json".into()),
            ],
            body: serde_json::to_vec(&body).unwrap_or_default(),
            client: std::net::IpAddr::from([127, 0, 0, 1]),
        };
        let response = self.app.handle(&req);
        if !(200..300).contains(&response.status) {
            return Err(format!(
                "SCIM {method} {path} answered {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            ));
        }
        Ok(serde_json::from_slice(&response.body).unwrap_or(Value::Null))
    }
}
