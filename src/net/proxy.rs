//! Trusted reverse proxies: when the peer of a connection is one of them, the client is
//! the rightmost address of `X-Forwarded-For` that is not a trusted proxy itself (each
//! proxy appends the address it saw; only the part our own proxies wrote is believed).
//! Everywhere else the header is ignored, so no client can choose its address.

use std::net::IpAddr;

pub use crate::cidr::Cidr;

/// The client behind `peer`: `peer` itself unless it is a trusted proxy, else the
/// rightmost `X-Forwarded-For` entry (over all such headers, in order) that is not a
/// trusted proxy. An entry that is not an address ends the walk at the last good one.
pub fn client(peer: IpAddr, forwarded_for: &[&str], trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    let entries = forwarded_for.iter().flat_map(|h| h.split(','));
    for entry in entries.collect::<Vec<_>>().into_iter().rev() {
        let Some(ip) = address(entry) else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]`, or either with a port.
fn address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse() {
        return Some(ip);
    }
    if let Ok(sock) = entry.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .and_then(|e| e.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn blocks_contain_what_they_should() {
        let lan = Cidr::parse("10.0.0.0/8").expect("cidr");
        assert!(lan.contains(ip("10.200.1.2")));
        assert!(lan.contains(ip("::ffff:10.1.1.1")));
        assert!(!lan.contains(ip("11.0.0.1")));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .expect("all")
                .contains(ip("8.8.8.8"))
        );
        let one = Cidr::parse("2001:db8::1").expect("one");
        assert!(one.contains(ip("2001:db8::1")) && !one.contains(ip("2001:db8::2")));
        for bad in ["10.0.0.0/33", "nope", "10.0.0.0/x", "::/129"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_trusted_peer_is_believed_and_only_for_what_trusted_proxies_appended() {
        let trusted = [Cidr::parse("127.0.0.1").expect("cidr")];
        // A direct client cannot choose its address.
        assert_eq!(
            client(ip("192.0.2.9"), &["203.0.113.5"], &trusted),
            ip("192.0.2.9")
        );
        // Behind the proxy: the address the proxy saw, not what the client prepended.
        assert_eq!(
            client(ip("127.0.0.1"), &["6.6.6.6, 198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        // Several headers are one list, in order.
        assert_eq!(
            client(ip("127.0.0.1"), &["6.6.6.6", "198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        // Chains of trusted proxies are walked through; ports and brackets are fine.
        let two = [
            Cidr::parse("127.0.0.1").expect("a"),
            Cidr::parse("10.0.0.0/8").expect("b"),
        ];
        assert_eq!(
            client(ip("127.0.0.1"), &["[2001:db8::7]:443, 10.1.2.3"], &two),
            ip("2001:db8::7")
        );
        // Garbage stops the walk at the last address our proxies vouched for.
        assert_eq!(
            client(ip("127.0.0.1"), &["198.51.100.7, garbage"], &trusted),
            ip("127.0.0.1")
        );
        // No header: the proxy itself.
        assert_eq!(client(ip("127.0.0.1"), &[], &trusted), ip("127.0.0.1"));
    }
}
