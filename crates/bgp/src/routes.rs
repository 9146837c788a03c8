//! The collector's view of every peer's routing table, stored by prefix.
//!
//! A per-peer table (peer → prefix → origin) is kept transposed: each prefix holds one small
//! sorted list of slots, one per peer (and ADD-PATH path id) that has said anything about it.
//! That makes the questions the monitor asks on every update — how many peers carry this prefix
//! from this origin, was this the first, is it the last — a scan of a few dozen slots, and costs
//! 12 bytes per peer and prefix. A withdrawal leaves a slot saying "no route", so the peers that
//! reported on a prefix can be told from those that never did (see [`crate::visibility`]).

use crate::prefix_map::PrefixMap;
use ipnet::IpNet;

/// No route: the peer withdrew the prefix.
pub(crate) const NO_ROUTE: u32 = 0;
/// A route whose origin cannot be told (empty path, or an AS_SET of several ASes at the end).
/// AS 4294967295 is reserved (RFC 7300) and never originates a route.
pub(crate) const UNKNOWN_ORIGIN: u32 = u32::MAX;

/// Whether `origin` names a real AS (not [`NO_ROUTE`] or [`UNKNOWN_ORIGIN`]).
pub(crate) fn is_origin(origin: u32) -> bool {
    origin != NO_ROUTE && origin != UNKNOWN_ORIGIN
}

/// What one peer (one path of it, with ADD-PATH) has for one prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Index into the monitor's peer list.
    pub(crate) peer: u32,
    /// ADD-PATH path id, 0 without.
    pub(crate) path_id: u32,
    /// The route's origin AS, [`NO_ROUTE`] or [`UNKNOWN_ORIGIN`].
    pub(crate) origin: u32,
}

/// The slots of one prefix, sorted by (peer, path id).
pub(crate) type Slots = Vec<Slot>;

/// All routes.
pub(crate) type Routes = PrefixMap<Slots>;

/// What changed when a slot was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    /// The slot's origin before.
    pub(crate) old: u32,
    /// Whether the old origin was a real one ([`is_origin`]) and no slot has it any more: the
    /// last carrier of (prefix, old origin) just let go.
    pub(crate) old_gone: bool,
    /// Whether this is the only slot with the new origin (it was not there before).
    pub(crate) new_first: bool,
    /// Peers carrying the new origin now.
    pub(crate) new_peers: usize,
}

/// Sets the slot of (`peer`, `path_id`) in `slots` to `origin`. `None` when nothing changed.
pub(crate) fn set(slots: &mut Slots, peer: u32, path_id: u32, origin: u32) -> Option<Change> {
    let old = match slots.binary_search_by_key(&(peer, path_id), |s| (s.peer, s.path_id)) {
        Ok(i) if slots[i].origin == origin => return None,
        Ok(i) => std::mem::replace(&mut slots[i].origin, origin),
        Err(i) => {
            slots.insert(i, Slot { peer, path_id, origin });
            NO_ROUTE
        }
    };
    let (mut old_left, mut new_slots) = (0, 0);
    for s in slots.iter() {
        old_left += usize::from(s.origin == old);
        new_slots += usize::from(s.origin == origin);
    }
    Some(Change {
        old,
        old_gone: is_origin(old) && old_left == 0,
        new_first: new_slots == 1,
        new_peers: peers_with(slots, origin),
    })
}

/// Distinct peers whose slots for this prefix have `origin`.
pub(crate) fn peers_with(slots: &[Slot], origin: u32) -> usize {
    let mut last = None;
    let mut peers = 0;
    for s in slots.iter().filter(|s| s.origin == origin) {
        if last != Some(s.peer) {
            peers += 1;
            last = Some(s.peer);
        }
    }
    peers
}

/// Drops every slot of `peer`; returns the (prefix, origin) pairs no peer carries any more.
pub(crate) fn drop_peer(routes: &mut Routes, peer: u32) -> Vec<(IpNet, u32)> {
    let mut gone = Vec::new();
    let mut lost: Vec<u32> = Vec::new();
    for (prefix, slots) in routes.iter_mut() {
        lost.clear();
        slots.retain(|s| {
            let keep = s.peer != peer;
            if !keep && is_origin(s.origin) {
                lost.push(s.origin);
            }
            keep
        });
        for &origin in &lost {
            if !slots.iter().any(|s| s.origin == origin) && !gone.contains(&(prefix, origin)) {
                gone.push((prefix, origin));
            }
        }
    }
    gone
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_reports_first_and_last_carriers() {
        let mut slots = Slots::new();
        let c = set(&mut slots, 1, 0, 100).unwrap();
        assert_eq!(
            c,
            Change {
                old: NO_ROUTE,
                old_gone: false,
                new_first: true,
                new_peers: 1
            }
        );
        assert_eq!(set(&mut slots, 1, 0, 100), None);
        let c = set(&mut slots, 0, 0, 100).unwrap();
        assert!(!c.new_first && c.new_peers == 2);
        let c = set(&mut slots, 1, 0, 200).unwrap();
        assert_eq!((c.old, c.old_gone, c.new_first, c.new_peers), (100, false, true, 1));
        let c = set(&mut slots, 0, 0, NO_ROUTE).unwrap();
        assert_eq!((c.old, c.old_gone), (100, true));
        assert_eq!(slots.iter().map(|s| s.peer).collect::<Vec<_>>(), [0, 1]);
        // Two ADD-PATH paths of one peer with the same origin are one peer.
        set(&mut slots, 1, 7, 200);
        assert_eq!(peers_with(&slots, 200), 1);
        // Losing a route whose origin could not be told is no origin going away.
        set(&mut slots, 2, 0, UNKNOWN_ORIGIN);
        let c = set(&mut slots, 2, 0, NO_ROUTE).unwrap();
        assert_eq!((c.old, c.old_gone), (UNKNOWN_ORIGIN, false));
        // A withdrawal from a peer that had no route still records that it reported.
        let c = set(&mut slots, 3, 0, NO_ROUTE).unwrap();
        assert_eq!((c.old, c.old_gone, c.new_peers), (NO_ROUTE, false, 3));
    }

    #[test]
    fn dropping_a_peer_reports_what_vanished() {
        let mut routes = Routes::new();
        let a: IpNet = "10.0.0.0/8".parse().unwrap();
        let b: IpNet = "11.0.0.0/8".parse().unwrap();
        set(routes.get_or_insert_with(&a, Slots::new), 0, 0, 100);
        set(routes.get_or_insert_with(&a, Slots::new), 1, 0, 100);
        set(routes.get_or_insert_with(&b, Slots::new), 1, 0, 200);
        assert_eq!(drop_peer(&mut routes, 1), [(b, 200)]);
        assert_eq!(routes.get(&a).unwrap().len(), 1);
        assert!(routes.get(&b).unwrap().is_empty());
    }
}
