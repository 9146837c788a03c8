//! censorwatch's emulated censor, the parts that run in userspace inside the lab's censor network
//! namespace: a DPI box and a lying resolver. The kernel does what it can (nftables drop, reject,
//! redirect; tc rate limits); what needs to read names — the TLS ClientHello's SNI, the HTTP
//! Host, the DNS question — is here:
//!
//! - [`serve_dpi`]: a transparent TCP proxy fed by `nft … redirect`, acting per [`FlowRule`]:
//!   forward, reset, FIN, blackhole, blockpage, throttle, optionally in on/off cycles.
//! - [`serve_dns`]: a resolver front acting per [`DnsRule`]: forward, NXDOMAIN, REFUSED, drop,
//!   spoof, inject (a forged answer racing the real one).
//!
//! It refuses to be anything else: it sets up no namespaces, routes or nftables rules (that is
//! `censorwatch-lab`'s job) and is meant only for the lab and tests.

mod dns;
mod dpi;
mod original_dst;
mod rules;
pub mod sniff;
mod stats;
pub mod throttle;

pub use dns::{DnsCensorConfig, FORGED_TTL, UPSTREAM_TIMEOUT, serve_dns, serve_dns_since};
pub use dpi::{DpiConfig, MAX_SNIFF_BYTES, UPSTREAM_CONNECT_TIMEOUT, blockpage_response, serve_dpi, serve_dpi_since};
pub use original_dst::original_destination;
pub use rules::{
    Action, DnsAction, DnsRule, FlowNames, FlowRule, Layer, NameMatch, PK_MOBILINK_BLOCKPAGE_PREFIX, Schedule,
    match_flow, match_query,
};
pub use stats::{CensorStats, DnsStats, DpiStats, StatsSnapshot};
