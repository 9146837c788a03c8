//! censorwatch's verdict on one measurement (DESIGN.md, "Verdict"): the type every other part
//! reads. How a verdict is decided lives in the `censorwatch-verdict` crate.

use crate::web_connectivity::OoniBlocking;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What the measurement says about the target from the probe's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Reachable, with the expected content.
    Ok,
    /// Interfered with on the probe's network.
    Blocked,
    /// The site itself is broken: the control fails the same way.
    Down,
    /// The measurement cannot tell.
    Inconclusive,
}

impl Status {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Blocked => "blocked",
            Status::Down => "down",
            Status::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! methods {
    ($( $(#[$meta:meta])* $variant:ident => $text:literal, )*) => {
        /// How the blocking was done: `<layer>.<kind>`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Method {
            $( $(#[$meta])* #[serde(rename = $text)] $variant, )*
        }

        impl Method {
            /// Every method, in declaration order.
            pub const ALL: &'static [Method] = &[$( Method::$variant, )*];

            /// The JSON name, e.g. `"dns.nxdomain"`.
            pub fn as_str(self) -> &'static str {
                match self { $( Method::$variant => $text, )* }
            }
        }
    };
}

methods! {
    /// The resolver said the name does not exist.
    DnsNxdomain => "dns.nxdomain",
    /// The resolver answered with no addresses.
    DnsNoAnswer => "dns.no_answer",
    /// The resolver answered with a private, loopback or otherwise non-routable address.
    DnsBogon => "dns.bogon",
    /// The resolver answered with an address that is not the site's.
    DnsSpoofed => "dns.spoofed",
    /// The lookup timed out.
    DnsTimeout => "dns.timeout",
    /// The resolver refused or failed (REFUSED, SERVFAIL).
    DnsRefused => "dns.refused",
    /// TCP connect timed out (SYN dropped).
    TcpTimeout => "tcp.timeout",
    /// TCP connect refused (RST to SYN).
    TcpRefused => "tcp.refused",
    /// Reset on an established TCP connection before TLS/HTTP.
    TcpReset => "tcp.reset",
    /// Reset during the TLS handshake (SNI filtering).
    TlsReset => "tls.reset",
    /// TLS handshake timed out (SNI blackholing).
    TlsTimeout => "tls.timeout",
    /// Connection closed during the TLS handshake.
    TlsEof => "tls.eof",
    /// A certificate not valid for the name (interception or a blockpage server).
    TlsCertMismatch => "tls.cert_mismatch",
    /// Reset during the HTTP exchange (Host filtering).
    HttpReset => "http.reset",
    /// Connection closed during the HTTP exchange.
    HttpEof => "http.eof",
    /// HTTP exchange timed out.
    HttpTimeout => "http.timeout",
    /// A known blockpage was served.
    HttpBlockpage => "http.blockpage",
    /// The page differs from what the control got.
    HttpDiff => "http.diff",
    /// The QUIC handshake timed out while TCP worked.
    QuicTimeout => "quic.timeout",
    /// Far slower than the control over the same path.
    Throttled => "throttled",
}

impl Method {
    /// The layer: `dns`, `tcp`, `tls`, `http`, `quic` or `throttled`.
    pub fn layer(self) -> &'static str {
        let s = self.as_str();
        s.split('.').next().unwrap_or(s)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verdict on one measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The outcome.
    pub status: Status,
    /// How it was blocked. Only with `blocked`; always set for Web Connectivity, and `None` for
    /// tests (Tor, browser) whose blocking fits none of the methods.
    pub method: Option<Method>,
    /// How sure, 0 to 1.
    pub confidence: f64,
    /// The name of the blockpage fingerprint matched, if any.
    pub blockpage: Option<String>,
    /// What OONI's Web Connectivity would have said in its `blocking` key, recomputed from the
    /// observations (`None` = OONI's `null`: undecided).
    pub ooni_blocking: Option<OoniBlocking>,
    /// OONI's `accessible`, recomputed from the observations.
    pub accessible: Option<bool>,
    /// Plain-language reasons, most important first.
    pub reasons: Vec<String>,
}

impl Verdict {
    /// An `inconclusive` verdict with one reason.
    pub fn inconclusive(reason: impl Into<String>) -> Verdict {
        Verdict {
            status: Status::Inconclusive,
            method: None,
            confidence: 0.0,
            blockpage: None,
            ooni_blocking: None,
            accessible: None,
            reasons: vec![reason.into()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_json_shape_matches_design() {
        let v = Verdict {
            status: Status::Blocked,
            method: Some(Method::TlsReset),
            confidence: 0.9,
            blockpage: None,
            ooni_blocking: Some(OoniBlocking::HttpFailure),
            accessible: Some(false),
            reasons: vec!["x".into()],
        };
        let j = serde_json::to_value(&v).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"status": "blocked", "method": "tls.reset", "confidence": 0.9, "blockpage": null,
                "ooni_blocking": "http-failure", "accessible": false, "reasons": ["x"]})
        );
        let back: Verdict = serde_json::from_value(j).unwrap();
        assert_eq!(back, v);
        let ok = Verdict {
            ooni_blocking: Some(OoniBlocking::False),
            ..Verdict::inconclusive("y")
        };
        assert_eq!(
            serde_json::to_value(&ok).unwrap()["ooni_blocking"],
            serde_json::json!(false)
        );
    }

    #[test]
    fn method_layers() {
        assert_eq!(Method::DnsNxdomain.layer(), "dns");
        assert_eq!(Method::Throttled.layer(), "throttled");
        assert_eq!(Method::ALL.len(), 20);
    }
}
