//! The failure-string vocabulary of OONI measurements (ooni/spec `df-007-errors.md`, probe-cli
//! `internal/netxlite`): what went wrong at a step, as a closed set plus the escape hatches old and
//! foreign probes use.
//!
//! A [`Failure`] always serializes back to the exact string it was read from.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

macro_rules! failures {
    ($( $(#[$meta:meta])* $variant:ident => $text:literal, )*) => {
        /// One failure string. Known strings are variants; anything else is kept as
        /// [`Failure::Unknown`] (`"unknown_failure: …"`) or [`Failure::Other`] (strings of older or
        /// foreign probes, e.g. MK's `"dns_lookup_error"`).
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Failure {
            $( $(#[$meta])* $variant, )*
            /// `unknown_failure: <scrubbed message>`; holds the whole string.
            Unknown(String),
            /// A string outside the df-007 vocabulary; holds the whole string.
            Other(String),
        }

        impl Failure {
            /// Classifies a failure string.
            pub fn parse(s: &str) -> Failure {
                match s {
                    $( $text => Failure::$variant, )*
                    _ if s.starts_with("unknown_failure") || s.starts_with("unknown_error") => Failure::Unknown(s.to_owned()),
                    _ => Failure::Other(s.to_owned()),
                }
            }

            /// The string as it appears in measurements.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Failure::$variant => $text, )*
                    Failure::Unknown(s) | Failure::Other(s) => s,
                }
            }
        }
    };
}

failures! {
    /// Android's resolver cache had no data for the name (what Android reports for NXDOMAIN).
    AndroidDnsCacheNoData => "android_dns_cache_no_data",
    /// The connection was aborted locally.
    ConnectionAborted => "connection_aborted",
    /// Operation on a connection that was already closed.
    ConnectionAlreadyClosed => "connection_already_closed",
    /// TCP RST in response to SYN.
    ConnectionRefused => "connection_refused",
    /// TCP RST on an established connection.
    ConnectionReset => "connection_reset",
    /// The resolver returned a bogon address where none is expected.
    DnsBogonError => "dns_bogon_error",
    /// The resolver answered with no records of the requested type.
    DnsNoAnswer => "dns_no_answer",
    /// Non-recoverable resolver failure (EAI_FAIL).
    DnsNonRecoverableFailure => "dns_non_recoverable_failure",
    /// NXDOMAIN.
    DnsNxdomainError => "dns_nxdomain_error",
    /// A reply whose query id did not match.
    DnsReplyWithWrongQueryId => "dns_reply_with_wrong_query_id",
    /// REFUSED rcode.
    DnsRefusedError => "dns_refused_error",
    /// The resolver misbehaved.
    DnsServerMisbehaving => "dns_server_misbehaving",
    /// SERVFAIL rcode.
    DnsServfailError => "dns_servfail_error",
    /// Temporary resolver failure (EAI_AGAIN).
    DnsTemporaryFailure => "dns_temporary_failure",
    /// Test helper only: NXDOMAIN.
    DnsNameError => "dns_name_error",
    /// Test helper only: server failure.
    DnsServerFailure => "dns_server_failure",
    /// Legacy (MK) lookup error.
    DnsLookupError => "dns_lookup_error",
    /// Unexpected end of stream (the peer sent FIN).
    EofError => "eof_error",
    /// Legacy name of the EOF error.
    EofErrorLegacy => "eof",
    /// A redirect's Location had no host.
    HttpInvalidRedirectLocationHost => "http_invalid_redirect_location_host",
    /// The HTTP request failed.
    HttpRequestFailed => "http_request_failed",
    /// Redirected to an unexpected URL.
    HttpUnexpectedRedirectUrl => "http_unexpected_redirect_url",
    /// Unexpected HTTP status code.
    HttpUnexpectedStatusCode => "http_unexpected_status_code",
    /// Host unreachable (ICMP).
    HostUnreachable => "host_unreachable",
    /// The operation timed out.
    GenericTimeoutError => "generic_timeout_error",
    /// The operation was interrupted.
    Interrupted => "interrupted",
    /// A JSON body could not be parsed.
    JsonParseError => "json_parse_error",
    /// The network is down.
    NetworkDown => "network_down",
    /// The network reset the connection.
    NetworkReset => "network_reset",
    /// The network is unreachable.
    NetworkUnreachable => "network_unreachable",
    /// QUIC version negotiation failed.
    QuicIncompatibleVersion => "quic_incompatible_version",
    /// The TLS handshake failed for a protocol reason.
    SslFailedHandshake => "ssl_failed_handshake",
    /// The certificate is not valid for the name.
    SslInvalidHostname => "ssl_invalid_hostname",
    /// The certificate chains to an unknown authority.
    SslUnknownAuthority => "ssl_unknown_authority",
    /// The certificate is invalid (expired, malformed, …).
    SslInvalidCertificate => "ssl_invalid_certificate",
    /// Legacy (MK) error for a failed TLS handshake.
    SslError => "ssl_error",
    /// Legacy (MK/Python) timeout.
    TimeoutError => "timeout_error",
    /// Legacy (Python) connection refused.
    ConnectionRefusedError => "connection_refused_error",
    /// Legacy (Python/Twisted) connection lost.
    ConnectionLost => "connection_lost_error",
    /// Legacy (Python) response never received.
    ResponseNeverReceived => "response_never_received",
}

/// The layer-independent kind of a failure, which is what verdict rules reason about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// No answer in time.
    Timeout,
    /// TCP RST on connect.
    Refused,
    /// TCP RST on an established flow.
    Reset,
    /// The peer closed the connection.
    Eof,
    /// NXDOMAIN (or Android's equivalent).
    Nxdomain,
    /// No records of the type asked for.
    NoAnswer,
    /// The resolver refused or failed.
    DnsServer,
    /// Any other DNS error.
    DnsOther,
    /// TLS: certificate not valid for the name.
    CertHostname,
    /// TLS: certificate not trusted or invalid.
    CertInvalid,
    /// TLS: other handshake failure.
    TlsOther,
    /// The network or host is unreachable.
    Unreachable,
    /// HTTP-level failure (bad redirect, unexpected status …).
    Http,
    /// Anything the vocabulary does not classify.
    Unknown,
}

impl Failure {
    /// The failure's kind.
    pub fn kind(&self) -> FailureKind {
        use Failure as F;
        use FailureKind as K;
        match self {
            F::GenericTimeoutError | F::TimeoutError | F::ResponseNeverReceived => K::Timeout,
            F::ConnectionRefused | F::ConnectionRefusedError => K::Refused,
            F::ConnectionReset | F::NetworkReset | F::ConnectionAborted | F::ConnectionLost => K::Reset,
            F::EofError | F::EofErrorLegacy | F::ConnectionAlreadyClosed => K::Eof,
            F::DnsNxdomainError | F::DnsNameError | F::AndroidDnsCacheNoData => K::Nxdomain,
            F::DnsNoAnswer => K::NoAnswer,
            F::DnsRefusedError | F::DnsServfailError | F::DnsServerFailure | F::DnsServerMisbehaving => K::DnsServer,
            F::DnsBogonError
            | F::DnsNonRecoverableFailure
            | F::DnsReplyWithWrongQueryId
            | F::DnsTemporaryFailure
            | F::DnsLookupError => K::DnsOther,
            F::SslInvalidHostname => K::CertHostname,
            F::SslUnknownAuthority | F::SslInvalidCertificate => K::CertInvalid,
            F::SslFailedHandshake | F::SslError | F::QuicIncompatibleVersion => K::TlsOther,
            F::HostUnreachable | F::NetworkDown | F::NetworkUnreachable => K::Unreachable,
            F::HttpInvalidRedirectLocationHost
            | F::HttpRequestFailed
            | F::HttpUnexpectedRedirectUrl
            | F::HttpUnexpectedStatusCode => K::Http,
            F::Interrupted | F::JsonParseError | F::Unknown(_) => K::Unknown,
            F::Other(s) => classify_foreign(s),
        }
    }

    /// Whether this failure is a DNS failure.
    pub fn is_dns(&self) -> bool {
        matches!(
            self.kind(),
            FailureKind::Nxdomain | FailureKind::NoAnswer | FailureKind::DnsServer | FailureKind::DnsOther
        )
    }
}

/// Best-effort classification of failure strings outside df-007 (old Python/MK probes wrote
/// free text such as `"[Errno 111] Connection refused"` or `"TCPTimedOutError"`).
fn classify_foreign(s: &str) -> FailureKind {
    let lower = s.to_ascii_lowercase();
    if lower.contains("timeout") || lower.contains("timed out") || lower.contains("timedout") {
        FailureKind::Timeout
    } else if lower.contains("refused") {
        FailureKind::Refused
    } else if lower.contains("reset") {
        FailureKind::Reset
    } else if lower.contains("eof") || lower.contains("connection closed") {
        FailureKind::Eof
    } else if lower.contains("nxdomain") || lower.contains("name error") {
        FailureKind::Nxdomain
    } else if lower.starts_with("dns") {
        FailureKind::DnsOther
    } else if lower.starts_with("ssl") || lower.starts_with("tls") {
        FailureKind::TlsOther
    } else {
        FailureKind::Unknown
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Failure {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Failure {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Failure;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a failure string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Failure, E> {
                Ok(Failure::parse(v))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_strings_round_trip() {
        for s in [
            "connection_reset",
            "dns_nxdomain_error",
            "generic_timeout_error",
            "eof_error",
        ] {
            let f = Failure::parse(s);
            assert!(!matches!(f, Failure::Other(_) | Failure::Unknown(_)), "{s}");
            assert_eq!(f.as_str(), s);
        }
    }

    #[test]
    fn unknown_and_foreign_strings_are_kept_whole() {
        let f = Failure::parse("unknown_failure: read tcp [scrubbed]: i/o timeout");
        assert!(matches!(f, Failure::Unknown(_)));
        assert_eq!(f.as_str(), "unknown_failure: read tcp [scrubbed]: i/o timeout");
        let f = Failure::parse("[Errno 111] Connection refused");
        assert_eq!(f.kind(), FailureKind::Refused);
        assert_eq!(f.to_string(), "[Errno 111] Connection refused");
    }

    #[test]
    fn kinds() {
        assert_eq!(Failure::parse("dns_name_error").kind(), FailureKind::Nxdomain);
        assert_eq!(
            Failure::parse("android_dns_cache_no_data").kind(),
            FailureKind::Nxdomain
        );
        assert_eq!(Failure::parse("ssl_invalid_hostname").kind(), FailureKind::CertHostname);
        assert!(Failure::parse("dns_servfail_error").is_dns());
        assert!(!Failure::parse("connection_reset").is_dns());
    }
}
