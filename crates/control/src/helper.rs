//! The test helper's measurement: what the target looks like from the control's network, in the
//! shape of OONI's `THResponse` (probe-cli `internal/model/th.go`).
//!
//! The control runs censorwatch's own probe engine (so both sides measure the same way), then
//! checks every endpoint — its own answers and the probe's — with a connect and, for `https://`, a
//! verified handshake; when the request sets `x_quic_enabled` and the site announces HTTP/3
//! (`Alt-Svc: h3`), a QUIC handshake with each endpoint too (OONI's `quic_handshake` key), so a
//! probe can tell "QUIC blocked here" from "the server has no working QUIC". Bogon addresses are never connected to unless `allow_private` is set (the
//! engine fails such connects with `dns_bogon_error`), and at most `max_endpoints` endpoints are
//! tried per request, whatever the request lists.

use crate::ipdb::{Network, RangeTable};
use censorwatch_model::web_connectivity::{
    ControlDns, ControlHttpRequest, ControlIpInfo, ControlResponse, ControlTcpConnect, ControlTlsHandshake,
    WebConnectivityTestKeys,
};
use censorwatch_model::{Failure, FailureKind};
use censorwatch_probe::{Probe, ThRequest, parse_input};
use censorwatch_verdict::bogon::is_bogon;
use futures_util::future::join_all;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The default cap on endpoints checked per request.
pub const DEFAULT_MAX_ENDPOINTS: usize = 16;

/// The helper: a probe engine on the uncensored side, and the IP → network table.
#[derive(Debug, Clone)]
pub struct Helper {
    probe: Probe,
    networks: Arc<RangeTable<Network>>,
    allow_private: bool,
    max_endpoints: usize,
}

/// The OONI test helper's DNS failure words: `dns_name_error` for NXDOMAIN, `dns_server_failure` for
/// the rest; "no answer" is no failure with no addresses.
pub fn th_dns_failure(f: &Failure) -> Option<Failure> {
    match f.kind() {
        FailureKind::Nxdomain => Some(Failure::DnsNameError),
        FailureKind::NoAnswer => None,
        _ => Some(Failure::DnsServerFailure),
    }
}

impl Helper {
    /// A helper measuring with `probe` (whose config should refuse bogons unless `allow_private`).
    pub fn new(probe: Probe, networks: Arc<RangeTable<Network>>, allow_private: bool, max_endpoints: usize) -> Helper {
        Helper {
            probe,
            networks,
            allow_private,
            max_endpoints,
        }
    }

    /// The IP → network table.
    pub fn networks(&self) -> &RangeTable<Network> {
        &self.networks
    }

    /// Measures what `request` asks. `Err` is a bad request (the message says why).
    pub async fn measure(&self, request: &ThRequest) -> Result<ControlResponse, String> {
        let url = parse_input(&request.http_request).map_err(|e| e.to_string())?;
        let port = url.port_or_known_default().unwrap_or(80);
        let outcome = self.probe.measure(url.as_str()).await.map_err(|e| e.to_string())?;
        let keys = outcome
            .measurement
            .web_connectivity()
            .ok()
            .flatten()
            .ok_or("the control's own measurement could not be read back")?;

        let (dns, th_addrs) = dns_of(&keys);
        let probe_addrs: Vec<SocketAddr> = request
            .tcp_connect
            .iter()
            .filter_map(|s| s.parse::<SocketAddr>().ok())
            .collect();
        let mut endpoints: Vec<SocketAddr> = Vec::new();
        for ep in th_addrs
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .chain(probe_addrs.iter().copied())
        {
            if !endpoints.contains(&ep) && (self.allow_private || !is_bogon(ep.ip())) {
                endpoints.push(ep);
            }
        }
        endpoints.truncate(self.max_endpoints);
        let checks = join_all(endpoints.iter().map(|ep| self.probe.check_endpoint(*ep, &url))).await;

        let mut tcp_connect = BTreeMap::new();
        let mut tls_handshake = BTreeMap::new();
        let mut tls_ok: Vec<IpAddr> = Vec::new();
        let host = url
            .host_str()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']');
        for (ep, (tcp, tls)) in endpoints.iter().zip(checks) {
            tcp_connect.insert(
                ep.to_string(),
                ControlTcpConnect {
                    status: Some(tcp.is_none()),
                    failure: tcp.clone(),
                    ..Default::default()
                },
            );
            if let Some(tls) = tls {
                if tls.is_none() {
                    tls_ok.push(ep.ip());
                }
                tls_handshake.insert(
                    ep.to_string(),
                    ControlTlsHandshake {
                        server_name: Some(host.to_owned()),
                        status: Some(tls.is_none()),
                        failure: tls,
                        ..Default::default()
                    },
                );
            }
        }
        // HTTP/3: where the control's own fetch was told the host speaks it (Alt-Svc), and, when
        // the request asks (`x_quic_enabled`, OONI's key), a QUIC handshake with every endpoint there.
        let mut http_request = http_of(&keys);
        let h3_port = h3_port_of(&keys, host);
        if let Some(port) = h3_port {
            http_request.discovered_h3_endpoint = Some(format!("{}:{port}", url.host_str().unwrap_or(host)));
        }
        let mut quic_handshake = BTreeMap::new();
        if let (true, Some(port)) = (request.x_quic_enabled, h3_port) {
            let mut quic_endpoints: Vec<SocketAddr> = Vec::new();
            for ep in &endpoints {
                let q = SocketAddr::new(ep.ip(), port);
                if !quic_endpoints.contains(&q) {
                    quic_endpoints.push(q);
                }
            }
            let checks = join_all(quic_endpoints.iter().map(|ep| self.probe.check_quic(*ep, &url))).await;
            for (ep, failure) in quic_endpoints.iter().zip(checks) {
                quic_handshake.insert(
                    ep.to_string(),
                    ControlTlsHandshake {
                        server_name: Some(host.to_owned()),
                        status: Some(failure.is_none()),
                        failure,
                        ..Default::default()
                    },
                );
            }
        }
        let mut ip_info = BTreeMap::new();
        let all_ips = th_addrs.iter().copied().chain(probe_addrs.iter().map(|a| a.ip()));
        for ip in all_ips {
            let mut flags = 0;
            if probe_addrs.iter().any(|a| a.ip() == ip) {
                flags |= 1;
            }
            if th_addrs.contains(&ip) {
                flags |= 2;
            }
            if is_bogon(ip) {
                flags |= 4;
            }
            if tls_ok.contains(&ip) {
                flags |= 8;
            }
            ip_info.insert(
                ip.to_string(),
                ControlIpInfo {
                    asn: Some(self.networks.get(ip).map_or(0, |n| i64::from(n.asn))),
                    flags: Some(flags),
                    ..Default::default()
                },
            );
        }
        Ok(ControlResponse {
            tcp_connect: Some(tcp_connect),
            tls_handshake: Some(tls_handshake),
            quic_handshake: Some(quic_handshake),
            http_request: Some(http_request),
            dns: Some(dns),
            ip_info: Some(ip_info),
            ..Default::default()
        })
    }
}

/// The control's DNS view from its own measurement (depth 0 lookups).
fn dns_of(keys: &WebConnectivityTestKeys) -> (ControlDns, Vec<IpAddr>) {
    let mut addrs: Vec<IpAddr> = Vec::new();
    for q in keys.queries.iter().flatten() {
        let depth0 = q
            .tags
            .as_ref()
            .is_none_or(|t| t.is_empty() || t.iter().any(|t| t == "depth=0"));
        if !depth0 {
            continue;
        }
        for a in q.answers.iter().flatten() {
            if let Some(ip) = a.ip().and_then(|s| s.parse::<IpAddr>().ok()) {
                if !addrs.contains(&ip) {
                    addrs.push(ip);
                }
            }
        }
    }
    let failure = match (&keys.dns_experiment_failure, addrs.is_empty()) {
        (Some(f), true) => th_dns_failure(f),
        _ => None,
    };
    (
        ControlDns {
            failure,
            addrs: Some(addrs.iter().map(IpAddr::to_string).collect()),
            ..Default::default()
        },
        addrs,
    )
}

/// The `h3` port the control's final response announced in `Alt-Svc` for `host` itself (a
/// redirect to another host announces nothing for this one).
fn h3_port_of(keys: &WebConnectivityTestKeys, host: &str) -> Option<u16> {
    let last = keys.final_request()?;
    let final_host = last
        .request
        .as_ref()
        .and_then(|r| r.url.as_deref())
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| {
            u.host_str()
                .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_owned())
        })?;
    if !final_host.eq_ignore_ascii_case(host) {
        return None;
    }
    let alt_svc = last.response.as_ref()?.header("alt-svc")?.text();
    censorwatch_probe::quic::h3_port_from_alt_svc(&alt_svc, host)
}

/// The control's HTTP view: the final response of its own fetch.
fn http_of(keys: &WebConnectivityTestKeys) -> ControlHttpRequest {
    let failed = |f: Failure| ControlHttpRequest {
        body_length: Some(-1),
        discovered_h3_endpoint: Some(String::new()),
        failure: Some(f),
        title: Some(String::new()),
        headers: Some(BTreeMap::new()),
        status_code: Some(-1),
        ..Default::default()
    };
    if let Some(f) = &keys.http_experiment_failure {
        return failed(f.clone());
    }
    let Some(response) = keys.final_request().and_then(|r| r.response.as_ref()) else {
        return failed(Failure::Unknown("unknown_failure: no HTTP response".into()));
    };
    let body = response.body.as_ref().and_then(|b| b.bytes()).unwrap_or_default();
    ControlHttpRequest {
        body_length: Some(body.len() as i64),
        discovered_h3_endpoint: Some(String::new()),
        failure: None,
        title: Some(censorwatch_probe::http::extract_title(&body)),
        headers: Some(response.headers.clone().unwrap_or_default()),
        status_code: response.code,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_failures_in_helper_words() {
        assert_eq!(th_dns_failure(&Failure::DnsNxdomainError), Some(Failure::DnsNameError));
        assert_eq!(th_dns_failure(&Failure::DnsNoAnswer), None);
        assert_eq!(
            th_dns_failure(&Failure::DnsRefusedError),
            Some(Failure::DnsServerFailure)
        );
        assert_eq!(
            th_dns_failure(&Failure::GenericTimeoutError),
            Some(Failure::DnsServerFailure)
        );
    }

    #[test]
    fn failed_fetch_has_minus_ones() {
        let keys = WebConnectivityTestKeys {
            http_experiment_failure: Some(Failure::ConnectionReset),
            ..Default::default()
        };
        let h = http_of(&keys);
        assert_eq!((h.status_code, h.body_length), (Some(-1), Some(-1)));
        assert_eq!(h.failure, Some(Failure::ConnectionReset));
    }
}
