//! File descriptors: the process limit, raised to the hard limit at start, and the plan
//! that keeps client connections, the inner pool and the database within it.
//!
//! Running out is survivable at the gatekeeper (it refuses and retries) but not inside
//! tiny_http, whose accept thread panics or stops on `EMFILE`. So the gatekeeper never
//! holds more client connections than leave room for everything else.

use std::io;

/// Descriptors one upstream connection costs: the gatekeeper's end, tiny_http's accepted
/// socket and the clone it makes of it, the database reader (file and WAL) the request it
/// carries may hold, and one for a connection being replaced while the old one closes.
pub const PER_UPSTREAM: usize = 6;

/// Held back for what opens descriptors outside the connection count: a backup (its
/// connection, the copy and its journal, the integrity check of the copy), an IdP
/// metadata fetch (socket, DNS, CA file), SQLite's temporary files, the housekeeping
/// reader, the gatekeeper's accept-and-refuse spare and a connection accepted only to be
/// refused.
pub const RESERVED: usize = 24;

/// The most stored files sent at once (downloads beyond wait with a 503 and Retry-After).
pub const MAX_FILE_STREAMS: usize = 64;

/// Below this many client connections seatgate is not worth starting.
const MIN_CONNECTIONS: usize = 8;

/// How the descriptors are shared out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdPlan {
    /// The soft limit seatgate runs with.
    pub limit: usize,
    /// Open when the plan was made (listeners, database, pipes, standard streams).
    pub in_use: usize,
    /// Upstream connections to the inner server (at most the app threads).
    pub upstream: usize,
    /// Client connections the gatekeeper admits at once.
    pub max_connections: usize,
    /// Stored files the gatekeeper sends at once (each holds a descriptor besides its
    /// connection's); carved out of the connections' share.
    pub file_streams: usize,
}

impl FdPlan {
    /// Shares `limit - in_use - RESERVED` between the inner pool (at most a quarter,
    /// at least one connection, at most `workers`) and client connections (at most
    /// `configured`).
    pub fn new(
        limit: usize,
        in_use: usize,
        workers: usize,
        configured: usize,
    ) -> Result<FdPlan, String> {
        let available = limit.saturating_sub(in_use + RESERVED);
        let upstream = (available / 4 / PER_UPSTREAM).clamp(1, workers.max(1));
        let room = available.saturating_sub(upstream * PER_UPSTREAM);
        let needed = in_use + RESERVED + PER_UPSTREAM + MIN_CONNECTIONS;
        if room < MIN_CONNECTIONS {
            return Err(format!(
                "the open file limit ({limit}) is too low: seatgate needs at least {needed}; raise it (ulimit -n, or the service's file limit)"
            ));
        }
        let file_streams = (room / 5).clamp(1, MAX_FILE_STREAMS);
        Ok(FdPlan {
            limit,
            in_use,
            upstream,
            max_connections: (room - file_streams).min(configured),
            file_streams,
        })
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (on macOS at most `OPEN_MAX`, which
/// is all `setrlimit` accepts there). Returns the limit now in force and the one before.
pub fn raise_limit() -> io::Result<(usize, usize)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = lim.rlim_cur;
    // 10240 is macOS's OPEN_MAX, the most it takes for an unlimited hard limit.
    for target in [lim.rlim_max, lim.rlim_max.min(10240)] {
        if target <= before {
            break;
        }
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a valid rlimit; a refused value changes nothing.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Ok((as_count(target), as_count(before)));
        }
    }
    Ok((as_count(before), as_count(before)))
}

fn as_count(n: libc::rlim_t) -> usize {
    // Unlimited or absurd limits are planned as a million, which no table here reaches.
    usize::try_from(n).unwrap_or(usize::MAX).min(1 << 20)
}

/// Descriptors open now (`/proc/self/fd` on Linux, `/dev/fd` on macOS), not counting the
/// directory handle used to list them.
pub fn open_count() -> io::Result<usize> {
    let dir = if cfg!(target_os = "linux") {
        "/proc/self/fd"
    } else {
        "/dev/fd"
    };
    Ok(std::fs::read_dir(dir)?.count().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_limit_shrinks_the_pool_and_the_connection_cap() {
        let p = FdPlan::new(64, 20, 8, 1024).expect("fits");
        assert_eq!(p.upstream, 1);
        let room = 64 - 20 - RESERVED - PER_UPSTREAM;
        assert_eq!(
            (p.max_connections, p.file_streams),
            (room - room / 5, room / 5)
        );
        let p = FdPlan::new(256, 20, 8, 1024).expect("fits");
        assert_eq!(p.upstream, 8);
        let room = 256 - 20 - RESERVED - 8 * PER_UPSTREAM;
        assert_eq!(
            (p.max_connections, p.file_streams),
            (room - room / 5, room / 5)
        );
    }

    #[test]
    fn a_high_limit_keeps_the_configured_cap() {
        let p = FdPlan::new(1 << 20, 20, 8, 1024).expect("fits");
        assert_eq!((p.upstream, p.max_connections), (8, 1024));
        assert_eq!(p.file_streams, MAX_FILE_STREAMS);
        let total =
            p.in_use + RESERVED + p.upstream * PER_UPSTREAM + p.max_connections + p.file_streams;
        assert!(total <= p.limit);
    }

    #[test]
    fn too_low_a_limit_is_refused_with_what_is_needed() {
        let e = FdPlan::new(40, 20, 8, 1024).expect_err("too low");
        assert!(e.contains("at least 58"), "{e}");
    }
}
