//! Web Connectivity test keys (ooni/spec `ts-017-web-connectivity.md`), v0.4 ("classic") and v0.5
//! ("LTE"), with the observation types they embed: DNS queries (df-002), TCP connects (df-005), TLS
//! handshakes (df-006), HTTP transactions (df-001), network events (df-008), and the test helper's
//! control response.
//!
//! Every field is optional: probes of 2016 lack half of them, and censorwatch must still read them.

use crate::binary::MaybeBinary;
use crate::failure::Failure;
use crate::json_object;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;

/// An HTTP header map as OONI writes it (`{"Server": "nginx"}`; values may be base64 objects).
pub type Headers = BTreeMap<String, MaybeBinary>;

json_object! {
    /// One DNS resolution (df-002).
    pub struct Query {
        /// Answers received.
        answers: Vec<Answer> => "answers",
        /// `"system"`, `"getaddrinfo"`, `"udp"`, `"doh"`, …
        engine: String => "engine",
        /// What failed, or null.
        failure: Failure => "failure",
        /// getaddrinfo's own error code.
        getaddrinfo_error: i64 => "getaddrinfo_error",
        /// The name looked up.
        hostname: String => "hostname",
        /// `"A"`, `"AAAA"`, `"ANY"`, …
        query_type: String => "query_type",
        /// The raw DNS response, base64.
        raw_response: String => "raw_response",
        /// The response code.
        rcode: i64 => "rcode",
        /// Resolver address.
        resolver_address: String => "resolver_address",
        /// Legacy resolver host name.
        resolver_hostname: Value => "resolver_hostname",
        /// Legacy resolver port.
        resolver_port: Value => "resolver_port",
        /// Start, seconds since measurement start.
        t0: Number => "t0",
        /// End, seconds since measurement start.
        t: Number => "t",
        /// Tags.
        tags: Vec<String> => "tags",
        /// Groups events of one step.
        transaction_id: i64 => "transaction_id",
    }
}

json_object! {
    /// One DNS answer record.
    pub struct Answer {
        /// `"A"`, `"AAAA"`, `"CNAME"`, …
        answer_type: String => "answer_type",
        /// Address for A records.
        ipv4: String => "ipv4",
        /// Address for AAAA records.
        ipv6: String => "ipv6",
        /// Target for CNAME records.
        hostname: String => "hostname",
        /// TTL.
        ttl: i64 => "ttl",
        /// ASN of the address, as the probe looked it up.
        asn: i64 => "asn",
        /// Organisation of the ASN.
        as_org_name: String => "as_org_name",
    }
}

impl Answer {
    /// The answered IP address (A or AAAA), if any.
    pub fn ip(&self) -> Option<&str> {
        self.ipv4.as_deref().or(self.ipv6.as_deref()).filter(|s| !s.is_empty())
    }
}

json_object! {
    /// One TCP connect attempt (df-005).
    pub struct TcpConnect {
        /// Destination IP.
        ip: String => "ip",
        /// Destination port.
        port: i64 => "port",
        /// The outcome.
        status: TcpStatus => "status",
        /// Start.
        t0: Number => "t0",
        /// End.
        t: Number => "t",
        /// Tags.
        tags: Vec<String> => "tags",
        /// Transaction id.
        transaction_id: i64 => "transaction_id",
    }
}

json_object! {
    /// The outcome of a TCP connect.
    pub struct TcpStatus {
        /// Whether the connection was established.
        success: bool => "success",
        /// What failed.
        failure: Failure => "failure",
        /// v0.4's own opinion (deprecated, ignored by censorwatch).
        blocked: bool => "blocked",
    }
}

json_object! {
    /// One TLS handshake (df-006).
    pub struct TlsHandshake {
        /// `"tcp"` or `"quic"`.
        network: String => "network",
        /// `ip:port`.
        address: String => "address",
        /// Negotiated cipher suite.
        cipher_suite: String => "cipher_suite",
        /// What failed.
        failure: Failure => "failure",
        /// The socket error, if any.
        so_error: Value => "so_error",
        /// Negotiated ALPN.
        negotiated_protocol: String => "negotiated_protocol",
        /// Whether verification was disabled.
        no_tls_verify: bool => "no_tls_verify",
        /// The server's chain, leaf first.
        peer_certificates: Vec<MaybeBinary> => "peer_certificates",
        /// The SNI sent.
        server_name: String => "server_name",
        /// Negotiated version.
        tls_version: String => "tls_version",
        /// Start.
        t0: Number => "t0",
        /// End.
        t: Number => "t",
        /// Tags.
        tags: Vec<String> => "tags",
        /// Transaction id.
        transaction_id: i64 => "transaction_id",
    }
}

json_object! {
    /// One HTTP round trip (df-001).
    pub struct HttpTransaction {
        /// `"tcp"` / `"quic"`.
        network: String => "network",
        /// `ip:port`.
        address: String => "address",
        /// ALPN used.
        alpn: String => "alpn",
        /// What failed.
        failure: Failure => "failure",
        /// The request.
        request: HttpRequest => "request",
        /// The response, if one was received.
        response: HttpResponse => "response",
        /// Start.
        t0: Number => "t0",
        /// End.
        t: Number => "t",
        /// Tags.
        tags: Vec<String> => "tags",
        /// Transaction id.
        transaction_id: i64 => "transaction_id",
    }
}

json_object! {
    /// An HTTP request.
    pub struct HttpRequest {
        /// Request URL.
        url: String => "url",
        /// Method.
        method: String => "method",
        /// Headers as a map.
        headers: Headers => "headers",
        /// Headers as a list of pairs, in order.
        headers_list: Vec<(String, MaybeBinary)> => "headers_list",
        /// Body sent.
        body: MaybeBinary => "body",
        /// Whether the body was truncated.
        body_is_truncated: bool => "body_is_truncated",
        /// Legacy Tor info.
        tor: Value => "tor",
        /// Transport used.
        x_transport: String => "x_transport",
    }
}

json_object! {
    /// An HTTP response.
    pub struct HttpResponse {
        /// Status code.
        code: i64 => "code",
        /// Headers as a map.
        headers: Headers => "headers",
        /// Headers as a list of pairs, in order.
        headers_list: Vec<(String, MaybeBinary)> => "headers_list",
        /// Body received (possibly truncated).
        body: MaybeBinary => "body",
        /// Whether the body was truncated by the probe.
        body_is_truncated: bool => "body_is_truncated",
    }
}

impl HttpResponse {
    /// The first value of a header, case-insensitively, from the map or the list.
    pub fn header(&self, name: &str) -> Option<&MaybeBinary> {
        if let Some(headers) = &self.headers {
            if let Some((_, v)) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                return Some(v);
            }
        }
        let list = self.headers_list.as_ref()?;
        list.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }
}

json_object! {
    /// A low-level network event (df-008).
    pub struct NetworkEvent {
        /// Peer address.
        address: String => "address",
        /// What failed.
        failure: Failure => "failure",
        /// Bytes read or written.
        num_bytes: i64 => "num_bytes",
        /// `connect`, `read`, `write`, `bytes_received_cumulative`, `tls_handshake_start`, …
        operation: String => "operation",
        /// Protocol.
        proto: String => "proto",
        /// Start.
        t0: Number => "t0",
        /// End.
        t: Number => "t",
        /// Tags.
        tags: Vec<String> => "tags",
        /// Transaction id.
        transaction_id: i64 => "transaction_id",
    }
}

json_object! {
    /// The test helper's view from an uncensored network (probe-cli `model.THResponse`).
    pub struct ControlResponse {
        /// `"ip:port"` → connect result.
        tcp_connect: BTreeMap<String, ControlTcpConnect> => "tcp_connect",
        /// `"ip:port"` → TLS handshake result.
        tls_handshake: BTreeMap<String, ControlTlsHandshake> => "tls_handshake",
        /// `"ip:port"` → QUIC handshake result.
        quic_handshake: BTreeMap<String, ControlTlsHandshake> => "quic_handshake",
        /// The GET, redirects followed.
        http_request: ControlHttpRequest => "http_request",
        /// The HTTP/3 GET.
        http3_request: ControlHttpRequest => "http3_request",
        /// The control's DNS lookup.
        dns: ControlDns => "dns",
        /// Address → ASN and flags.
        ip_info: BTreeMap<String, ControlIpInfo> => "ip_info",
    }
}

json_object! {
    /// Control TCP connect result.
    pub struct ControlTcpConnect {
        /// Whether the connect succeeded.
        status: bool => "status",
        /// What failed.
        failure: Failure => "failure",
    }
}

json_object! {
    /// Control TLS/QUIC handshake result.
    pub struct ControlTlsHandshake {
        /// SNI used.
        server_name: String => "server_name",
        /// Whether the handshake (with verification) succeeded.
        status: bool => "status",
        /// What failed.
        failure: Failure => "failure",
    }
}

json_object! {
    /// Control HTTP result.
    pub struct ControlHttpRequest {
        /// Body length, -1 on failure.
        body_length: i64 => "body_length",
        /// HTTP/3 endpoint advertised via Alt-Svc.
        discovered_h3_endpoint: String => "discovered_h3_endpoint",
        /// What failed.
        failure: Failure => "failure",
        /// Page title.
        title: String => "title",
        /// Response headers.
        headers: Headers => "headers",
        /// Status code, -1 on failure.
        status_code: i64 => "status_code",
    }
}

json_object! {
    /// Control DNS result.
    pub struct ControlDns {
        /// What failed (`dns_name_error`, `dns_server_failure`, …).
        failure: Failure => "failure",
        /// Addresses (old helpers also put CNAME targets here).
        addrs: Vec<String> => "addrs",
    }
}

json_object! {
    /// ASN and flags of one address (flags: 1 resolved by probe, 2 by control, 4 bogon, 8 valid TLS).
    pub struct ControlIpInfo {
        /// ASN (0 when unknown).
        asn: i64 => "asn",
        /// Bit flags.
        flags: i64 => "flags",
    }
}

/// OONI's `blocking` key: `false`, or the layer blamed (`"dns"`, `"tcp_ip"`, `"http-failure"`,
/// `"http-diff"`); `null` (absent in Rust) when undecided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OoniBlocking {
    /// No blocking.
    False,
    /// DNS-based blocking.
    Dns,
    /// TCP/IP blocking.
    TcpIp,
    /// HTTP (or TLS) failure.
    HttpFailure,
    /// The page differs from the control's.
    HttpDiff,
}

impl OoniBlocking {
    /// The JSON string, or `None` for `false`.
    pub fn as_str(self) -> Option<&'static str> {
        match self {
            OoniBlocking::False => None,
            OoniBlocking::Dns => Some("dns"),
            OoniBlocking::TcpIp => Some("tcp_ip"),
            OoniBlocking::HttpFailure => Some("http-failure"),
            OoniBlocking::HttpDiff => Some("http-diff"),
        }
    }

    /// Parses the string form (`false` is handled by the deserializer).
    pub fn from_name(s: &str) -> Option<OoniBlocking> {
        Some(match s {
            "dns" => OoniBlocking::Dns,
            "tcp_ip" => OoniBlocking::TcpIp,
            "http-failure" => OoniBlocking::HttpFailure,
            "http-diff" => OoniBlocking::HttpDiff,
            _ => return None,
        })
    }
}

impl Serialize for OoniBlocking {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.as_str() {
            None => s.serialize_bool(false),
            Some(name) => s.serialize_str(name),
        }
    }
}

impl<'de> Deserialize<'de> for OoniBlocking {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = OoniBlocking;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(r#"false, "dns", "tcp_ip", "http-failure" or "http-diff""#)
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<OoniBlocking, E> {
                if v {
                    Err(E::custom("blocking: true is not a valid value"))
                } else {
                    Ok(OoniBlocking::False)
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OoniBlocking, E> {
                OoniBlocking::from_name(v).ok_or_else(|| E::custom(format_args!("unknown blocking value {v:?}")))
            }
        }
        d.deserialize_any(V)
    }
}

json_object! {
    /// The web_connectivity test keys (v0.4 and v0.5).
    pub struct WebConnectivityTestKeys {
        /// `"redirect"`.
        agent: String => "agent",
        /// The resolver the probe's system uses, as seen by a whoami service.
        client_resolver: String => "client_resolver",
        /// Legacy.
        retries: Value => "retries",
        /// Legacy.
        socksproxy: Value => "socksproxy",
        /// DNS lookups.
        queries: Vec<Query> => "queries",
        /// The DNS lookup's failure.
        dns_experiment_failure: Failure => "dns_experiment_failure",
        /// Probe's opinion: `"consistent"` / `"inconsistent"`.
        dns_consistency: String => "dns_consistency",
        /// Why the control could not be reached.
        control_failure: Failure => "control_failure",
        /// The test helper's response.
        control: ControlResponse => "control",
        /// The request sent to the test helper (LTE).
        x_control_request: Value => "x_control_request",
        /// TCP connects.
        tcp_connect: Vec<TcpConnect> => "tcp_connect",
        /// TLS handshakes.
        tls_handshakes: Vec<TlsHandshake> => "tls_handshakes",
        /// HTTP transactions, last redirect first.
        requests: Vec<HttpTransaction> => "requests",
        /// Low-level events.
        network_events: Vec<NetworkEvent> => "network_events",
        /// The HTTP fetch's failure.
        http_experiment_failure: Failure => "http_experiment_failure",
        /// Probe's opinion: body lengths match.
        body_length_match: bool => "body_length_match",
        /// Probe's opinion: body length ratio.
        body_proportion: Number => "body_proportion",
        /// Probe's opinion: status codes match.
        status_code_match: bool => "status_code_match",
        /// Probe's opinion: uncommon headers match.
        headers_match: bool => "headers_match",
        /// Probe's opinion: titles match.
        title_match: bool => "title_match",
        /// Probe's opinion: the blocked layer. Never used by censorwatch's verdict.
        blocking: OoniBlocking => "blocking",
        /// Probe's opinion: whether the site is accessible. Never used by censorwatch's verdict.
        accessible: bool => "accessible",
        /// v0.4 status bitmask.
        x_status: i64 => "x_status",
        /// LTE DNS flags.
        x_dns_flags: i64 => "x_dns_flags",
        /// LTE blocking flags.
        x_blocking_flags: i64 => "x_blocking_flags",
        /// LTE "null null" flags.
        x_null_null_flags: i64 => "x_null_null_flags",
        /// LTE whoami results.
        x_dns_whoami: Value => "x_dns_whoami",
        /// LTE DoH lookups.
        x_doh: Value => "x_doh",
        /// LTE Do53 lookups.
        x_do53: Value => "x_do53",
        /// LTE duplicate DNS responses (injection evidence).
        x_dns_duplicate_responses: Vec<Query> => "x_dns_duplicate_responses",
        /// LTE connection priority log.
        x_conn_priority_log: Value => "x_conn_priority_log",
    }
}

impl WebConnectivityTestKeys {
    /// The control's HTTP result, if the control answered.
    pub fn control_http(&self) -> Option<&ControlHttpRequest> {
        self.control.as_ref()?.http_request.as_ref()
    }

    /// The final HTTP transaction (OONI lists the last redirect first).
    pub fn final_request(&self) -> Option<&HttpTransaction> {
        self.requests.as_ref()?.first()
    }

    /// Whether the control answered at all (a control object with something in it, and no
    /// `control_failure`).
    pub fn has_control(&self) -> bool {
        self.control_failure.is_none()
            && self.control.as_ref().is_some_and(|c| {
                c.dns.is_some() || c.http_request.is_some() || c.tcp_connect.as_ref().is_some_and(|t| !t.is_empty())
            })
    }

    /// Unused keys kept only for round trips; listed here so callers see they exist.
    pub fn unmodelled(&self) -> &Map<String, Value> {
        &self.extra
    }
}
