//! Visible IPv4 /24 blocks per origin AS.
//!
//! The rule, close to the one IODA's BGP signal uses (a /24 counts when most full-feed peers can
//! reach it):
//!
//! 1. A prefix of length /24 or shorter is *visible* from origin O when more than half of the
//!    peers that reported on the prefix (announced or withdrew it; a RIB entry counts as an
//!    announcement) currently route it to O. Without a RIB dump, peers that have not said
//!    anything about a prefix since the data began are not counted either way, so the count is
//!    over the prefixes the input touched.
//! 2. Each /24 block goes to the most specific visible prefix covering it (longest match, as a
//!    router would forward), and counts for that prefix's origin. Prefixes longer than /24 and
//!    IPv6 prefixes are not counted.

use crate::routes::{Routes, Slot, is_origin};
use std::collections::HashMap;

/// Visible /24 blocks per origin AS; origins with none are absent.
pub(crate) fn slash24_by_origin(routes: &Routes) -> HashMap<u32, u64> {
    let mut visible: Vec<(u32, u8, u32)> = Vec::new();
    let mut scratch = Vec::with_capacity(64);
    for (net, slots) in routes.iter_v4() {
        if net.prefix_len() > 24 {
            continue;
        }
        if let Some(origin) = majority_origin(slots, &mut scratch) {
            visible.push((u32::from(net.network()), net.prefix_len(), origin));
        }
    }
    visible.sort_unstable();

    // Sorted by start address and then length, a covering prefix comes before everything inside
    // it. The stack holds the chain of visible prefixes covering the current one; each prefix
    // takes its /24s from the nearest one covering it.
    let mut counts: HashMap<u32, i64> = HashMap::new();
    let mut stack: Vec<(u64, u32)> = Vec::new(); // (last address, origin)
    for (start, len, origin) in visible {
        while stack.last().is_some_and(|&(last, _)| last < u64::from(start)) {
            stack.pop();
        }
        let blocks = 1i64 << (24 - len);
        if let Some(&(_, outer)) = stack.last() {
            *counts.entry(outer).or_default() -= blocks;
        }
        *counts.entry(origin).or_default() += blocks;
        stack.push((u64::from(start) + (1u64 << (32 - len)) - 1, origin));
    }
    counts
        .into_iter()
        .filter_map(|(origin, n)| u64::try_from(n).ok().filter(|&n| n > 0).map(|n| (origin, n)))
        .collect()
}

/// The origin more than half of the reporting peers route this prefix to, if any. `scratch` is
/// reused between calls.
fn majority_origin(slots: &[Slot], scratch: &mut Vec<u32>) -> Option<u32> {
    scratch.clear();
    let mut reporters = 0usize;
    let mut previous: Option<&Slot> = None;
    for slot in slots {
        let same_peer = previous.is_some_and(|p| p.peer == slot.peer);
        if !same_peer {
            reporters += 1;
        }
        // With ADD-PATH a peer can hold several paths from the same origin: count it once.
        if is_origin(slot.origin) && !(same_peer && previous.is_some_and(|p| p.origin == slot.origin)) {
            scratch.push(slot.origin);
        }
        previous = Some(slot);
    }
    scratch.sort_unstable();
    let (mut best, mut best_count) = (0, 0);
    for run in scratch.chunk_by(|a, b| a == b) {
        if run.len() > best_count {
            (best, best_count) = (run[0], run.len());
        }
    }
    (best_count * 2 > reporters).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{NO_ROUTE, Slots, set};

    fn put(routes: &mut Routes, prefix: &str, peer: u32, origin: u32) {
        set(
            routes.get_or_insert_with(&prefix.parse().unwrap(), Slots::new),
            peer,
            0,
            origin,
        );
    }

    #[test]
    fn counts_blocks_by_longest_match_among_majority_routes() {
        let mut routes = Routes::new();
        for peer in 0..3 {
            put(&mut routes, "10.0.0.0/22", peer, 100); // 4 blocks
            put(&mut routes, "10.0.1.0/24", peer, 200); // taken from the /22
        }
        // Seen by one peer of three: not visible, so the /22 keeps 10.0.2.0/24.
        put(&mut routes, "10.0.2.0/24", 0, 300);
        put(&mut routes, "10.0.2.0/24", 1, NO_ROUTE);
        put(&mut routes, "10.0.2.0/24", 2, NO_ROUTE);
        // Too specific to count.
        put(&mut routes, "10.0.3.0/25", 0, 400);
        // IPv6 is not counted.
        put(&mut routes, "2001:db8::/32", 0, 500);
        let counts = slash24_by_origin(&routes);
        assert_eq!(counts.get(&100), Some(&3));
        assert_eq!(counts.get(&200), Some(&1));
        assert_eq!(counts.len(), 2, "{counts:?}");
    }

    #[test]
    fn majority_needs_more_than_half_of_reporting_peers() {
        let mut routes = Routes::new();
        put(&mut routes, "192.0.2.0/24", 0, 7);
        put(&mut routes, "192.0.2.0/24", 1, 8);
        assert!(slash24_by_origin(&routes).is_empty());
        put(&mut routes, "192.0.2.0/24", 2, 7);
        assert_eq!(slash24_by_origin(&routes).get(&7), Some(&1));
    }
}
