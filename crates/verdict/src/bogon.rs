//! Bogon addresses: answers a resolver should never give for a public website (private, loopback,
//! link-local, carrier-grade NAT, documentation, reserved, multicast). Censors answer with them to
//! make a name unreachable (OONI's `dns_bogon_error`, x_dns_flags bit 1).
//!
//! Ranges: IANA IPv4/IPv6 Special-Purpose Address Registries (RFC 6890 and updates).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is a bogon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BogonKind {
    /// 0.0.0.0/8, `::`.
    Unspecified,
    /// 127.0.0.0/8, `::1`.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, fc00::/7.
    Private,
    /// 100.64.0.0/10.
    SharedCgnat,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32.
    Documentation,
    /// 198.18/15.
    Benchmarking,
    /// 224/4, ff00::/8.
    Multicast,
    /// 240/4, 192.0.0/24, 255.255.255.255, 100::/64 and other reserved space.
    Reserved,
}

impl BogonKind {
    /// Words for a reason sentence.
    pub fn describe(self) -> &'static str {
        match self {
            BogonKind::Unspecified => "an unspecified address",
            BogonKind::Loopback => "a loopback address",
            BogonKind::Private => "a private address",
            BogonKind::SharedCgnat => "a carrier-grade NAT address",
            BogonKind::LinkLocal => "a link-local address",
            BogonKind::Documentation => "a documentation address",
            BogonKind::Benchmarking => "a benchmarking address",
            BogonKind::Multicast => "a multicast address",
            BogonKind::Reserved => "a reserved address",
        }
    }
}

/// Classifies `ip`; `None` for a routable public address.
pub fn bogon_kind(ip: IpAddr) -> Option<BogonKind> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

/// Whether `ip` is a bogon.
pub fn is_bogon(ip: IpAddr) -> bool {
    bogon_kind(ip).is_some()
}

/// Whether the text is an IP address that is a bogon (text that is not an IP is not a bogon).
pub fn is_bogon_str(ip: &str) -> bool {
    ip.parse::<IpAddr>().is_ok_and(is_bogon)
}

fn v4_kind(ip: Ipv4Addr) -> Option<BogonKind> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => BogonKind::Unspecified,
        (127, _, _) => BogonKind::Loopback,
        (10, _, _) => BogonKind::Private,
        (172, 16..=31, _) => BogonKind::Private,
        (192, 168, _) => BogonKind::Private,
        (100, 64..=127, _) => BogonKind::SharedCgnat,
        (169, 254, _) => BogonKind::LinkLocal,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => BogonKind::Documentation,
        (198, 18..=19, _) => BogonKind::Benchmarking,
        (224..=239, _, _) => BogonKind::Multicast,
        (240..=255, _, _) | (192, 0, 0) => BogonKind::Reserved,
        _ => return None,
    })
}

fn v6_kind(ip: Ipv6Addr) -> Option<BogonKind> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_kind(v4);
    }
    let s = ip.segments();
    Some(match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => BogonKind::Unspecified,
        [0, 0, 0, 0, 0, 0, 0, 1] => BogonKind::Loopback,
        [0x2001, 0x0db8, ..] => BogonKind::Documentation,
        [0x0100, 0, 0, 0, ..] => BogonKind::Reserved,
        [x, ..] if x & 0xfe00 == 0xfc00 => BogonKind::Private,
        [x, ..] if x & 0xffc0 == 0xfe80 => BogonKind::LinkLocal,
        [x, ..] if x & 0xff00 == 0xff00 => BogonKind::Multicast,
        // Everything outside 2000::/3 (global unicast) is unallocated or special.
        [x, ..] if x & 0xe000 != 0x2000 => BogonKind::Reserved,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Option<BogonKind> {
        bogon_kind(s.parse().unwrap())
    }

    #[test]
    fn v4_ranges() {
        assert_eq!(kind("10.10.34.35"), Some(BogonKind::Private));
        assert_eq!(kind("127.0.0.1"), Some(BogonKind::Loopback));
        assert_eq!(kind("172.31.255.255"), Some(BogonKind::Private));
        assert_eq!(kind("172.32.0.1"), None);
        assert_eq!(kind("100.64.0.1"), Some(BogonKind::SharedCgnat));
        assert_eq!(kind("100.128.0.1"), None);
        assert_eq!(kind("169.254.1.1"), Some(BogonKind::LinkLocal));
        assert_eq!(kind("0.0.0.0"), Some(BogonKind::Unspecified));
        assert_eq!(kind("255.255.255.255"), Some(BogonKind::Reserved));
        assert_eq!(kind("224.0.0.1"), Some(BogonKind::Multicast));
        assert_eq!(kind("93.184.216.34"), None);
        assert_eq!(kind("203.82.48.83"), None);
    }

    #[test]
    fn v6_ranges() {
        assert_eq!(kind("::1"), Some(BogonKind::Loopback));
        assert_eq!(kind("fd00::1"), Some(BogonKind::Private));
        assert_eq!(kind("fe80::1"), Some(BogonKind::LinkLocal));
        assert_eq!(kind("2001:db8::1"), Some(BogonKind::Documentation));
        assert_eq!(kind("::ffff:10.0.0.1"), Some(BogonKind::Private));
        assert_eq!(kind("2606:4700::6810:84e5"), None);
        assert!(is_bogon_str("::"));
        assert!(!is_bogon_str("not an ip"));
    }
}
