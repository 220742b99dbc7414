//! Users-list benchmark (issue 16 item 5), run with `cargo bench --bench portal_users`.
//!
//! In-process, on a real database file, through the query the portal's Users page, its
//! CSV export and the admin API run: with `USERS` users (default 100000; names given and
//! family only, no displayName, in 5 groups, a license seating 90%), the time of the first,
//! a middle and the last page (50 users) for each sort, a search by family name, and the
//! waiting list filter.

mod common;

use std::time::Instant;

use seatgate::audit::Actor;
use seatgate::db::directory::{self as dir};
use seatgate::db::portal::{self, SeatFilter, UserQuery, UserSort};
use seatgate::db::{Db, Synchronous};
use seatgate::domain::scim::resource;
use seatgate::licensing::manage;

const PAGE: i64 = 50;
const FAMILIES: [&str; 8] = [
    "Smith", "Moreau", "Tanaka", "Okafor", "Novak", "García", "Larsen", "Kowalski",
];

fn main() {
    let users: usize = std::env::var("USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let tmp = std::env::temp_dir().join(format!("seatgate-users-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).expect("tmp");
    let db = Db::open(&tmp.join("seatgate.db"), &tmp, Synchronous::Normal).expect("open");
    let now = seatgate::clock::now_unix();
    let started = Instant::now();
    db.write(|tx| {
        let mut ids = Vec::with_capacity(users);
        for i in 0..users {
            let body = serde_json::json!({
                "userName": format!("u{i:06}@bench.example"), "active": i % 50 != 0,
                "name": {"givenName": format!("Given{}", i % 997), "familyName": format!("{}{i}", FAMILIES[i % FAMILIES.len()])},
                "emails": [{"value": format!("u{i:06}@bench.example"), "primary": true}]
            });
            let (stored, fields) = resource::prepare_user(body).expect("user");
            let id = format!("u-{i:06}");
            dir::insert_user(tx, None, &id, &fields, &stored.to_string(), None, now)?;
            ids.push(id);
        }
        for g in 0..5 {
            let group = serde_json::json!({"displayName": format!("Group {g}")});
            let (stored, fields, _) = resource::prepare_group(group).expect("group");
            let gid = format!("g-{g}");
            dir::insert_group(tx, None, &gid, &fields, &stored.to_string(), now)?;
            let members: Vec<String> = ids.iter().skip(g).step_by(5).cloned().collect();
            dir::add_members(tx, &gid, &members)?;
        }
        Ok::<_, rusqlite::Error>(())
    })
    .expect("directory");
    let actor = Actor::Cli;
    manage::add_license(
        &db,
        &actor,
        &manage::NewLicense {
            product: "Bench",
            seats: (users - users / 10) as i64,
            expires_at: None,
            key: None,
        },
    )
    .expect("license");
    for g in 0..5 {
        manage::add_mapping(
            &db,
            &actor,
            &format!("Group {g}"),
            None,
            manage::MapTo::Primary { license: None },
        )
        .expect("mapping");
    }
    println!(
        "# seatgate users-list benchmark\n\n{users} users in 5 groups, 90% seated, written and seated in {:.1} s; pages of {PAGE}, in-process, 2 cores\n",
        started.elapsed().as_secs_f64()
    );
    let time = |what: &str, query: UserQuery<'_>| {
        // Best of 3: the page an admin waits for, without a cold cache's first read.
        let mut best = f64::MAX;
        let mut found = (0, 0);
        for _ in 0..3 {
            let started = Instant::now();
            let (total, rows) = db
                .read(|tx| portal::search_users(tx, &query))
                .expect("search");
            best = best.min(started.elapsed().as_secs_f64() * 1000.0);
            found = (total, rows.len());
        }
        println!("| {what} | {best:.1} ms | {} of {} |", found.1, found.0);
    };
    let query = |sort, offset, q, filter| UserQuery {
        q,
        filter,
        sort,
        descending: false,
        offset,
        limit: PAGE,
    };
    println!("| page | time | rows |\n|---|---|---|");
    let last = users as i64 - PAGE;
    for sort in UserSort::ALL {
        for (label, offset) in [("first", 0), ("middle", last / 2), ("last", last)] {
            time(
                &format!("by {}, {label} page", sort.key()),
                query(sort, offset, "", SeatFilter::Any),
            );
        }
    }
    time(
        "search \"moreau\" (family name), first page",
        query(UserSort::Name, 0, "moreau", SeatFilter::Any),
    );
    time(
        "waiting for a seat, by seat (queue order), first page",
        query(UserSort::Seat, 0, "", SeatFilter::Waiting),
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
