//! Process metrics, rendered in the Prometheus text format at `/metrics` (opt-in, bearer
//! token). Counters are atomics or small maps behind a mutex; labels have low, fixed
//! cardinality (route patterns, status codes, reasons), never raw paths or client data.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Licensing outcomes since the process started: activations by method, renewals, and
/// refusals by what was refused and the reason code. Counted by the licensing services
/// once their transaction has committed.
#[derive(Default)]
pub struct LicensingCounters {
    activations: Mutex<BTreeMap<&'static str, u64>>,
    renewals: AtomicU64,
    refusals: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

impl LicensingCounters {
    /// A device activated, by `method` (`sso` or `key`).
    pub fn activated(&self, method: &'static str) {
        if let Ok(mut m) = self.activations.lock() {
            *m.entry(method).or_default() += 1;
        }
    }

    /// An activation by `method` that succeeded, or was refused with this reason code.
    pub fn activation(&self, method: &'static str, refused: Option<&'static str>) {
        match refused {
            None => self.activated(method),
            Some(reason) => self.refused("activation", reason),
        }
    }

    pub fn renewed(&self) {
        self.renewals.fetch_add(1, Ordering::Relaxed);
    }

    /// A refusal of `what` (`activation`, `renewal` or `policy`) with its reason code.
    pub fn refused(&self, what: &'static str, reason: &'static str) {
        if let Ok(mut m) = self.refusals.lock() {
            *m.entry((what, reason)).or_default() += 1;
        }
    }
}

/// The process's licensing counters.
pub fn licensing() -> &'static LicensingCounters {
    static COUNTERS: std::sync::OnceLock<LicensingCounters> = std::sync::OnceLock::new();
    COUNTERS.get_or_init(LicensingCounters::default)
}

/// What the licensing gauges show: each pool's seats, and when each license ends.
#[derive(Debug, Clone, Default)]
pub struct Seats {
    pub pools: Vec<PoolGauge>,
    /// (license id, Unix time of its end) for licenses that end.
    pub license_ends: Vec<(String, i64)>,
}

/// One pool's seats now, for the per-pool gauges.
#[derive(Debug, Clone)]
pub struct PoolGauge {
    pub license: String,
    /// The sublicense id, or `primary`.
    pub pool: String,
    pub capacity: i64,
    pub used: i64,
    pub pending: i64,
}

#[derive(Debug, Clone, Copy)]
pub enum Refusal {
    TotalCap,
    PerClientCap,
    NoFileDescriptors,
}

#[derive(Default)]
pub struct Metrics {
    connections_accepted: AtomicU64,
    connections_open: AtomicI64,
    connections_evicted: AtomicU64,
    refused_total_cap: AtomicU64,
    refused_client_cap: AtomicU64,
    refused_no_fds: AtomicU64,
    tls_failures: AtomicU64,
    timeouts: Mutex<BTreeMap<&'static str, u64>>,
    gate_rejections: Mutex<BTreeMap<u16, u64>>,
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    pub started_unix: AtomicI64,
    pub tls_not_after_unix: AtomicI64,
    pub last_backup_unix: AtomicI64,
}

impl Metrics {
    pub fn accepted(&self) {
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub fn closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn evicted(&self) {
        self.connections_evicted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn refused(&self, why: Refusal) {
        let counter = match why {
            Refusal::TotalCap => &self.refused_total_cap,
            Refusal::PerClientCap => &self.refused_client_cap,
            Refusal::NoFileDescriptors => &self.refused_no_fds,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn tls_failed(&self) {
        self.tls_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub fn timed_out(&self, phase: &'static str) {
        *self
            .timeouts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(phase)
            .or_insert(0) += 1;
    }

    pub fn gate_rejected(&self, status: u16) {
        *self
            .gate_rejections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(status)
            .or_insert(0) += 1;
    }

    /// Records one request answered by the application.
    pub fn observe(&self, route: &'static str, method: &str, status: u16, elapsed: Duration) {
        let method = match method {
            "GET" => "GET",
            "HEAD" => "HEAD",
            "POST" => "POST",
            "PUT" => "PUT",
            "PATCH" => "PATCH",
            "DELETE" => "DELETE",
            "OPTIONS" => "OPTIONS",
            _ => "OTHER",
        };
        *self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((route, method, status))
            .or_insert(0) += 1;
        let secs = elapsed.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// The Prometheus text, with the database's health as `db::health` reports it and
    /// each pool's seats.
    pub fn render(&self, health: &Health, seats: &Seats) -> String {
        let mut out = Exposition::default();
        self.render_process(&mut out);
        self.render_connections(&mut out);
        self.render_requests(&mut out);
        self.render_stored_state(&mut out, health);
        render_licensing(&mut out, licensing(), seats);
        out.text
    }

    /// The binary and when it started.
    fn render_process(&self, out: &mut Exposition) {
        out.metric(
            "seatgate_build_info",
            "gauge",
            "Version of the running binary.",
            vec![(
                format!("{{version=\"{}\"}}", env!("CARGO_PKG_VERSION")),
                "1".into(),
            )],
        );
        out.metric(
            "seatgate_start_time_seconds",
            "gauge",
            "Unix time the process started.",
            vec![(
                String::new(),
                self.started_unix.load(Ordering::Relaxed).to_string(),
            )],
        );
    }

    /// The gatekeeper: connections, TLS and requests it answered itself.
    fn render_connections(&self, out: &mut Exposition) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        out.metric(
            "seatgate_connections_accepted_total",
            "counter",
            "Client connections accepted.",
            vec![(String::new(), load(&self.connections_accepted).to_string())],
        );
        out.metric(
            "seatgate_connections_open",
            "gauge",
            "Client connections open now.",
            vec![(
                String::new(),
                self.connections_open.load(Ordering::Relaxed).to_string(),
            )],
        );
        out.metric(
            "seatgate_connections_evicted_total",
            "counter",
            "Idle connections closed to make room under a connection cap.",
            vec![(String::new(), load(&self.connections_evicted).to_string())],
        );
        out.metric(
            "seatgate_connections_refused_total",
            "counter",
            "Connections refused at accept time.",
            vec![
                (
                    "{reason=\"total_cap\"}".into(),
                    load(&self.refused_total_cap).to_string(),
                ),
                (
                    "{reason=\"client_cap\"}".into(),
                    load(&self.refused_client_cap).to_string(),
                ),
                (
                    "{reason=\"no_file_descriptors\"}".into(),
                    load(&self.refused_no_fds).to_string(),
                ),
            ],
        );
        out.metric(
            "seatgate_tls_handshake_failures_total",
            "counter",
            "Connections closed because of a TLS error.",
            vec![(String::new(), load(&self.tls_failures).to_string())],
        );
        let timeouts = self
            .timeouts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        out.metric(
            "seatgate_connection_timeouts_total",
            "counter",
            "Connections that missed a deadline, by phase.",
            timeouts
                .iter()
                .map(|(phase, n)| (format!("{{phase=\"{phase}\"}}"), n.to_string()))
                .collect(),
        );
        let rejections = self
            .gate_rejections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        out.metric(
            "seatgate_gatekeeper_rejections_total",
            "counter",
            "Requests answered by the gatekeeper without reaching the application, by status.",
            rejections
                .iter()
                .map(|(status, n)| (format!("{{status=\"{status}\"}}"), n.to_string()))
                .collect(),
        );
    }

    /// Requests the application answered, and how long it took.
    fn render_requests(&self, out: &mut Exposition) {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        out.metric(
            "seatgate_http_requests_total",
            "counter",
            "Requests answered by the application, by route pattern, method and status.",
            requests
                .iter()
                .map(|((route, method, status), n)| {
                    (
                        format!("{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}}"),
                        n.to_string(),
                    )
                })
                .collect(),
        );
        let mut samples: Vec<(String, String)> = BUCKETS
            .iter()
            .zip(&self.latency_buckets)
            .map(|(bound, n)| (format!("_bucket{{le=\"{bound}\"}}"), load(n).to_string()))
            .collect();
        samples.push((
            "_bucket{le=\"+Inf\"}".into(),
            load(&self.latency_count).to_string(),
        ));
        samples.push((
            "_sum".into(),
            format!("{:.6}", load(&self.latency_sum_micros) as f64 / 1e6),
        ));
        samples.push(("_count".into(), load(&self.latency_count).to_string()));
        out.metric(
            "seatgate_http_request_duration_seconds",
            "histogram", // the label strings carry the _bucket/_sum/_count suffixes
            "Time the application took to answer.",
            samples,
        );
    }

    /// The certificate, backups, disk and database.
    fn render_stored_state(&self, out: &mut Exposition, health: &Health) {
        out.metric(
            "seatgate_tls_certificate_expiry_seconds",
            "gauge",
            "Unix time the served certificate expires (0 when TLS is off).",
            vec![(
                String::new(),
                self.tls_not_after_unix.load(Ordering::Relaxed).to_string(),
            )],
        );
        out.metric(
            "seatgate_last_backup_time_seconds",
            "gauge",
            "Unix time of the last successful scheduled backup (0 if none yet).",
            vec![(
                String::new(),
                self.last_backup_unix.load(Ordering::Relaxed).to_string(),
            )],
        );
        let free = health.free;
        out.metric(
            "seatgate_disk_free_bytes",
            "gauge",
            "Bytes free on the data directory's file system (measured every few seconds).",
            free.map(|(bytes, _)| (String::new(), bytes.to_string()))
                .into_iter()
                .collect(),
        );
        out.metric(
            "seatgate_disk_free_low",
            "gauge",
            "1 while the free space is below [database] min_free_space.",
            free.map(|(_, low)| (String::new(), u8::from(low).to_string()))
                .into_iter()
                .collect(),
        );
        let state = health.state;
        out.metric(
            "seatgate_database_state",
            "gauge",
            "1 for the database's state: ok, corrupt (writes stopped) or disk_full.",
            ["ok", "corrupt", "disk_full"]
                .iter()
                .map(|s| {
                    (
                        format!("{{state=\"{s}\"}}"),
                        u8::from(*s == state).to_string(),
                    )
                })
                .collect(),
        );
    }
}

/// Pools (gauges) and licensing outcomes (counters). License and sublicense ids are
/// the labels: few, and chosen by admins, never by clients.
fn render_licensing(out: &mut Exposition, c: &LicensingCounters, seats: &Seats) {
    let pools = &seats.pools;
    out.metric(
        "seatgate_license_end_time_seconds",
        "gauge",
        "Unix time a license (from the vendor's entitlement, or entered by hand) ends; licenses without an end are absent.",
        seats
            .license_ends
            .iter()
            .map(|(l, t)| (format!("{{license=\"{l}\"}}"), t.to_string()))
            .collect(),
    );
    let label = |p: &PoolGauge| format!("{{license=\"{}\",pool=\"{}\"}}", p.license, p.pool);
    for (name, help, value) in [
        (
            "seatgate_pool_capacity_seats",
            "Seats a pool can hold now.",
            (|p: &PoolGauge| p.capacity) as fn(&PoolGauge) -> i64,
        ),
        (
            "seatgate_pool_used_seats",
            "Seats assigned in a pool now (the primary pool's include those of dynamic sublicenses).",
            |p| p.used,
        ),
        (
            "seatgate_pool_pending_seats",
            "People waiting for a seat in a pool now.",
            |p| p.pending,
        ),
    ] {
        out.metric(
            name,
            "gauge",
            help,
            pools
                .iter()
                .map(|p| (label(p), value(p).to_string()))
                .collect(),
        );
    }
    let mut activations = c.activations.lock().map(|m| m.clone()).unwrap_or_default();
    // Both methods from the start, so a rate over them never begins with a gap.
    for method in ["sso", "key"] {
        activations.entry(method).or_insert(0);
    }
    out.metric(
        "seatgate_activations_total",
        "counter",
        "Devices activated, by method (sso, key).",
        activations
            .iter()
            .map(|(m, n)| (format!("{{method=\"{m}\"}}"), n.to_string()))
            .collect(),
    );
    out.metric(
        "seatgate_renewals_total",
        "counter",
        "Leases renewed.",
        vec![(
            String::new(),
            c.renewals.load(Ordering::Relaxed).to_string(),
        )],
    );
    let refusals = c.refusals.lock().map(|m| m.clone()).unwrap_or_default();
    out.metric(
        "seatgate_licensing_refusals_total",
        "counter",
        "Activations, renewals and policy fetches refused, by reason code.",
        refusals
            .iter()
            .map(|((what, reason), n)| {
                (
                    format!("{{what=\"{what}\",reason=\"{reason}\"}}"),
                    n.to_string(),
                )
            })
            .collect(),
    );
}

/// The database's health for the metrics: free bytes and whether that is below the
/// configured minimum, and its state (`ok`, `corrupt` or `disk_full`).
#[derive(Debug, Clone, Copy)]
pub struct Health {
    pub free: Option<(u64, bool)>,
    pub state: &'static str,
}

/// The Prometheus text format being written.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    /// One metric: its help and type lines, then one line per (labels, value) sample.
    fn metric(&mut self, name: &str, kind: &str, help: &str, samples: Vec<(String, String)>) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(self.text, "{name}{labels} {value}");
        }
    }
}
