//! The outbox worker: one thread beside the server that sends queued messages through the
//! mail server, at most `[smtp] max_per_minute`, and records each outcome. Messages are
//! stored before anything is sent (`db::outbox`), so a restart, a full disk or a mail
//! server that is down loses nothing; a message interrupted between its send and its
//! record is sent again (at least once, never silently dropped).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::config::SmtpConfig;
use crate::db::Db;
use crate::db::outbox as store;

use super::smtp::{Mailer, backoff};

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

pub struct Outbox {
    db: Arc<Db>,
    mailer: Option<Mailer>,
    cfg: SmtpConfig,
    /// When the messages of the last minute went out (the rate limit's window).
    window: VecDeque<Instant>,
    /// Whether "no mail server" was logged (once, not every tick).
    told_no_server: bool,
}

impl Outbox {
    pub fn new(db: Arc<Db>, cfg: &SmtpConfig) -> Result<Outbox, super::smtp::MailerError> {
        Ok(Outbox {
            db,
            mailer: Mailer::from_config(cfg)?,
            cfg: cfg.clone(),
            window: VecDeque::new(),
            told_no_server: false,
        })
    }

    /// How many more messages the rate limit allows now.
    fn allowance(&mut self) -> usize {
        let minute = Duration::from_secs(60);
        while self.window.front().is_some_and(|t| t.elapsed() >= minute) {
            self.window.pop_front();
        }
        (self.cfg.max_per_minute as usize).saturating_sub(self.window.len())
    }

    /// Sends what is due, within the rate limit; `stop` ends the pass between messages.
    pub fn pass(
        &mut self,
        clock: &crate::clock::Clock,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> rusqlite::Result<Pass> {
        let mut done = Pass::default();
        if self.mailer.is_none() {
            if !self.told_no_server {
                let waiting = self.db.read(store::counts)?.0;
                if waiting > 0 {
                    log::warn!(
                        "{waiting} email(s) wait in the outbox: set [smtp] host (and from) to send them"
                    );
                    self.told_no_server = true;
                }
            }
            return Ok(done);
        }
        let allowance = self.allowance();
        if allowance == 0 {
            return Ok(done);
        }
        let due = self
            .db
            .read(|tx| store::due(tx, clock.now_unix(), allowance.min(500) as i64))?;
        let Outbox {
            db,
            mailer,
            cfg,
            window,
            ..
        } = self;
        let Some(mailer) = mailer.as_ref() else {
            return Ok(done);
        };
        for _ in &due {
            window.push_back(Instant::now());
        }
        // A few connections at once: each message costs a mail server's round trips (and,
        // with lettre writing the final dot on its own, a delayed ACK), not our CPU.
        let lanes = CONNECTIONS.min(due.len().max(1));
        let mut queues: Vec<Vec<store::Message>> = (0..lanes).map(|_| Vec::new()).collect();
        for (i, m) in due.into_iter().enumerate() {
            queues[i % lanes].push(m);
        }
        let tally = std::sync::Mutex::new((Pass::default(), None::<rusqlite::Error>));
        let (db, cfg) = (&*db, &*cfg);
        std::thread::scope(|scope| {
            for queue in queues {
                let tally = &tally;
                scope.spawn(move || {
                    for m in queue {
                        if stop() {
                            break;
                        }
                        match send_one(db, mailer, cfg, clock, &m) {
                            Ok(Outcome::Sent) => lock(tally).0.sent += 1,
                            Ok(Outcome::Retried) => lock(tally).0.retried += 1,
                            Ok(Outcome::Failed) => lock(tally).0.failed += 1,
                            Err(e) => {
                                lock(tally).1 = Some(e);
                                break;
                            }
                        }
                    }
                });
            }
        });
        let (pass, error) = tally.into_inner().unwrap_or_else(|p| p.into_inner());
        done = pass;
        match error {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }
}

/// Messages sent at once, each over its own connection.
const CONNECTIONS: usize = 4;

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

enum Outcome {
    Sent,
    Retried,
    Failed,
}

/// Sends one message and records what happened.
fn send_one(
    db: &Db,
    mailer: &Mailer,
    cfg: &SmtpConfig,
    clock: &crate::clock::Clock,
    m: &store::Message,
) -> rusqlite::Result<Outcome> {
    let outcome = mailer.send(m);
    let at = clock.now_unix();
    let attempt = u32::try_from(m.attempts + 1).unwrap_or(u32::MAX);
    let retry_at = match &outcome {
        Err(f) if !f.permanent && attempt < cfg.max_attempts => {
            Some(at + backoff(cfg.retry_after, attempt).as_secs() as i64)
        }
        _ => None,
    };
    db.write(|tx| match &outcome {
        Ok(()) => store::mark_sent(tx, m.id, at),
        Err(f) => store::mark_attempt_failed(tx, m.id, &f.reason, retry_at),
    })?;
    Ok(match (outcome, retry_at) {
        (Ok(()), _) => {
            log::info!("email {} ({}) sent to {}", m.id, m.kind, m.recipient);
            Outcome::Sent
        }
        (Err(f), None) => {
            log::warn!(
                "email {} ({}) to {} failed after {attempt} attempt(s): {}",
                m.id,
                m.kind,
                m.recipient,
                f.reason
            );
            Outcome::Failed
        }
        (Err(f), Some(at)) => {
            log::warn!(
                "email {} ({}) to {} not sent, tried again at {}: {}",
                m.id,
                m.kind,
                m.recipient,
                crate::clock::rfc3339(at),
                f.reason
            );
            Outcome::Retried
        }
    })
}

/// Runs the outbox until `stop` is dropped: a pass every second (or sooner after a busy
/// one).
pub fn run(mut outbox: Outbox, clock: crate::clock::Clock, stop: mpsc::Receiver<()>) {
    let stop = std::sync::Mutex::new(stop);
    let stopped = std::sync::atomic::AtomicBool::new(false);
    loop {
        match lock(&stop).recv_timeout(Duration::from_secs(1)) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let check = || {
            if matches!(
                lock(&stop).try_recv(),
                Err(mpsc::TryRecvError::Disconnected) | Ok(())
            ) {
                stopped.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            stopped.load(std::sync::atomic::Ordering::Relaxed)
        };
        if let Err(e) = outbox.pass(&clock, &check) {
            crate::db::health::global().observe(&e);
            if !crate::db::health::global().reported() {
                log::error!("the outbox could not be processed: {e}");
            }
        }
        if stopped.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
    }
}
