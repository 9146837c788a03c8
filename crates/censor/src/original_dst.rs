//! Where a redirected connection was going: `getsockopt(SO_ORIGINAL_DST)` (IPv4) or
//! `getsockopt(IP6T_SO_ORIGINAL_DST)` (IPv6), which netfilter answers for connections it NATed
//! (our lab's `nft … redirect`). Read through rustix's safe wrappers (`rustix::net::sockopt::
//! ip_original_dst` / `ipv6_original_dst`) because the workspace forbids `unsafe` and rustix is
//! already a dependency; `nix` or `libc` would need the same syscall behind an `unsafe` block.

use std::net::{SocketAddr, SocketAddrV4};

use tokio::net::TcpStream;

/// The destination the client asked for before netfilter redirected it to us; `None` when the
/// connection was not redirected (no conntrack NAT entry, or the "original" destination is our
/// own address, which would make the proxy connect to itself).
pub fn original_destination(stream: &TcpStream) -> Option<SocketAddr> {
    let local = stream.local_addr().ok()?;
    let original = match local {
        SocketAddr::V4(_) => rustix::net::sockopt::ip_original_dst(stream).ok().map(SocketAddr::V4),
        SocketAddr::V6(v6) if v6.ip().to_ipv4_mapped().is_some() => {
            // An IPv4 client on a dual-stack socket: netfilter tracked it as IPv4.
            rustix::net::sockopt::ip_original_dst(stream)
                .ok()
                .map(|v4: SocketAddrV4| SocketAddr::V4(v4))
        }
        SocketAddr::V6(_) => rustix::net::sockopt::ipv6_original_dst(stream).ok().map(SocketAddr::V6),
    };
    original.filter(|dst| !same_endpoint(*dst, local))
}

/// Equal, treating an IPv4-mapped IPv6 address as the IPv4 one.
fn same_endpoint(a: SocketAddr, b: SocketAddr) -> bool {
    let canonical = |s: SocketAddr| (s.ip().to_canonical(), s.port());
    canonical(a) == canonical(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_plain_loopback_connection_has_no_original_destination() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        assert_eq!(original_destination(&server), None);
    }

    #[test]
    fn mapped_addresses_are_the_same_endpoint() {
        let v4: SocketAddr = "10.0.0.1:443".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:443".parse().unwrap();
        assert!(same_endpoint(v4, mapped));
        assert!(!same_endpoint(v4, "10.0.0.1:80".parse().unwrap()));
    }
}
