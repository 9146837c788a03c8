//! censorwatch's measurement engine: measures a URL the way a censor sees it — DNS (the system's
//! getaddrinfo and a UDP resolver, with injected duplicates caught), TCP connects to every address,
//! TLS handshakes with the real SNI and, when one fails, with a decoy SNI on the same address (the
//! SNI A/B test), then an HTTP(S) GET following redirects, QUIC handshakes where the target speaks
//! HTTP/3 — and writes the result as an OONI
//! web_connectivity measurement (`software_name: "censorwatch"`, extra keys prefixed `x_`). It also
//! holds the client side of the control (test-helper) protocol, and the primitives the control
//! server reuses to measure from its side.
//!
//! What it refuses to do: decide verdicts. Every measurement is handed to `censorwatch-verdict`,
//! and even OONI's own `blocking`/`accessible` keys are copied from that verdict. It also refuses to
//! write the user's IP address: `probe_ip` is always `127.0.0.1`, the network (ASN, country) comes
//! from the control's `/whoami`, and the public address is scrubbed from everything written.

pub mod dns;
pub mod failure;
pub mod http;
pub mod measure;
pub mod quic;
pub mod targets;
pub mod th;
pub mod throughput;
pub mod tls;
pub mod trace;

#[cfg(feature = "testbed")]
pub mod testbed;

pub use measure::{InputError, NetworkInfo, Outcome, Probe, ProbeConfig, parse_input};
pub use quic::QuicMode;
pub use th::{ControlClient, ThRequest, Throughput, WhoAmI};
pub use tls::TlsSettings;
