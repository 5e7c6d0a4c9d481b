//! The process's open-file limit, which bounds how many connections the broker can hold: every
//! connection is a file descriptor, and so are the store's files and the listeners.

/// Descriptors kept out of the connection budget besides the HTTP API's own connections: the
/// store's files, the listeners, the RocketMQ client's sockets, log files and what an embedding
/// program opens.
pub(crate) const RESERVE: u64 = 128;

/// The soft open-file limit in force: `None` when it cannot be read, `Some(u64::MAX)` when
/// unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FdLimit {
    pub(crate) soft: Option<u64>,
}

impl FdLimit {
    /// The limit now.
    pub(crate) fn current() -> Self {
        FdLimit { soft: soft_limit() }
    }

    /// Connections the broker may hold when the configuration does not say: the soft limit
    /// less [`RESERVE`] and the HTTP API's connections, but never less than half the limit;
    /// `fallback` when the limit cannot be read or is unlimited.
    pub(crate) fn max_connections(&self, http_connections: usize, fallback: usize) -> usize {
        let Some(soft) = self.soft.filter(|&soft| soft != u64::MAX) else {
            return fallback;
        };
        let reserve = RESERVE.saturating_add(http_connections as u64);
        let budget = soft.saturating_sub(reserve).max(soft / 2).max(1);
        usize::try_from(budget).unwrap_or(usize::MAX)
    }
}

/// Raises the process's soft open-file limit to its hard limit, as servers that hold many
/// sockets do (the `mqgate` binary calls it before it starts the broker; a library user
/// decides for their own process). Returns the soft limit before and after.
///
/// ```
/// let (before, after) = mqgate_broker::raise_open_file_limit()?;
/// assert!(after >= before);
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// The operating system refused to change the limit (or, off Unix, has no such limit).
pub fn raise_open_file_limit() -> std::io::Result<(u64, u64)> {
    raise()
}

#[cfg(unix)]
fn soft_limit() -> Option<u64> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    Some(limit.current.unwrap_or(u64::MAX))
}

#[cfg(unix)]
fn raise() -> std::io::Result<(u64, u64)> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let before = limit.current.unwrap_or(u64::MAX);
    let after = limit.maximum.unwrap_or(u64::MAX);
    if after > before {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        setrlimit(Resource::Nofile, raised).map_err(std::io::Error::from)?;
        return Ok((before, after));
    }
    Ok((before, before))
}

#[cfg(not(unix))]
fn soft_limit() -> Option<u64> {
    None
}

#[cfg(not(unix))]
fn raise() -> std::io::Result<(u64, u64)> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "no open-file limit to raise on this platform",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(soft: u64) -> FdLimit {
        FdLimit { soft: Some(soft) }
    }

    #[test]
    fn the_budget_is_the_limit_less_the_reserve_and_the_http_connections() {
        assert_eq!(
            at(1_048_576).max_connections(256, 10),
            1_048_576 - 128 - 256
        );
        assert_eq!(at(20_000).max_connections(0, 10), 20_000 - 128);
    }

    #[test]
    fn a_small_limit_still_leaves_half_of_it_to_connections() {
        assert_eq!(at(256).max_connections(256, 10), 128);
        assert_eq!(at(1).max_connections(0, 10), 1);
    }

    #[test]
    fn an_unknown_or_unlimited_limit_falls_back() {
        let unknown = FdLimit { soft: None };
        assert_eq!(unknown.max_connections(0, 10_000), 10_000);
        assert_eq!(at(u64::MAX).max_connections(0, 10_000), 10_000);
    }

    #[cfg(unix)]
    #[test]
    fn raising_reaches_the_hard_limit_and_current_reads_it() {
        let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
        let (before, after) = raise_open_file_limit().unwrap();
        assert!(after >= before, "{before} -> {after}");
        assert_eq!(after, hard.unwrap_or(u64::MAX));
        assert_eq!(FdLimit::current().soft, Some(after));
    }
}
