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
/// Runs that open many connections one after another leave tens of thousands of client ports
/// in TIME_WAIT, and one source address has only about 28 k ephemeral ports: spreading every
/// run over 127.0.0.x, starting at an address that changes from run to run, keeps the kernel
/// from running out of ports (EADDRINUSE) or searching long for a free one.
pub const CONNECTIONS_PER_SOURCE: usize = 1_000;

/// The local address connection `index` of a run binds to when the target is IPv4 loopback;
/// `None` (the kernel chooses) for other targets. `salt` picks the run's first address.
///
/// ```
/// use mqgate_bench::source_address;
/// let target = "127.0.0.1:1883".parse().unwrap();
/// assert_eq!(source_address(target, 2_500, 0), Some("127.0.0.3:0".parse().unwrap()));
/// assert_eq!(source_address(target, 0, 253), Some("127.0.0.254:0".parse().unwrap()));
/// assert_eq!(source_address("[::1]:1883".parse().unwrap(), 0, 0), None);
/// ```
pub fn source_address(target: SocketAddr, index: usize, salt: usize) -> Option<SocketAddr> {
    let IpAddr::V4(ip) = target.ip() else {
        return None;
    };
    if !ip.is_loopback() {
        return None;
    }
    // 127.0.0.1 ..= 127.0.0.254, wrapping: never .0 or .255.
    let host = 1 + (salt % 254 + (index / CONNECTIONS_PER_SOURCE) % 254) % 254;
    let host = u8::try_from(host).unwrap_or(1);
    Some(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)),
        0,
    ))
}

/// A run's `salt` for [`source_address`]: differs between consecutive processes.
pub fn source_salt() -> usize {
    std::process::id() as usize
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
        for salt in [0, 1, 253, 254, usize::MAX] {
            let first = source_address(target, 0, salt).unwrap();
            let last = source_address(target, 3 * CONNECTIONS_PER_SOURCE - 1, salt).unwrap();
            assert_ne!(first.ip(), last.ip());
            for addr in [first, last] {
                let IpAddr::V4(ip) = addr.ip() else { panic!() };
                assert!(ip.is_loopback() && ip.octets()[3] != 0 && ip.octets()[3] != 255);
            }
        }
        assert_eq!(source_address("[::1]:1".parse().unwrap(), 0, 0), None);
        assert_eq!(source_address("10.0.0.1:1".parse().unwrap(), 0, 0), None);
    }
}
