//! The vendor's side for tests: entitlements minted with the development key (which the
//! test builds of seatgate trust), and hostile variants of them.

use entitlement::Entitlement;

pub const DAY: i64 = 86_400;

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The time this test process started: entitlements built in one test run over the
/// same period, so building one twice gives the same contents (a second ticking
/// between the two would otherwise make a re-sent file look like a conflicting one).
fn started() -> i64 {
    static STARTED: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *STARTED.get_or_init(now)
}

/// A paid, unbound entitlement for `product` running from the day before this test
/// process started, for a year.
pub fn entitlement(id: &str, serial: u32, product: &str, seats: u32) -> Entitlement {
    Entitlement {
        format: entitlement::entitlement::FORMAT,
        customer_id: "cus-contoso".into(),
        customer_name: "Contoso Ltd".into(),
        entitlement_id: id.into(),
        serial,
        product: product.into(),
        edition: "Enterprise".into(),
        seats,
        device_seats: 0,
        starts_at: started() - DAY,
        ends_at: started() + 365 * DAY,
        trial: false,
        max_offline_grace_days: 30,
        per_device_keys: false,
        gateways: 1,
        instance: None,
        issued_at: started(),
    }
}

/// Signed with the development vendor key.
pub fn mint(e: &Entitlement) -> String {
    e.sign(
        &entitlement::dev::signing_key(),
        entitlement::dev::DEV_KEY.kid,
    )
    .expect("a consistent entitlement signs")
}

/// Writes a token to a file under `dir` and returns its path as text.
pub fn file(dir: &std::path::Path, name: &str, token: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, token).expect("write token");
    path.to_str().expect("utf8").to_string()
}

/// `YYYY-MM` (UTC) of a Unix time.
pub fn month_of(t: i64) -> String {
    // Civil from days (Howard Hinnant's algorithm), to avoid a date crate in the kit.
    let z = t.div_euclid(DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}")
}
