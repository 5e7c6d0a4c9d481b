//! The generator only ever loads a broker on this machine unless told otherwise.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::BenchError;

/// Accepts `target` when it is in 127.0.0.0/8 or `::1`, or when `allow_non_loopback` is set.
///
/// A load generator pointed at someone else's broker is a denial-of-service tool; refusing by
/// default makes that a deliberate act rather than a typo.
///
/// ```
/// use mqgate_bench::check_target;
/// assert!(check_target("127.0.0.2:1883".parse().unwrap(), false).is_ok());
/// assert!(check_target("[::1]:1883".parse().unwrap(), false).is_ok());
/// assert!(check_target("10.0.0.1:1883".parse().unwrap(), false).is_err());
/// assert!(check_target("10.0.0.1:1883".parse().unwrap(), true).is_ok());
/// ```
pub fn check_target(target: SocketAddr, allow_non_loopback: bool) -> Result<(), BenchError> {
    if allow_non_loopback || target.ip().is_loopback() {
        Ok(())
    } else {
        Err(BenchError::NotLoopback(target))
    }
}

/// Connections per loopback source address before the next one is used.
///
/// One source address has about 28 k ephemeral ports towards one destination; spreading large
/// runs over 127.0.0.1, .2, .3 ... keeps far away from that limit.
pub const CONNECTIONS_PER_SOURCE: usize = 10_000;

/// The local address connection `index` binds to, when the target is IPv4 loopback and
/// `total` connections are opened; `None` lets the kernel choose.
///
/// ```
/// use mqgate_bench::source_address;
/// let target = "127.0.0.1:1883".parse().unwrap();
/// assert_eq!(source_address(target, 5, 100), None);
/// assert_eq!(source_address(target, 25_000, 30_000), Some("127.0.0.3:0".parse().unwrap()));
/// ```
pub fn source_address(target: SocketAddr, index: usize, total: usize) -> Option<SocketAddr> {
    let IpAddr::V4(ip) = target.ip() else {
        return None;
    };
    if !ip.is_loopback() || total <= CONNECTIONS_PER_SOURCE {
        return None;
    }
    // 127.0.0.1 ..= 127.0.0.254, wrapping: never .0 or .255.
    let host = 1 + (index / CONNECTIONS_PER_SOURCE) % 254;
    let host = u8::try_from(host).unwrap_or(1);
    Some(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)),
        0,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_table() {
        let cases = [
            ("127.0.0.1:1", true),
            ("127.255.0.9:1", true),
            ("[::1]:1", true),
            ("128.0.0.1:1", false),
            ("0.0.0.0:1", false),
            ("[::]:1", false),
            ("192.168.1.1:1883", false),
        ];
        for (addr, ok) in cases {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(check_target(addr, false).is_ok(), ok, "{addr}");
            assert!(check_target(addr, true).is_ok());
        }
    }

    #[test]
    fn sources_spread_and_stay_loopback() {
        let target: SocketAddr = "127.0.0.1:1883".parse().unwrap();
        let total = 3 * CONNECTIONS_PER_SOURCE;
        let first = source_address(target, 0, total).unwrap();
        let last = source_address(target, total - 1, total).unwrap();
        assert_ne!(first.ip(), last.ip());
        assert!(first.ip().is_loopback() && last.ip().is_loopback());
        assert_eq!(source_address("[::1]:1".parse().unwrap(), 0, total), None);
    }
}
