//! Counters of what the censor did, shared between the servers and whoever watches them (the lab
//! reports them per scenario). Cheap to clone: one `Arc` of atomics; [`CensorStats::snapshot`]
//! reads them all.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::rules::{Action, DnsAction};

/// Live counters of the DPI proxy and the DNS censor. One value may be shared by both servers.
#[derive(Debug, Clone, Default)]
pub struct CensorStats {
    inner: Arc<Counters>,
}

/// The DPI proxy's counters (the same type as [`DnsStats`]).
pub type DpiStats = CensorStats;
/// The DNS censor's counters (the same type as [`DpiStats`]).
pub type DnsStats = CensorStats;

macro_rules! counters {
    ($($(#[$doc:meta])* $field:ident),* $(,)?) => {
        /// The atomics behind [`CensorStats`].
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $(pub(crate) $field: AtomicU64,)*
        }

        /// A point-in-time copy of [`CensorStats`].
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct StatsSnapshot {
            $($(#[$doc])* pub $field: u64,)*
        }

        impl CensorStats {
            /// Reads every counter.
            pub fn snapshot(&self) -> StatsSnapshot {
                StatsSnapshot { $($field: self.inner.$field.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters! {
    /// Connections accepted by the DPI proxy.
    flows,
    /// Flows whose first flight was a TLS ClientHello.
    flows_tls,
    /// Flows whose first flight was an HTTP request.
    flows_http,
    /// Flows that were neither (or sent nothing before the sniff timeout / size limit).
    flows_other,
    /// Flows closed because their original destination was unknown (no SO_ORIGINAL_DST, no fallback).
    flows_no_destination,
    /// Flows forwarded unchanged (matched `Forward`, or no rule matched).
    forwarded,
    /// Flows reset.
    reset,
    /// Flows closed with a FIN.
    closed,
    /// Flows blackholed.
    blackholed,
    /// Blockpages sent.
    blockpages,
    /// Flows throttled.
    throttled,
    /// Forwarded or throttled flows whose upstream connection failed.
    upstream_failures,
    /// DNS datagrams received.
    dns_queries,
    /// Datagrams ignored as malformed (not a DNS query, or no question).
    dns_malformed,
    /// Queries relayed upstream (matched `Forward`, or no rule matched).
    dns_forwarded,
    /// NXDOMAIN answers.
    dns_nxdomain,
    /// REFUSED answers.
    dns_refused,
    /// Queries dropped.
    dns_dropped,
    /// Spoofed answers.
    dns_spoofed,
    /// Injections (forged answer plus the relayed real one).
    dns_injected,
    /// Queries upstream did not answer in time (or whose relay failed).
    dns_upstream_failures,
}

impl CensorStats {
    /// New counters, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn count(&self, counter: impl Fn(&Counters) -> &AtomicU64) {
        counter(&self.inner).fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_action(&self, action: &Action) {
        self.count(|c| match action {
            Action::Forward => &c.forwarded,
            Action::Reset => &c.reset,
            Action::Close => &c.closed,
            Action::Blackhole => &c.blackholed,
            Action::Blockpage { .. } => &c.blockpages,
            Action::Throttle { .. } => &c.throttled,
        });
    }

    pub(crate) fn count_dns_action(&self, action: &DnsAction) {
        self.count(|c| match action {
            DnsAction::Forward => &c.dns_forwarded,
            DnsAction::NxDomain => &c.dns_nxdomain,
            DnsAction::Refused => &c.dns_refused,
            DnsAction::Drop => &c.dns_dropped,
            DnsAction::Spoof(_) => &c.dns_spoofed,
            DnsAction::Inject(_) => &c.dns_injected,
        });
    }
}
