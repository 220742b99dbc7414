//! Item 9.1 of issue 11: every filterable attribute of Users and Groups (the schema tables
//! in `src/scim/schema.rs` and the column map in `src/db/filter_sql.rs`), every operator
//! class, value paths and the logical operators, run over the real binary against real
//! SQLite, each checked for exactly the resources it must return.

use serde_json::{Value, json};

use crate::support::{Scim, db_exec, server};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The sorted `key` values (userName or displayName) a filter returns.
fn matching(scim: &Scim<'_>, resource: &str, filter: &str, key: &str) -> Vec<String> {
    let r = scim.filter(resource, filter);
    assert_eq!(r.status, 200, "{filter}: {}", r.text());
    let mut names: Vec<String> = r.json()["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("{filter}: no Resources in {}", r.text()))
        .iter()
        .map(|u| u[key].as_str().expect("key").to_string())
        .collect();
    names.sort();
    names
}

fn created(scim: &Scim<'_>, path: &str, body: Value) -> String {
    let r = scim.post(path, body);
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["id"].as_str().expect("id").to_string()
}

#[test]
fn item9_1_every_user_attribute_filters_to_the_right_users() {
    let s = server().start();
    let scim = s.scim();
    let ann = created(
        &scim,
        "/Users",
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
            "userName": "ann@contoso.com",
            "externalId": "ext-ann",
            "name": {"formatted": "Dr. Ann B. Lee III", "familyName": "Lee", "givenName": "Ann",
                     "middleName": "Beth", "honorificPrefix": "Dr.", "honorificSuffix": "III"},
            "displayName": "Ann Lee",
            "nickName": "Annie",
            "profileUrl": "https://profiles.example/ann",
            "title": "Engineer",
            "userType": "Employee",
            "preferredLanguage": "en-US",
            "locale": "en-US",
            "timezone": "Europe/Berlin",
            "active": true,
            "emails": [{"value": "ann@contoso.com", "type": "work", "primary": true},
                       {"value": "ann@home.example", "type": "home", "display": "Home mail"}],
            "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
            "ims": [{"value": "ann-chat", "type": "xmpp"}],
            "photos": [{"value": "https://photos.example/ann.jpg", "type": "photo"}],
            "addresses": [{"type": "work", "streetAddress": "1 Main St", "locality": "Redmond",
                           "region": "WA", "postalCode": "98052", "country": "US",
                           "formatted": "1 Main St, Redmond", "primary": true}],
            "entitlements": [{"value": "gold"}],
            "roles": [{"value": "approver"}],
            "x509Certificates": [{"value": "MIIann"}],
            ENTERPRISE: {"employeeNumber": "1001", "costCenter": "CC-7", "organization": "Contoso",
                         "division": "Devices", "department": "Engineering",
                         "manager": {"value": "mgr-1", "displayName": "Boss Person"}},
        }),
    );
    let bob = created(
        &scim,
        "/Users",
        json!({
            "userName": "bob@contoso.com",
            "externalId": "ext-bob",
            "name": {"familyName": "Brown", "givenName": "Bob"},
            "displayName": "Bob Brown",
            "title": "Designer",
            "active": false,
            "emails": [{"value": "bob@contoso.com", "type": "work"}],
            "phoneNumbers": [{"value": "+44 20 0000", "type": "mobile"}],
            "addresses": [{"type": "home", "locality": "London", "country": "GB"}],
            "roles": [{"value": "viewer"}],
            ENTERPRISE: {"employeeNumber": "2002", "department": "Design"},
        }),
    );
    created(&scim, "/Users", json!({"userName": "cat@other.example"}));
    created(
        &scim,
        "/Groups",
        json!({"displayName": "Engineers", "members": [{"value": ann}, {"value": bob}]}),
    );
    created(
        &scim,
        "/Groups",
        json!({"displayName": "Designers", "members": [{"value": bob}]}),
    );
    // Ann was provisioned long ago: meta.created and meta.lastModified tell her apart.
    db_exec(
        &s,
        "UPDATE users SET created_at = 1600000000, updated_at = 1600000000 WHERE user_name = 'ann@contoso.com'",
    );

    let cases: &[(&str, &[&str])] = &[
        // Indexed columns.
        (&format!("id eq \"{ann}\""), &["ann"]),
        ("userName eq \"ANN@contoso.com\"", &["ann"]),
        ("userName ne \"ann@contoso.com\"", &["bob", "cat"]),
        ("userName sw \"b\"", &["bob"]),
        ("userName ew \"other.example\"", &["cat"]),
        ("userName co \"contoso\"", &["ann", "bob"]),
        ("userName gt \"bob@contoso.com\"", &["cat"]),
        ("userName le \"bob@contoso.com\"", &["ann", "bob"]),
        ("externalId eq \"ext-bob\"", &["bob"]),
        ("externalId eq \"EXT-BOB\"", &[]),
        ("externalId pr", &["ann", "bob"]),
        ("active eq true", &["ann", "cat"]),
        ("active ne true", &["bob"]),
        ("meta.created lt \"2021-01-01T00:00:00Z\"", &["ann"]),
        ("meta.created ge \"2021-01-01T00:00:00Z\"", &["bob", "cat"]),
        ("meta.lastModified le \"2020-12-31T00:00:00Z\"", &["ann"]),
        (
            "meta.lastModified gt \"2020-12-31T00:00:00Z\"",
            &["bob", "cat"],
        ),
        // Single-valued attributes in the stored resource.
        ("name.formatted co \"B. Lee\"", &["ann"]),
        ("name.familyName eq \"brown\"", &["bob"]),
        ("name.givenName sw \"an\"", &["ann"]),
        ("name.middleName pr", &["ann"]),
        ("name.honorificPrefix eq \"Dr.\"", &["ann"]),
        ("name.honorificSuffix eq \"iii\"", &["ann"]),
        ("name pr", &["ann", "bob"]),
        ("displayName ew \"BROWN\"", &["bob"]),
        ("nickName eq \"annie\"", &["ann"]),
        ("profileUrl sw \"https://profiles.example/\"", &["ann"]),
        ("title ne \"Engineer\"", &["bob", "cat"]),
        ("title pr", &["ann", "bob"]),
        ("userType eq \"Employee\"", &["ann"]),
        ("preferredLanguage eq \"en-us\"", &["ann"]),
        ("locale co \"US\"", &["ann"]),
        ("timezone eq \"Europe/Berlin\"", &["ann"]),
        // Multi-valued attributes: bare, with a sub-attribute, and as value paths.
        ("emails eq \"bob@contoso.com\"", &["bob"]),
        ("emails.value ew \"@home.example\"", &["ann"]),
        ("emails.type eq \"home\"", &["ann"]),
        ("emails.display eq \"Home mail\"", &["ann"]),
        ("emails.primary eq true", &["ann"]),
        ("emails pr", &["ann", "bob"]),
        (
            "emails[type eq \"work\"].value eq \"BOB@contoso.com\"",
            &["bob"],
        ),
        ("emails[type eq \"work\" and value co \"ann\"]", &["ann"]),
        ("emails[type eq \"home\" or primary eq true]", &["ann"]),
        ("emails[not (type eq \"work\")]", &["ann"]),
        ("phoneNumbers.value sw \"+44\"", &["bob"]),
        ("phoneNumbers[type eq \"work\"]", &["ann"]),
        ("ims.value eq \"ann-chat\"", &["ann"]),
        ("photos.type eq \"photo\"", &["ann"]),
        ("addresses.locality eq \"london\"", &["bob"]),
        ("addresses.streetAddress co \"Main\"", &["ann"]),
        ("addresses.region eq \"WA\"", &["ann"]),
        ("addresses.postalCode eq \"98052\"", &["ann"]),
        ("addresses.country eq \"GB\"", &["bob"]),
        ("addresses.formatted pr", &["ann"]),
        ("addresses.primary eq true", &["ann"]),
        (
            "addresses[type eq \"work\" and country eq \"US\"]",
            &["ann"],
        ),
        ("entitlements eq \"gold\"", &["ann"]),
        ("roles.value eq \"viewer\"", &["bob"]),
        ("roles pr", &["ann", "bob"]),
        ("x509Certificates.value eq \"MIIann\"", &["ann"]),
        // Group membership, from the user's side.
        ("groups.display eq \"designers\"", &["bob"]),
        ("groups[display eq \"Engineers\"]", &["ann", "bob"]),
        ("groups pr", &["ann", "bob"]),
        ("not (groups pr)", &["cat"]),
        // The enterprise extension, URN-qualified.
        (
            &format!("{ENTERPRISE}:employeeNumber eq \"2002\""),
            &["bob"],
        ),
        (&format!("{ENTERPRISE}:costCenter eq \"cc-7\""), &["ann"]),
        (
            &format!("{ENTERPRISE}:organization eq \"Contoso\""),
            &["ann"],
        ),
        (&format!("{ENTERPRISE}:division sw \"dev\""), &["ann"]),
        (&format!("{ENTERPRISE}:department pr"), &["ann", "bob"]),
        (
            &format!("{ENTERPRISE}:manager.value eq \"mgr-1\""),
            &["ann"],
        ),
        (
            &format!("{ENTERPRISE}:manager.displayName co \"boss\""),
            &["ann"],
        ),
        // Logical operators and grouping.
        (
            "title eq \"Designer\" or (active eq true and userName ew \".example\")",
            &["bob", "cat"],
        ),
        ("not (title pr) and not (userName sw \"a\")", &["cat"]),
        (
            "urn:ietf:params:scim:schemas:core:2.0:User:userName eq \"cat@other.example\"",
            &["cat"],
        ),
    ];
    for (filter, expected) in cases {
        let got = matching(&scim, "Users", filter, "userName");
        let want: Vec<String> = expected
            .iter()
            .map(|n| {
                let domain = if *n == "cat" {
                    "other.example"
                } else {
                    "contoso.com"
                };
                format!("{n}@{domain}")
            })
            .collect();
        assert_eq!(got, want, "{filter}");
    }

    // Attributes nothing can match are refused, not silently empty.
    for filter in [
        "password eq \"secret\"",
        "groups.type eq \"direct\"",
        "groups.$ref pr",
    ] {
        let r = scim.filter("Users", filter);
        assert_eq!(r.status, 400, "{filter}: {}", r.text());
        assert_eq!(r.json()["scimType"], "invalidFilter", "{filter}");
    }
}

#[test]
fn item9_1_every_group_attribute_filters_to_the_right_groups() {
    let s = server().start();
    let scim = s.scim();
    let ann = created(
        &scim,
        "/Users",
        json!({"userName": "ann@contoso.com", "displayName": "Ann Lee"}),
    );
    // No displayName: a member's display is its userName.
    let bob = created(&scim, "/Users", json!({"userName": "bob@contoso.com"}));
    let eng = created(
        &scim,
        "/Groups",
        json!({"displayName": "Engineers", "externalId": "gid-eng", "members": [{"value": ann}, {"value": bob}]}),
    );
    created(
        &scim,
        "/Groups",
        json!({"displayName": "Designers", "externalId": "gid-des", "members": [{"value": bob}]}),
    );
    created(&scim, "/Groups", json!({"displayName": "Empty"}));
    db_exec(
        &s,
        "UPDATE groups SET created_at = 1600000000, updated_at = 1600000000 WHERE display_name = 'Empty'",
    );

    let cases: &[(&str, &[&str])] = &[
        (&format!("id eq \"{eng}\""), &["Engineers"]),
        ("displayName eq \"ENGINEERS\"", &["Engineers"]),
        ("displayName sw \"de\"", &["Designers"]),
        ("displayName ne \"Empty\"", &["Designers", "Engineers"]),
        ("externalId eq \"gid-des\"", &["Designers"]),
        ("externalId pr", &["Designers", "Engineers"]),
        ("meta.created lt \"2021-01-01T00:00:00Z\"", &["Empty"]),
        (
            "meta.lastModified gt \"2021-01-01T00:00:00Z\"",
            &["Designers", "Engineers"],
        ),
        (
            &format!("members eq \"{bob}\""),
            &["Designers", "Engineers"],
        ),
        (&format!("members.value eq \"{ann}\""), &["Engineers"]),
        (&format!("members[value eq \"{ann}\"]"), &["Engineers"]),
        // The reported 500: members.display, which is a member's displayName (or userName).
        ("members.display eq \"ann lee\"", &["Engineers"]),
        ("members.display eq \"x\"", &[]),
        ("members.display co \"bob@\"", &["Designers", "Engineers"]),
        ("members[display sw \"Ann\"]", &["Engineers"]),
        (
            &format!("members[value eq \"{bob}\" and not (display co \"Ann\")]"),
            &["Designers", "Engineers"],
        ),
        ("members pr", &["Designers", "Engineers"]),
        ("not (members pr)", &["Empty"]),
        (
            "displayName eq \"Empty\" or members.display eq \"Ann Lee\"",
            &["Empty", "Engineers"],
        ),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            matching(&scim, "Groups", filter, "displayName"),
            expected.to_vec(),
            "{filter}"
        );
    }
    for filter in ["members.type eq \"User\"", "members.$ref pr"] {
        let r = scim.filter("Groups", filter);
        assert_eq!(r.status, 400, "{filter}: {}", r.text());
        assert_eq!(r.json()["scimType"], "invalidFilter", "{filter}");
    }
}
