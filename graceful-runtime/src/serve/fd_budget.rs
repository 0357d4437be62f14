//! The default of `serve`'s `max_connections`: below the process's limit of open files, less a
//! reserve, so that connections alone never fill the file-descriptor table and the health port,
//! a database pool and the hooks still get the descriptors they open while `serve` is saturated.

use std::sync::OnceLock;

use crate::log::event;

/// The default where no limit can be read (not Unix), or where the limit leaves room for more.
pub(crate) const WITHOUT_LIMIT: usize = 10_000;

/// The fewest descriptors kept back from connections: the process's own (stdio, the runtime's
/// epoll and wakers, the listeners, the signal pipe), a health probe or two, a pool, the hooks.
const MIN_RESERVE: u64 = 64;

/// What a soft limit of `soft` open files leaves for connections, and the reserve kept back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Budget {
    connections: usize,
    reserve: u64,
}

/// The limit less a reserve of a tenth or [`MIN_RESERVE`], whichever is larger; at least 1 (a
/// service that cannot take one connection is of no use), at most [`WITHOUT_LIMIT`].
fn budget(soft: u64) -> Budget {
    let reserve = (soft / 10).max(MIN_RESERVE);
    let connections = soft.saturating_sub(reserve).max(1);
    Budget {
        connections: usize::try_from(connections)
            .unwrap_or(usize::MAX)
            .min(WITHOUT_LIMIT),
        reserve,
    }
}

/// `max_connections` when none was set: read from the soft `RLIMIT_NOFILE` once per process,
/// and logged then if the limit lowered it below [`WITHOUT_LIMIT`].
pub(crate) fn default_max_connections() -> usize {
    static CHOSEN: OnceLock<usize> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let Some(soft) = soft_file_limit() else {
            return WITHOUT_LIMIT;
        };
        let Budget {
            connections,
            reserve,
        } = budget(soft);
        if connections < WITHOUT_LIMIT {
            event!(
                Info,
                "serve: at most {connections} connections at once (max_connections), more wait in \
                 the kernel's queue: the limit of open files is {soft} (ulimit -n), and {reserve} \
                 are kept for the health port, a database pool and the hooks; raise the limit or \
                 set .max_connections(n) to change it"
            );
        }
        connections
    })
}

/// The soft limit of open files, if there is one.
#[cfg(unix)]
fn soft_file_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, Resource, RLIM_INFINITY};
    let (soft, _hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft == RLIM_INFINITY {
        return None;
    }
    // `rlim_t` is u64 on Linux, but not on every Unix.
    #[allow(clippy::useless_conversion)]
    u64::try_from(soft).ok()
}

#[cfg(not(unix))]
fn soft_file_limit() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_a_tenth_of_the_limit_or_64_whichever_is_larger() {
        let connections = |soft| budget(soft).connections;
        // 64 is the larger reserve up to 640 descriptors.
        assert_eq!(
            budget(256),
            Budget {
                connections: 192,
                reserve: 64
            }
        );
        assert_eq!(connections(640), 576);
        // A tenth above it: systemd's and most shells' default of 1024.
        assert_eq!(
            budget(1024),
            Budget {
                connections: 922,
                reserve: 102
            }
        );
        assert_eq!(connections(4096), 3687);
        // Never more than without a limit: 11,112 - 1,111 = 10,001.
        assert_eq!(connections(11_112), WITHOUT_LIMIT);
        assert_eq!(connections(1 << 20), WITHOUT_LIMIT);
        assert_eq!(connections(u64::MAX), WITHOUT_LIMIT);
        // Never below one, however low the limit.
        assert_eq!(connections(65), 1);
        assert_eq!(connections(64), 1);
        assert_eq!(connections(0), 1);
    }

    #[cfg(unix)]
    #[test]
    fn the_default_follows_this_process_limit() {
        let expected = soft_file_limit().map_or(WITHOUT_LIMIT, |soft| budget(soft).connections);
        assert_eq!(default_max_connections(), expected);
        assert!((1..=WITHOUT_LIMIT).contains(&expected));
    }
}
