//! Maps what the operating system, the resolver and rustls report into OONI's failure vocabulary
//! (ooni/spec `df-007-errors.md`; the order of checks follows probe-cli's
//! `internal/netxlite/classify.go`: the errno first, then TLS certificate errors, then the rest).
//!
//! Pure: every function takes an error value and returns a [`Failure`]; nothing here does I/O.

use censorwatch_model::Failure;
use std::io;

/// Linux errno values (stable ABI; the same numbers probe-cli's `errno_linux.go` lists).
mod errno {
    pub(super) const ECONNRESET: i32 = 104;
    pub(super) const ECONNREFUSED: i32 = 111;
    pub(super) const ECONNABORTED: i32 = 103;
    pub(super) const EHOSTUNREACH: i32 = 113;
    pub(super) const ENETUNREACH: i32 = 101;
    pub(super) const ENETDOWN: i32 = 100;
    pub(super) const ENETRESET: i32 = 102;
    pub(super) const ETIMEDOUT: i32 = 110;
    pub(super) const EPIPE: i32 = 32;
    pub(super) const EINTR: i32 = 4;
}

/// Classifies a socket-level error (connect, read, write).
pub fn classify_io(e: &io::Error) -> Failure {
    if let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return classify_tls(tls);
    }
    if let Some(code) = e.raw_os_error() {
        match code {
            errno::ECONNRESET => return Failure::ConnectionReset,
            errno::ECONNREFUSED => return Failure::ConnectionRefused,
            errno::ECONNABORTED => return Failure::ConnectionAborted,
            errno::EHOSTUNREACH => return Failure::HostUnreachable,
            errno::ENETUNREACH => return Failure::NetworkUnreachable,
            errno::ENETDOWN => return Failure::NetworkDown,
            errno::ENETRESET => return Failure::NetworkReset,
            errno::ETIMEDOUT => return Failure::GenericTimeoutError,
            errno::EPIPE => return Failure::ConnectionAlreadyClosed,
            errno::EINTR => return Failure::Interrupted,
            _ => {}
        }
    }
    match e.kind() {
        io::ErrorKind::ConnectionReset => Failure::ConnectionReset,
        io::ErrorKind::ConnectionRefused => Failure::ConnectionRefused,
        io::ErrorKind::ConnectionAborted => Failure::ConnectionAborted,
        io::ErrorKind::UnexpectedEof => Failure::EofError,
        io::ErrorKind::TimedOut => Failure::GenericTimeoutError,
        io::ErrorKind::BrokenPipe => Failure::ConnectionAlreadyClosed,
        io::ErrorKind::Interrupted => Failure::Interrupted,
        _ => unknown(&e.to_string()),
    }
}

/// Classifies a rustls handshake error. Certificate errors map as Go's x509 errors do in
/// probe-cli: a name mismatch (or the server's `unrecognized_name` alert) is
/// `ssl_invalid_hostname`, an untrusted issuer `ssl_unknown_authority`, any other certificate
/// problem `ssl_invalid_certificate`; everything else is `ssl_failed_handshake`.
pub fn classify_tls(e: &rustls::Error) -> Failure {
    use rustls::{AlertDescription, CertificateError, Error};
    match e {
        Error::InvalidCertificate(c) => match c {
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Failure::SslInvalidHostname
            }
            CertificateError::UnknownIssuer => Failure::SslUnknownAuthority,
            _ => Failure::SslInvalidCertificate,
        },
        Error::AlertReceived(AlertDescription::UnrecognisedName) => Failure::SslInvalidHostname,
        _ => Failure::SslFailedHandshake,
    }
}

/// Classifies a getaddrinfo failure from its message (the standard library reports
/// `gai_strerror`'s text, not the code). EAI_NONAME is NXDOMAIN, EAI_NODATA no answer (as
/// probe-cli's `getaddrinfo_linux.go` maps them).
pub fn classify_getaddrinfo(message: &str) -> Failure {
    let m = message.to_ascii_lowercase();
    if m.contains("name or service not known") || m.contains("nodename nor servname") {
        Failure::DnsNxdomainError
    } else if m.contains("no address associated") {
        Failure::DnsNoAnswer
    } else if m.contains("temporary failure") {
        Failure::DnsTemporaryFailure
    } else if m.contains("non-recoverable") {
        Failure::DnsNonRecoverableFailure
    } else if m.contains("timed out") {
        Failure::GenericTimeoutError
    } else {
        unknown(message)
    }
}

/// The DNS failure for a response code (`rcode`) and how many answers of the asked type came back.
/// `None` = success.
pub fn classify_rcode(rcode: u16, answers_of_type: usize) -> Option<Failure> {
    match rcode {
        0 if answers_of_type > 0 => None,
        0 => Some(Failure::DnsNoAnswer),
        2 => Some(Failure::DnsServfailError),
        3 => Some(Failure::DnsNxdomainError),
        5 => Some(Failure::DnsRefusedError),
        _ => Some(Failure::DnsServerMisbehaving),
    }
}

/// `unknown_failure: <message>` with digits of addresses scrubbed, as OONI does, so no IP address
/// (the user's included) leaks through an error message.
pub fn unknown(message: &str) -> Failure {
    Failure::Unknown(format!("unknown_failure: {}", scrub_addresses(message)))
}

/// Replaces anything that looks like an IPv4 or IPv6 address with `[scrubbed]`.
pub fn scrub_addresses(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for (i, token) in message.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let core = token.trim_matches(|c: char| "()[],;\"'".contains(c));
        let host = core.rsplit_once(':').map_or(core, |(h, port)| {
            if port.chars().all(|c| c.is_ascii_digit()) && !port.is_empty() {
                h
            } else {
                core
            }
        });
        let host = host.trim_matches(|c| c == '[' || c == ']');
        if host.parse::<std::net::IpAddr>().is_ok() || core.parse::<std::net::IpAddr>().is_ok() {
            out.push_str("[scrubbed]");
        } else {
            out.push_str(token);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_map_to_ooni_strings() {
        let cases = [
            (104, "connection_reset"),
            (111, "connection_refused"),
            (110, "generic_timeout_error"),
            (113, "host_unreachable"),
            (101, "network_unreachable"),
        ];
        for (code, want) in cases {
            assert_eq!(
                classify_io(&io::Error::from_raw_os_error(code)).as_str(),
                want,
                "errno {code}"
            );
        }
    }

    #[test]
    fn kinds_map_when_there_is_no_errno() {
        assert_eq!(classify_io(&io::ErrorKind::UnexpectedEof.into()), Failure::EofError);
        assert_eq!(
            classify_io(&io::ErrorKind::TimedOut.into()),
            Failure::GenericTimeoutError
        );
        let other = classify_io(&io::Error::other("weird thing at 10.1.2.3:443"));
        assert_eq!(other.as_str(), "unknown_failure: weird thing at [scrubbed]");
    }

    #[test]
    fn rustls_errors_inside_io_errors_are_found() {
        let e = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName),
        );
        assert_eq!(classify_io(&e), Failure::SslInvalidHostname);
        let e = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert_eq!(classify_io(&e), Failure::SslUnknownAuthority);
        let expired = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        assert_eq!(classify_tls(&expired), Failure::SslInvalidCertificate);
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::UnrecognisedName);
        assert_eq!(classify_tls(&alert), Failure::SslInvalidHostname);
        let other = rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure);
        assert_eq!(classify_tls(&other), Failure::SslFailedHandshake);
    }

    #[test]
    fn getaddrinfo_messages() {
        assert_eq!(
            classify_getaddrinfo("failed to lookup address information: Name or service not known"),
            Failure::DnsNxdomainError
        );
        assert_eq!(
            classify_getaddrinfo("failed to lookup address information: Temporary failure in name resolution"),
            Failure::DnsTemporaryFailure
        );
        assert_eq!(
            classify_getaddrinfo("No address associated with hostname"),
            Failure::DnsNoAnswer
        );
        assert!(matches!(classify_getaddrinfo("something else"), Failure::Unknown(_)));
    }

    #[test]
    fn rcodes() {
        assert_eq!(classify_rcode(0, 1), None);
        assert_eq!(classify_rcode(0, 0), Some(Failure::DnsNoAnswer));
        assert_eq!(classify_rcode(3, 0), Some(Failure::DnsNxdomainError));
        assert_eq!(classify_rcode(5, 0), Some(Failure::DnsRefusedError));
        assert_eq!(classify_rcode(2, 0), Some(Failure::DnsServfailError));
        assert_eq!(classify_rcode(9, 0), Some(Failure::DnsServerMisbehaving));
    }

    #[test]
    fn scrubbing_removes_v4_and_v6_addresses() {
        assert_eq!(
            scrub_addresses("connect 192.0.2.1:443 failed from [2001:db8::1]:5555 (10.0.0.1)"),
            "connect [scrubbed] failed from [scrubbed] [scrubbed]"
        );
        assert_eq!(scrub_addresses("no address here"), "no address here");
    }
}
