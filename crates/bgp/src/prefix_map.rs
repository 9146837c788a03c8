//! A map keyed by IP prefix that answers "which stored prefixes cover this one?".
//!
//! Prefixes are kept in one hash map per address family and prefix length, keyed by the network
//! address's bits. A covering lookup masks the query to each shorter length that holds any entry
//! and probes that map: at most 33 probes for IPv4 and 129 for IPv6, usually far fewer, and no
//! pointer-chasing trie to keep balanced.

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A map from prefixes to `V`. Keys are stored truncated to their length (host bits cleared).
#[derive(Debug, Clone)]
pub(crate) struct PrefixMap<V> {
    v4: Vec<HashMap<u32, V>>,
    v6: Vec<HashMap<u128, V>>,
    len: usize,
}

impl<V> Default for PrefixMap<V> {
    fn default() -> Self {
        PrefixMap {
            v4: (0..=32).map(|_| HashMap::new()).collect(),
            v6: (0..=128).map(|_| HashMap::new()).collect(),
            len: 0,
        }
    }
}

fn mask4(bits: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        bits & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask6(bits: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - u32::from(len)))
    }
}

fn slot<'a, K: Hash + Eq, V>(
    map: &'a mut HashMap<K, V>,
    key: K,
    len: &mut usize,
    make: impl FnOnce() -> V,
) -> &'a mut V {
    match map.entry(key) {
        Entry::Occupied(e) => e.into_mut(),
        Entry::Vacant(e) => {
            *len += 1;
            e.insert(make())
        }
    }
}

fn net4(bits: u32, len: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new(Ipv4Addr::from(bits), len).expect("IPv4 prefix length is at most 32"))
}

fn net6(bits: u128, len: u8) -> IpNet {
    IpNet::V6(Ipv6Net::new(Ipv6Addr::from(bits), len).expect("IPv6 prefix length is at most 128"))
}

impl<V> PrefixMap<V> {
    /// An empty map.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Number of prefixes stored.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The value stored for exactly `prefix`.
    pub(crate) fn get(&self, prefix: &IpNet) -> Option<&V> {
        match prefix {
            IpNet::V4(p) => self.v4[usize::from(p.prefix_len())].get(&mask4(p.network().into(), p.prefix_len())),
            IpNet::V6(p) => self.v6[usize::from(p.prefix_len())].get(&mask6(p.network().into(), p.prefix_len())),
        }
    }

    /// The value stored for exactly `prefix`, for changing.
    pub(crate) fn get_mut(&mut self, prefix: &IpNet) -> Option<&mut V> {
        match prefix {
            IpNet::V4(p) => self.v4[usize::from(p.prefix_len())].get_mut(&mask4(p.network().into(), p.prefix_len())),
            IpNet::V6(p) => self.v6[usize::from(p.prefix_len())].get_mut(&mask6(p.network().into(), p.prefix_len())),
        }
    }

    /// The value for `prefix`, inserted with `make` first when absent.
    pub(crate) fn get_or_insert_with(&mut self, prefix: &IpNet, make: impl FnOnce() -> V) -> &mut V {
        match prefix {
            IpNet::V4(p) => slot(
                &mut self.v4[usize::from(p.prefix_len())],
                mask4(p.network().into(), p.prefix_len()),
                &mut self.len,
                make,
            ),
            IpNet::V6(p) => slot(
                &mut self.v6[usize::from(p.prefix_len())],
                mask6(p.network().into(), p.prefix_len()),
                &mut self.len,
                make,
            ),
        }
    }

    /// Removes and returns the value for exactly `prefix`.
    pub(crate) fn remove(&mut self, prefix: &IpNet) -> Option<V> {
        let removed = match prefix {
            IpNet::V4(p) => self.v4[usize::from(p.prefix_len())].remove(&mask4(p.network().into(), p.prefix_len())),
            IpNet::V6(p) => self.v6[usize::from(p.prefix_len())].remove(&mask6(p.network().into(), p.prefix_len())),
        };
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// Every stored prefix that equals or covers `prefix`, most specific first.
    pub(crate) fn covering<'a>(&'a self, prefix: &IpNet) -> impl Iterator<Item = (IpNet, &'a V)> + 'a {
        let (v4, v6) = match *prefix {
            IpNet::V4(p) => {
                let bits = u32::from(p.network());
                let found = (0..=p.prefix_len()).rev().filter_map(move |len| {
                    let map = &self.v4[usize::from(len)];
                    if map.is_empty() {
                        return None;
                    }
                    let key = mask4(bits, len);
                    map.get(&key).map(|v| (net4(key, len), v))
                });
                (Some(found), None)
            }
            IpNet::V6(p) => {
                let bits = u128::from(p.network());
                let found = (0..=p.prefix_len()).rev().filter_map(move |len| {
                    let map = &self.v6[usize::from(len)];
                    if map.is_empty() {
                        return None;
                    }
                    let key = mask6(bits, len);
                    map.get(&key).map(|v| (net6(key, len), v))
                });
                (None, Some(found))
            }
        };
        v4.into_iter().flatten().chain(v6.into_iter().flatten())
    }

    /// The most specific stored prefix that equals or covers `prefix`.
    pub(crate) fn longest_covering(&self, prefix: &IpNet) -> Option<(IpNet, &V)> {
        self.covering(prefix).next()
    }

    /// Every IPv4 entry, in no particular order.
    pub(crate) fn iter_v4(&self) -> impl Iterator<Item = (Ipv4Net, &V)> + '_ {
        self.v4.iter().enumerate().flat_map(|(len, map)| {
            let len = u8::try_from(len).expect("at most 32");
            map.iter()
                .map(move |(bits, v)| (Ipv4Net::new(Ipv4Addr::from(*bits), len).expect("valid length"), v))
        })
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (IpNet, &V)> + '_ {
        let v6 = self.v6.iter().enumerate().flat_map(|(len, map)| {
            let len = u8::try_from(len).expect("at most 128");
            map.iter().map(move |(bits, v)| (net6(*bits, len), v))
        });
        self.iter_v4().map(|(p, v)| (IpNet::V4(p), v)).chain(v6)
    }

    /// Every entry, for changing, in no particular order.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (IpNet, &mut V)> + '_ {
        let v4 = self.v4.iter_mut().enumerate().flat_map(|(len, map)| {
            let len = u8::try_from(len).expect("at most 32");
            map.iter_mut().map(move |(bits, v)| (net4(*bits, len), v))
        });
        let v6 = self.v6.iter_mut().enumerate().flat_map(|(len, map)| {
            let len = u8::try_from(len).expect("at most 128");
            map.iter_mut().map(move |(bits, v)| (net6(*bits, len), v))
        });
        v4.chain(v6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn covering_lookups_go_from_most_to_least_specific() {
        let mut m = PrefixMap::new();
        *m.get_or_insert_with(&p("10.0.0.0/8"), || 0) = 8;
        *m.get_or_insert_with(&p("10.1.0.0/16"), || 0) = 16;
        *m.get_or_insert_with(&p("10.1.2.0/24"), || 0) = 24;
        *m.get_or_insert_with(&p("2001:db8::/32"), || 0) = 32;
        assert_eq!(m.len(), 4);
        let found: Vec<_> = m
            .covering(&p("10.1.2.128/25"))
            .map(|(n, v)| (n.to_string(), *v))
            .collect();
        assert_eq!(
            found,
            [
                ("10.1.2.0/24".into(), 24),
                ("10.1.0.0/16".into(), 16),
                ("10.0.0.0/8".into(), 8)
            ]
        );
        assert_eq!(
            m.longest_covering(&p("10.1.3.0/24")).map(|(n, _)| n),
            Some(p("10.1.0.0/16"))
        );
        assert_eq!(m.longest_covering(&p("11.0.0.0/24")), None);
        assert_eq!(m.longest_covering(&p("2001:db8:1::/48")).map(|(_, v)| *v), Some(32));
        assert_eq!(m.get(&p("10.1.0.0/16")), Some(&16));
        assert_eq!(m.remove(&p("10.1.0.0/16")), Some(16));
        assert_eq!(m.len(), 3);
        assert_eq!(m.iter().count(), 3);
    }

    #[test]
    fn default_routes_and_ipv6_cover_what_they_should() {
        let mut m = PrefixMap::new();
        *m.get_or_insert_with(&p("0.0.0.0/0"), || 0) = 1;
        *m.get_or_insert_with(&p("::/0"), || 0) = 2;
        *m.get_or_insert_with(&p("2001:db8::/32"), || 0) = 3;
        *m.get_or_insert_with(&p("2001:db8:0:1::/64"), || 0) = 4;
        assert_eq!(
            m.longest_covering(&p("203.0.113.7/32")).map(|(n, v)| (n, *v)),
            Some((p("0.0.0.0/0"), 1))
        );
        let found: Vec<i32> = m.covering(&p("2001:db8:0:1::1/128")).map(|(_, v)| *v).collect();
        assert_eq!(found, [4, 3, 2]);
        // A shorter query is not covered by a longer entry, and families never mix.
        assert_eq!(m.longest_covering(&p("2001:db8::/16")).map(|(_, v)| *v), Some(2));
        assert_eq!(m.covering(&p("10.0.0.0/8")).count(), 1);
        assert_eq!(m.remove(&p("::/0")), Some(2));
        assert_eq!(m.remove(&p("::/0")), None);
        assert_eq!(m.len(), 3);
        assert_eq!(m.longest_covering(&p("2001:db9::/32")), None);
        *m.get_mut(&p("2001:db8::/32")).unwrap() = 30;
        assert_eq!(m.get(&p("2001:db8::/32")), Some(&30));
    }

    #[test]
    fn keys_ignore_host_bits() {
        let mut m = PrefixMap::new();
        *m.get_or_insert_with(&p("192.0.2.77/24"), || 0) = 1;
        assert_eq!(m.get(&p("192.0.2.0/24")), Some(&1));
        assert_eq!(m.iter().next().map(|(n, _)| n), Some(p("192.0.2.0/24")));
    }
}
