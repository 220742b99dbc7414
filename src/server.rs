//! `seatgate serve`: first-run initialization, wiring of the gatekeeper, workers, inner
//! server and background jobs, and orderly shutdown.
//!
//! Exit contract: returns `Ok` after a graceful shutdown (SIGTERM/SIGINT), `Err` when the
//! listener or the inner server fails, so launchd/systemd restart the process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::app::App;
use crate::config::{Config, TlsMode};
use crate::datadir::{DataDir, DirLock, LockError, ensure_private_dir};
use crate::db::{Db, DbError, backup, health, settings};
use crate::logging::STARTUP;
use crate::metrics::Metrics;
use crate::net::fds;
use crate::net::front::{self, Front, FrontError, Signals};
use crate::net::inner::InnerServer;
use crate::net::tls::{self, TlsError, TlsFiles};
use crate::net::upstream::Upstream;
use crate::{clock, setup};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Front(#[from] FrontError),
    #[error("{0}")]
    Demo(String),
    #[error("{0}")]
    Descriptors(String),
    #[error("{0}")]
    InterruptedRestore(String),
    /// A setting that can only be checked when serving (a file it names).
    #[error("{0}")]
    Config(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let context = context.into();
    move |source| ServeError::Io { context, source }
}

/// How long the start waits for the damage check before serving without it.
const START_CHECK_WAIT: Duration = Duration::from_secs(1);

pub fn serve(config: Config) -> Result<(), ServeError> {
    serve_with(config, None)
}

/// Serves; `demo` (only `seatgate demo` passes one) adds the demo IdP and seeds the demo
/// organization before the listener accepts connections.
pub(crate) fn serve_with(
    config: Config,
    demo: Option<crate::demo::Demo>,
) -> Result<(), ServeError> {
    let started = Instant::now();
    let config = Arc::new(config);
    let store = open_store(&config)?;
    let db = Arc::clone(&store.db);
    let health = health::global();
    let health_watch = watch_health(health, &config, &store)?;
    let (std_listener, bound) = bind(&config)?;
    // Configured, else chosen at first-run setup, else derived from the listener.
    let public = crate::public_url::resolve(&config, &db, bound)?;
    warn_if_derived_url_moved(&db, &public);
    let public_url = public.url.clone();

    let metrics = Arc::new(Metrics::default());
    metrics
        .started_unix
        .store(clock::now_unix(), Ordering::Relaxed);
    let tls_files = prepare_tls(&config, &store.data, &public_url)?;
    let tls_config = match &tls_files {
        Some(files) => {
            let info = tls::describe(&files.cert)?;
            metrics
                .tls_not_after_unix
                .store(info.not_after, Ordering::Relaxed);
            Some(tls::server_config(files)?)
        }
        None => None,
    };

    let (socket_path, socket_dir_is_temp) = inner_socket_path(&store.data)?;
    let inner_failed = Arc::new(AtomicBool::new(false));
    let app = build_app(
        &config,
        &store,
        &metrics,
        &public,
        tls_files.as_ref(),
        demo.is_some(),
    )?;
    let seeded = match (&demo, &app.demo_idp) {
        (Some(d), Some(idp)) => Some(
            d.seed(&app, idp)
                .map_err(|e| ServeError::Demo(e.to_string()))?,
        ),
        _ => None,
    };
    let workers = config.worker_count();
    let inner = start_inner(&socket_path, &app, workers, &inner_failed)?;
    let (poll, signals, listener) = watch_events(std_listener, tls_files.clone(), &metrics)?;
    let background = Background::start(&config, &db, &metrics, &app)?;
    finish_start_check(&health_watch.start_check, health, &db, &public_url);
    let (upstream, limits) = share_descriptors(&config, &store, &socket_path, workers)?;

    let scheme = if tls_config.is_some() {
        "https"
    } else {
        "http"
    };
    log::info!(target: STARTUP, "listening on {scheme}://{bound}");
    announce(
        &config,
        &store.data,
        &db,
        &public_url,
        tls_files.as_ref(),
        started,
    )?;
    if let (Some(d), Some(seeded)) = (&demo, &seeded) {
        d.print_walkthrough(&public_url, seeded);
    }

    let result = front::run(Front {
        poll,
        listener,
        tls: tls_config,
        limits,
        upstream,
        metrics,
        signals,
        inner_failed: Arc::clone(&inner_failed),
        public_url: public_url.clone(),
        storage: app.distribution.storage.root().to_path_buf(),
    });
    shut_down(
        result,
        Running {
            inner,
            app,
            db,
            health,
            health_watch,
            background,
            socket_path,
            socket_dir_is_temp,
        },
    )
}

/// The data directory, held locked for the life of the server, and its database.
struct Store {
    data: DataDir,
    _lock: DirLock,
    db: Arc<Db>,
    fd_limit: usize,
    fd_limit_before: usize,
}

fn open_store(config: &Config) -> Result<Store, ServeError> {
    // Before anything opens descriptors, so every later count is against the final limit.
    let (fd_limit, fd_limit_before) =
        fds::raise_limit().map_err(io_err("cannot read the open file limit"))?;
    let data = DataDir::create(&config.data_dir).map_err(io_err(format!(
        "cannot create the data directory {}",
        config.data_dir.display()
    )))?;
    let lock = data.lock()?;
    if let Some(refusal) = data.interrupted_restore() {
        return Err(ServeError::InterruptedRestore(refusal));
    }
    let db = Arc::new(Db::open(
        &data.db_path(),
        &config.backup_dir(),
        config.database.synchronous,
    )?);
    Ok(Store {
        data,
        _lock: lock,
        db,
        fd_limit,
        fd_limit_before,
    })
}

/// The health thread: dropping `stop` ends it; `start_check` fires when the start-up
/// damage check has passed.
struct HealthWatch {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
    start_check: mpsc::Receiver<()>,
}

/// The damage check starts at once and runs beside the rest of the start-up; nothing is
/// checkpointed into the file before it passes (`db::health`).
fn watch_health(
    health: &'static health::Health,
    config: &Config,
    store: &Store,
) -> Result<HealthWatch, ServeError> {
    health.configure(
        store.data.root(),
        &config.backup_dir(),
        config.database.min_free_space,
    );
    if let Ok(bytes) = crate::datadir::free_bytes(store.data.root()) {
        health.record_free_space(bytes);
    }
    health.begin_start_check();
    let qc = config.database.quick_check_interval;
    let (stop, thread, start_check) =
        health::watch(health, Arc::clone(&store.db), (!qc.is_zero()).then_some(qc))
            .map_err(io_err("cannot start the health thread"))?;
    Ok(HealthWatch {
        stop,
        thread,
        start_check,
    })
}

fn bind(config: &Config) -> Result<(std::net::TcpListener, SocketAddr), ServeError> {
    let listener =
        std::net::TcpListener::bind(config.listen).map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    listener
        .set_nonblocking(true)
        .map_err(io_err("cannot configure the listener"))?;
    let bound = listener
        .local_addr()
        .map_err(io_err("cannot read the listening address"))?;
    Ok((listener, bound))
}

/// The application every inner worker serves.
fn build_app(
    config: &Arc<Config>,
    store: &Store,
    metrics: &Arc<Metrics>,
    public: &crate::public_url::PublicUrl,
    tls_files: Option<&TlsFiles>,
    demo: bool,
) -> Result<Arc<App>, ServeError> {
    let db = &store.db;
    let public_url = &public.url;
    let clock = clock::Clock::system();
    let scim =
        crate::endpoints::scim::Scim::new(Arc::clone(db), public_url, &config.scim, clock.clone())
            .map_err(io_err("cannot start the SCIM request log"))?;
    let sp_key = Arc::new(crate::saml::signing::LazySpKey::new(store.data.saml_dir()));
    let demo_idp = if demo {
        Some(
            crate::demo::idp::DemoIdp::new(Arc::clone(db), public_url)
                .map_err(|e| ServeError::Demo(e.to_string()))?,
        )
    } else {
        None
    };
    let pre_auth = crate::preauth::PreAuth::new(&config.pre_auth, &clock);
    let storage = crate::storage::Storage::open(&config.storage, store.data.root())
        .map_err(io_err("cannot open the storage folder ([storage] dir)"))?;
    storage
        .record(db, clock.now_unix())
        .map_err(io_err("cannot record the storage folder in the database"))?;
    Ok(Arc::new(App {
        distribution: Arc::new(crate::distribution::Distribution::new(storage)),
        db: Arc::clone(db),
        config: Arc::clone(config),
        metrics: Arc::clone(metrics),
        scim,
        admin: crate::admin::Admin::new(
            Arc::clone(db),
            Arc::clone(&sp_key),
            config.admin.clone(),
            public_url.clone(),
            crate::admin::PortalOptions {
                device_limit: config.lease.device_limit,
                metadata_ca_file: (!config.saml.metadata_ca_file.is_empty())
                    .then(|| config.saml.metadata_ca_file.clone()),
                ca_cert: tls_files.and_then(|f| f.ca.clone()),
                server_cert: tls_files.map(|f| f.cert.clone()),
                public_url_source: public.source,
                clock: clock.clone(),
                demo,
                gateway: Arc::clone(config),
            },
        ),
        licensing: crate::endpoints::device::LicensingApi {
            db: Arc::clone(db),
            config: config.lease.clone(),
            public_url: public_url.clone(),
            sp_key: Arc::clone(&sp_key),
            clock: clock.clone(),
        },
        sp_key,
        pre_auth,
        public_url: public_url.clone(),
        demo_idp,
        clock,
    }))
}

/// The inner tiny_http server: `workers` threads on the private socket.
fn start_inner(
    socket_path: &Path,
    app: &Arc<App>,
    workers: usize,
    failed: &Arc<AtomicBool>,
) -> Result<InnerServer, ServeError> {
    InnerServer::start(socket_path, Arc::clone(app), workers, Arc::clone(failed)).map_err(io_err(
        format!("cannot start the inner server on {}", socket_path.display()),
    ))
}

/// The event loop with the listener and the signal pipe registered.
fn watch_events(
    std_listener: std::net::TcpListener,
    tls_files: Option<TlsFiles>,
    metrics: &Arc<Metrics>,
) -> Result<(mio::Poll, Signals, mio::net::TcpListener), ServeError> {
    let poll = mio::Poll::new().map_err(io_err("cannot create the event loop"))?;
    let signals = install_signals(&poll, tls_files, Arc::clone(metrics))?;
    let mut listener = mio::net::TcpListener::from_std(std_listener);
    poll.registry()
        .register(&mut listener, front::LISTENER, mio::Interest::READABLE)
        .map_err(io_err("cannot watch the listener"))?;
    Ok((poll, signals, listener))
}

/// The periodic jobs beside the server; each stops when its sender is dropped.
struct Background {
    backups: Schedule,
    housekeeping: Schedule,
    outbox: Schedule,
    checkpoints: (crate::db::CheckpointStop, JoinHandle<()>),
}

impl Background {
    fn start(
        config: &Config,
        db: &Arc<Db>,
        metrics: &Arc<Metrics>,
        app: &App,
    ) -> Result<Self, ServeError> {
        let clock = &app.clock;
        let backups = start_backup_schedule(config, db, metrics, clock)?;
        let housekeeping = start_housekeeping(config, db, app)?;
        let outbox = start_outbox(config, db, clock)?;
        let checkpoints =
            db.checkpoint_in_background(Duration::from_secs(1), config.database.wal_max_bytes())?;
        Ok(Background {
            backups,
            housekeeping,
            outbox,
            checkpoints,
        })
    }

    /// Tells every job to stop; returns the threads to wait for.
    fn stop(self) -> Vec<JoinHandle<()>> {
        let (stop_backups, backup_thread) = self.backups;
        let (stop_refresh, refresh_thread) = self.housekeeping;
        let (stop_outbox, outbox_thread) = self.outbox;
        let (stop_checkpoints, checkpoint_thread) = self.checkpoints;
        drop(stop_backups);
        drop(stop_refresh);
        drop(stop_outbox);
        drop(stop_checkpoints);
        [
            backup_thread,
            refresh_thread,
            outbox_thread,
            Some(checkpoint_thread),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

fn finish_start_check(
    start_check: &mpsc::Receiver<()>,
    health: &health::Health,
    db: &Db,
    public_url: &str,
) {
    // A small database is checked by now; a large one is served while the check goes
    // on, with /readyz failing until it passes.
    if start_check.recv_timeout(START_CHECK_WAIT).is_err() {
        log::info!(
            "the database check is still running (a large database); /readyz answers 503 until it passes"
        );
    }
    if !health.writes_stopped() {
        // Only a convenience for offline commands: a full disk must not stop the start.
        if let Err(e) = remember_public_url(db, public_url) {
            log::warn!("cannot record the public URL for offline commands: {e}");
        }
    }
}

/// The gatekeeper's upstream pool and connection limits, from the descriptors left.
fn share_descriptors(
    config: &Config,
    store: &Store,
    socket_path: &Path,
    workers: usize,
) -> Result<(Upstream, crate::config::Limits), ServeError> {
    let plan = plan_descriptors(config, store.fd_limit, store.fd_limit_before, workers)?;
    // Reads run on app threads serving upstream requests, plus housekeeping and backups.
    store.db.limit_readers(plan.upstream + 2);
    // The application threads are the bounded worker pool; the gatekeeper keeps at most
    // one upstream connection per thread (fewer when descriptors are short), and
    // `limits.queue` requests waiting beyond that.
    let upstream = Upstream::new(
        socket_path.to_path_buf(),
        plan.upstream,
        config.limits.queue,
        config.limits.app_timeout,
    );
    let limits = crate::config::Limits {
        max_connections: plan.max_connections,
        max_file_streams: plan.file_streams.min(config.limits.max_file_streams),
        ..config.limits.clone()
    };
    Ok((upstream, limits))
}

/// Everything the shutdown stops, in order.
struct Running {
    inner: InnerServer,
    app: Arc<App>,
    db: Arc<Db>,
    health: &'static health::Health,
    health_watch: HealthWatch,
    background: Background,
    socket_path: PathBuf,
    socket_dir_is_temp: bool,
}

fn shut_down(result: Result<(), FrontError>, running: Running) -> Result<(), ServeError> {
    let Running {
        inner,
        app,
        db,
        health,
        health_watch,
        background,
        socket_path,
        socket_dir_is_temp,
    } = running;
    let threads = background.stop();
    drop(health_watch.stop);
    if let Err(e) = &result {
        // Something is broken; do the minimum that keeps data safe and let the supervisor
        // restart us.
        log::error!("{e}; exiting so the service manager restarts seatgate");
        if let Err(e) = db.checkpoint() {
            log::warn!("WAL checkpoint at exit failed: {e}");
        }
        return result.map_err(ServeError::from);
    }
    inner.stop();
    app.scim.close();
    // The health thread is not waited for: a check of a large database may read for
    // seconds, and it writes nothing.
    drop(health_watch.thread);
    for t in threads {
        let _ = t.join();
    }
    if socket_dir_is_temp && let Some(dir) = socket_path.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
    if let Err(e) = health.refuse_checkpoint() {
        log::warn!("stopped; the database and its WAL were left as they are ({e})");
        return Ok(());
    }
    match db.checkpoint() {
        Ok(()) => log::info!("database checkpointed; stopped"),
        Err(e) => log::warn!("WAL checkpoint at shutdown failed: {e}"),
    }
    Ok(())
}

/// Shares the open file limit between client connections, the inner pool and the rest,
/// once everything long-lived is open.
fn plan_descriptors(
    config: &Config,
    limit: usize,
    before: usize,
    workers: usize,
) -> Result<fds::FdPlan, ServeError> {
    let in_use = fds::open_count().map_err(io_err("cannot count open file descriptors"))?;
    let plan = fds::FdPlan::new(limit, in_use, workers, config.limits.max_connections)
        .map_err(ServeError::Descriptors)?;
    let raised = if limit > before {
        format!(" (raised from {before})")
    } else {
        String::new()
    };
    let line = format!(
        "file descriptors: limit {limit}{raised}, {in_use} open, {} reserved; {} application connections, max_connections {} (configured {}), {} files sent at once",
        fds::RESERVED,
        plan.upstream,
        plan.max_connections,
        config.limits.max_connections,
        plan.file_streams.min(config.limits.max_file_streams)
    );
    if plan.max_connections < config.limits.max_connections {
        log::warn!("{line}; raise the open file limit to admit more");
    } else {
        log::info!("{line}");
    }
    Ok(plan)
}

/// The host part of a URL (no scheme, port, brackets or path).
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    authority.split(':').next().unwrap_or(authority)
}

fn prepare_tls(
    config: &Config,
    data: &DataDir,
    public_url: &str,
) -> Result<Option<TlsFiles>, ServeError> {
    Ok(match config.tls.mode {
        TlsMode::Off => None,
        TlsMode::Files => Some(TlsFiles {
            cert: PathBuf::from(&config.tls.cert),
            key: PathBuf::from(&config.tls.key),
            ca: None,
        }),
        TlsMode::SelfSigned => {
            let names = tls::certificate_names(url_host(public_url), &config.tls.hostnames);
            Some(tls::prepare_self_signed(&data.tls_dir(), &names)?)
        }
    })
}

/// The private socket lives in `<data_dir>/run` (0700). Unix socket paths are limited to
/// ~104 bytes, so a deep data dir falls back to a fresh 0700 directory under the temp dir.
fn inner_socket_path(data: &DataDir) -> Result<(PathBuf, bool), ServeError> {
    let preferred = data.run_dir().join("inner.sock");
    if preferred.as_os_str().len() <= 100 {
        ensure_private_dir(&data.run_dir())
            .map_err(io_err("cannot create the socket directory"))?;
        return Ok((preferred, false));
    }
    let dir = std::env::temp_dir().join(format!(
        "seatgate-{}-{}",
        std::process::id(),
        crate::crypto::random_hex(6)
    ));
    std::fs::create_dir(&dir).map_err(io_err(format!("cannot create {}", dir.display())))?;
    ensure_private_dir(&dir).map_err(io_err("cannot secure the socket directory"))?;
    Ok((dir.join("inner.sock"), true))
}

fn install_signals(
    poll: &mio::Poll,
    tls_files: Option<TlsFiles>,
    metrics: Arc<Metrics>,
) -> Result<Signals, ServeError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let (read, write) =
        std::os::unix::net::UnixStream::pair().map_err(io_err("cannot create the signal pipe"))?;
    read.set_nonblocking(true)
        .map_err(io_err("cannot configure the signal pipe"))?;
    write
        .set_nonblocking(true)
        .map_err(io_err("cannot configure the signal pipe"))?;
    let terminate = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    let sig = |e: std::io::Error| ServeError::Io {
        context: "cannot install signal handlers".into(),
        source: e,
    };
    for s in [SIGTERM, SIGINT] {
        // A second signal while already shutting down exits at once.
        signal_hook::flag::register_conditional_shutdown(s, 1, Arc::clone(&terminate))
            .map_err(sig)?;
        signal_hook::flag::register(s, Arc::clone(&terminate)).map_err(sig)?;
    }
    signal_hook::flag::register(SIGHUP, Arc::clone(&reload)).map_err(sig)?;
    for s in [SIGTERM, SIGINT, SIGHUP] {
        let w = write
            .try_clone()
            .map_err(io_err("cannot clone the signal pipe"))?;
        signal_hook::low_level::pipe::register(s, w).map_err(sig)?;
    }
    let mut pipe = mio::net::UnixStream::from_std(read);
    poll.registry()
        .register(&mut pipe, front::SIGNALS, mio::Interest::READABLE)
        .map_err(io_err("cannot watch the signal pipe"))?;
    let reload_tls = Box::new(move || {
        let files = tls_files.as_ref()?;
        match tls::server_config(files).and_then(|c| tls::describe(&files.cert).map(|i| (c, i))) {
            Ok((config, info)) => {
                metrics
                    .tls_not_after_unix
                    .store(info.not_after, Ordering::Relaxed);
                log::info!(
                    "TLS certificate {} (SHA-256 {}) valid until {}",
                    files.cert.display(),
                    info.sha256,
                    clock::rfc3339(info.not_after)
                );
                Some(config)
            }
            Err(e) => {
                log::error!(
                    "SIGHUP: keeping the current certificate, the new one is not usable: {e}"
                );
                None
            }
        }
    });
    Ok(Signals {
        pipe,
        terminate,
        reload,
        reload_tls,
    })
}

/// A background thread and the sender whose drop stops it.
type Schedule = (Option<mpsc::Sender<()>>, Option<JoinHandle<()>>);

/// Periodic upkeep, checked a few times per `saml.metadata_refresh` (at most once a
/// minute): refreshes URL-backed IdP metadata that is due, and releases devices silent for
/// `lease.release_silent_after`.
fn start_housekeeping(config: &Config, db: &Arc<Db>, app: &App) -> Result<Schedule, ServeError> {
    let public_url = app.public_url.clone();
    let clock = &app.clock;
    let distribution = Arc::clone(&app.distribution);
    let lease = config.lease.clone();
    let ca = config.saml.metadata_ca_file.clone();
    let interval = config.saml.metadata_refresh;
    // Short enough that a license expiry takes effect within seconds; each tick is a few
    // indexed queries.
    let tick = (interval / 10).min(Duration::from_secs(5));
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let db = Arc::clone(db);
    let clock = clock.clone();
    let handle = std::thread::Builder::new()
        .name("housekeeping".into())
        .spawn(move || {
            // Built at the first tick: loading the system's roots costs start-up time and
            // memory that a gateway without URL-backed metadata never needs.
            let mut fetcher = None;
            let mut end_warnings = crate::licensing::entitlements::EndWarnings::default();
            let mut notified: Option<std::time::Instant> = None;
            let mut fleet: Option<std::time::Instant> = None;
            loop {
                match stop_rx.recv_timeout(tick) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                // These writes keep being tried on a full disk (the first to succeed ends
                // that state), but failures `health` already reported are not repeated.
                let quiet = || health::global().reported();
                match crate::licensing::leases::release_silent(&db, &lease, clock.now_unix()) {
                    Ok(0) => {}
                    Ok(n) => log::info!(
                        "released {n} device(s) silent for longer than lease.release_silent_after"
                    ),
                    Err(_) if quiet() => {}
                    Err(e) => log::error!("releasing silent devices failed: {e}"),
                }
                match crate::licensing::reconcile::apply_expiries(&db, clock.now_unix()) {
                    Ok(Some(s)) => log::info!(
                        "a license or sublicense expired: {} seat(s) granted, {} pending, {} revoked",
                        s.granted,
                        s.pending,
                        s.revoked
                    ),
                    Ok(None) => {}
                    Err(e) => {
                        health::global().observe(&e);
                        if !quiet() {
                            log::error!("applying license expiries failed: {e}");
                        }
                    }
                }
                warn_and_notify(&db, &clock, &public_url, &mut end_warnings, &mut notified);
                fleet_upkeep(&db, &clock, &distribution, &mut fleet);
                let tried_before = clock.now_unix() - interval.as_secs() as i64;
                let due =
                    match db.read(|tx| crate::db::idp::metadata_urls_due(tx, Some(tried_before))) {
                        Ok(due) => due,
                        Err(e) => {
                            log::error!("IdP metadata refresh: {e}");
                            continue;
                        }
                    };
                if due.is_empty() {
                    continue;
                }
                if fetcher.is_none() {
                    match crate::saml::fetch::MetadataFetcher::new(
                        (!ca.is_empty()).then(|| Path::new(ca.as_str())),
                    ) {
                        Ok(f) => fetcher = Some(f),
                        Err(e) => {
                            log::error!("IdP metadata refresh: {e}");
                            continue;
                        }
                    }
                }
                let Some(fetcher) = fetcher.as_ref() else {
                    continue;
                };
                if let Err(e) =
                    crate::saml::connections::refresh_metadata(&db, fetcher, Some(tried_before))
                {
                    log::error!("IdP metadata refresh failed: {e}");
                }
            }
        })
        .map_err(io_err("cannot start the housekeeping thread"))?;
    Ok((Some(stop_tx), Some(handle)))
}

/// Housekeeping's fleet upkeep, every five minutes: each pool's marks for today (so a
/// day without seat changes still has its row), days past the history's keep removed,
/// and the VMs of devices released long ago forgotten; abandoned uploads and orphaned
/// files leave the storage folder. The first run also reconstructs, once per database,
/// the days before the history existed.
fn fleet_upkeep(
    db: &Db,
    clock: &clock::Clock,
    distribution: &crate::distribution::Distribution,
    last: &mut Option<std::time::Instant>,
) {
    if last.is_some_and(|t| t.elapsed() < Duration::from_secs(300)) {
        return;
    }
    let first = last.is_none();
    *last = Some(std::time::Instant::now());
    let now = clock.now_unix();
    let quiet = || health::global().reported();
    if first {
        match crate::licensing::history::backfill(db, now) {
            Ok(0) => {}
            Ok(n) => {
                log::info!("seat history: {n} earlier pool-day(s) reconstructed from the audit log")
            }
            Err(_) if quiet() => {}
            Err(e) => log::error!("seat history backfill failed: {e}"),
        }
    }
    if let Err(e) = crate::licensing::history::sample(db, now)
        && !quiet()
    {
        log::error!("recording seat history failed: {e}");
    }
    match crate::licensing::inventory::age_out(db, now) {
        Ok(0) => {}
        Ok(n) => log::info!("forgot {n} VM(s) of devices released over 30 days ago"),
        Err(_) if quiet() => {}
        Err(e) => log::error!("ageing out the VM inventory failed: {e}"),
    }
    match crate::distribution::uploads::sweep(distribution, db, now) {
        Ok(0) => {}
        Ok(n) => log::info!("storage folder: removed {n} abandoned upload(s) or orphaned file(s)"),
        Err(_) if quiet() => {}
        Err(e) => log::error!("sweeping the storage folder failed: {e}"),
    }
}

/// Housekeeping's warnings: entitlements ending (the log), and the admin notifications
/// due (the outbox; a few queries, every five minutes).
fn warn_and_notify(
    db: &Db,
    clock: &clock::Clock,
    public_url: &str,
    end_warnings: &mut crate::licensing::entitlements::EndWarnings,
    notified: &mut Option<std::time::Instant>,
) {
    match crate::licensing::entitlements::ending_soon(db, clock.now_unix()) {
        Ok(ending) => {
            for line in end_warnings.due(ending) {
                log::warn!("{line}");
            }
        }
        Err(e) => log::error!("checking entitlement ends failed: {e}"),
    }
    if notified.is_some_and(|t| t.elapsed() < Duration::from_secs(300)) {
        return;
    }
    *notified = Some(std::time::Instant::now());
    let now = clock.now_unix();
    match db.write(|tx| crate::mail::notifications::queue_due(tx, public_url, now)) {
        Ok(0) => {}
        Ok(n) => log::info!("queued {n} admin notification email(s)"),
        Err(_) if health::global().reported() => {}
        Err(e) => log::error!("checking admin notifications failed: {e}"),
    }
}

/// The outbox worker (`mail::outbox`): sends queued email through `[smtp]`.
fn start_outbox(
    config: &Config,
    db: &Arc<Db>,
    clock: &clock::Clock,
) -> Result<Schedule, ServeError> {
    let outbox = crate::mail::outbox::Outbox::new(Arc::clone(db), &config.smtp)
        .map_err(|e| ServeError::Config(e.to_string()))?;
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let clock = clock.clone();
    let handle = std::thread::Builder::new()
        .name("outbox".into())
        .spawn(move || crate::mail::outbox::run(outbox, clock, stop_rx))
        .map_err(io_err("cannot start the outbox thread"))?;
    Ok((Some(stop_tx), Some(handle)))
}

fn start_backup_schedule(
    config: &Config,
    db: &Arc<Db>,
    metrics: &Arc<Metrics>,
    clock: &clock::Clock,
) -> Result<Schedule, ServeError> {
    if !config.backup.enabled {
        return Ok((None, None));
    }
    let dir = config.backup_dir();
    ensure_private_dir(&dir).map_err(io_err(format!(
        "cannot create the backup directory {}",
        dir.display()
    )))?;
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let db = Arc::clone(db);
    let metrics = Arc::clone(metrics);
    let clock = clock.clone();
    let interval = config.backup.interval;
    let retain = config.backup.retain;
    // First backup: one interval after the newest one, or soon after a first start.
    let mut due = backup::newest_scheduled(&dir)
        .map(|t| t + interval)
        .unwrap_or_else(|| SystemTime::now() + interval.min(Duration::from_secs(300)));
    let handle = std::thread::Builder::new()
        .name("backups".into())
        .spawn(move || {
            loop {
                let wait = due
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO);
                match stop_rx.recv_timeout(wait) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                due = SystemTime::now() + interval;
                if health::global().writes_stopped() {
                    // A copy of damage is no backup, and its pruning would delete good ones.
                    log::warn!("scheduled backup skipped: the database is damaged");
                    continue;
                }
                let out = backup::scheduled_path(&dir);
                match db.backup_to(&out) {
                    Ok(()) => {
                        metrics
                            .last_backup_unix
                            .store(clock.now_unix(), Ordering::Relaxed);
                        let pruned = backup::prune(&dir, retain);
                        log::info!(
                            "scheduled backup written to {} ({pruned} old backups removed)",
                            out.display()
                        );
                    }
                    Err(e) => log::error!("scheduled backup failed: {e}"),
                }
            }
        })
        .map_err(io_err("cannot start the backup thread"))?;
    Ok((Some(stop_tx), Some(handle)))
}

fn remember_public_url(db: &Db, public_url: &str) -> Result<(), DbError> {
    db.write(|tx| {
        settings::put(tx, settings::LAST_PUBLIC_URL, public_url, clock::now_unix())?;
        Ok(())
    })
}

/// A derived public URL that moved with the listener changes the SP entity ID, the ACS
/// URLs and lease issuers: say so once at start, with how to keep the old one.
fn warn_if_derived_url_moved(db: &Db, public: &crate::public_url::PublicUrl) {
    if public.source != crate::public_url::Source::Listener {
        return;
    }
    match last_public_url(db) {
        Ok(Some(last)) if last != public.url => log::warn!(
            "the public URL follows the listening address and changed from {last} to {}: identity providers need the new entity ID and ACS URLs (`seatgate idp list`), or start with --public-url {last} to keep the old one",
            public.url
        ),
        Ok(_) => {}
        Err(e) => log::warn!("cannot read the last public URL: {e}"),
    }
}

/// The public URL recorded by the last `serve`, for offline commands.
pub fn last_public_url(db: &Db) -> Result<Option<String>, DbError> {
    db.read(|tx| Ok(settings::get(tx, settings::LAST_PUBLIC_URL)?))
}

fn announce(
    config: &Config,
    data: &DataDir,
    db: &Db,
    public_url: &str,
    tls: Option<&TlsFiles>,
    started: Instant,
) -> Result<(), ServeError> {
    log::info!(
        target: STARTUP,
        "seatgate {} ready at {public_url} in {} ms (data directory {})",
        env!("CARGO_PKG_VERSION"),
        started.elapsed().as_millis(),
        data.root().display()
    );
    if let Some(ca) = tls.and_then(|t| t.ca.as_deref()) {
        let fp = tls::describe(ca)
            .map(|i| i.sha256)
            .unwrap_or_else(|e| format!("unreadable: {e}"));
        log::info!(
            target: STARTUP,
            "local CA certificate: {} (SHA-256 {fp}); trust it once on each Mac",
            ca.display()
        );
    }
    if config.tls.mode == TlsMode::Off && !config.listen.ip().is_loopback() {
        log::warn!(
            "TLS is off and seatgate listens beyond loopback: put a TLS-terminating proxy in front"
        );
    }
    if health::global().writes_stopped() {
        return Ok(());
    }
    match setup::on_start(db, &data.setup_link_path(), public_url)? {
        setup::SetupState::Done => {}
        setup::SetupState::StillValid { expires_at } => log::info!(
            target: STARTUP,
            "first-run setup is not finished; the setup link in {} is valid until {}",
            data.setup_link_path().display(),
            clock::rfc3339(expires_at)
        ),
        setup::SetupState::Minted { link, expires_at } => log::info!(
            target: STARTUP,
            "first-run setup: open {link} (valid until {}, usable once; also in {})",
            clock::rfc3339(expires_at),
            data.setup_link_path().display()
        ),
    }
    Ok(())
}
