//! Entitlement benchmark (issue 15), run with `cargo bench --bench entitlements`.
//!
//! In-process, on a real database file, through the same functions `seatgate license
//! import` and `seatgate usage report` call:
//! 1. import-to-seats-re-decided: with `USERS` users (default 100000) in a group mapped to
//!    the license, the time to import an entitlement that grants them (every seat decided),
//!    a renewal with more seats, one with fewer, and the same file again;
//! 2. the size of a year of usage reports: twelve monthly reports for `LICENSES` licenses
//!    (default 3), with and without user names.

mod common;

use std::time::Instant;

use seatgate::audit::Actor;
use seatgate::db::directory::{self as dir};
use seatgate::db::{Db, Synchronous};
use seatgate::domain::scim::resource;
use seatgate::licensing::{entitlements, manage, usage};

const DAY: i64 = 86_400;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn entitlement(id: &str, serial: u32, product: &str, seats: u32, now: i64) -> String {
    common::kit::vendor::mint(&entitlement::Entitlement {
        starts_at: now - 400 * DAY,
        issued_at: now,
        ..common::kit::vendor::entitlement(id, serial, product, seats)
    })
}

fn main() {
    let users = env_num("USERS", 100_000);
    let licenses = env_num("LICENSES", 3);
    let tmp =
        std::env::temp_dir().join(format!("seatgate-entitlement-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("tmp");
    let db = Db::open(&tmp.join("seatgate.db"), &tmp, Synchronous::Normal).expect("open");
    let trusted = [entitlement::dev::DEV_KEY];
    let actor = Actor::Cli;
    let now = seatgate::clock::now_unix();
    println!("# seatgate entitlement benchmark\n\n{users} users, 2 cores, in-process\n");

    // The directory: users in one group, written directly (the SCIM path is measured by
    // the scim_sync benchmark).
    let started = Instant::now();
    db.write(|tx| {
        let group = serde_json::json!({"displayName": "Everyone"});
        let (stored, fields, _) = resource::prepare_group(group).expect("group");
        dir::insert_group(tx, None, "g-everyone", &fields, &stored.to_string(), now)?;
        let mut ids = Vec::with_capacity(users);
        for i in 0..users {
            let body =
                serde_json::json!({"userName": format!("u{i}@bench.example"), "active": true});
            let (stored, fields) = resource::prepare_user(body).expect("user");
            let id = format!("u-{i:06}");
            dir::insert_user(tx, None, &id, &fields, &stored.to_string(), None, now)?;
            ids.push(id);
        }
        dir::add_members(tx, "g-everyone", &ids)?;
        Ok::<_, rusqlite::Error>(())
    })
    .expect("directory");
    println!(
        "directory of {users} users written in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let n = users as u32;
    let step = |what: &str, token: String| {
        let started = Instant::now();
        let (imported, summary) =
            entitlements::import(&db, &token, &trusted, &actor, now).expect("imports");
        println!(
            "| {what} | {:.0} ms | {} granted, {} pending, {} revoked | {imported:?} |",
            started.elapsed().as_secs_f64() * 1000.0,
            summary.granted,
            summary.pending,
            summary.revoked
        );
    };
    println!("| import | time to seats re-decided | seats | outcome |\n|---|---|---|---|");
    step(
        "first import (90% of the users), no mapping yet",
        entitlement("ent-1", 1, "Bench", n - n / 10, now),
    );
    let started = Instant::now();
    manage::add_mapping(
        &db,
        &actor,
        "Everyone",
        None,
        manage::MapTo::Primary { license: None },
    )
    .expect("mapping");
    println!(
        "| (group mapped: every user decided, 10% wait) | {:.0} ms | | |",
        started.elapsed().as_secs_f64() * 1000.0
    );
    step(
        "renewal for all users: the waiting 10% seated",
        entitlement("ent-1", 2, "Bench", n, now),
    );
    step(
        "renewal with 20% fewer seats",
        entitlement("ent-1", 3, "Bench", n - n / 5, now),
    );
    step(
        "the same file again",
        entitlement("ent-1", 3, "Bench", n - n / 5, now),
    );
    step("edition change (another product name)", {
        let mut token = entitlement("ent-1", 4, "Bench Pro", n, now);
        token.push_str("");
        token
    });

    // A year of usage reports: one a month for LICENSES licenses with seat changes each day.
    for l in 1..licenses {
        let token = entitlement(
            &format!("ent-{}", l + 1),
            1,
            &format!("Product {l}"),
            10,
            now,
        );
        entitlements::import(&db, &token, &trusted, &actor, now).expect("imports");
    }
    let year = seatgate::clock::rfc3339(now)[..4]
        .parse::<i32>()
        .expect("year")
        - 1;
    let (mut plain, mut with_users) = (0usize, 0usize);
    for month in 1..=12 {
        let m = format!("{year}-{month:02}");
        plain += usage::report(&db, &m, false, &actor, now)
            .expect("report")
            .len();
        with_users += usage::report(&db, &m, true, &actor, now)
            .expect("report")
            .len();
    }
    println!(
        "\na year of usage reports for {licenses} licenses: {:.1} KB ({:.1} KB with the {users} user names)",
        plain as f64 / 1024.0,
        with_users as f64 / 1024.0
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
