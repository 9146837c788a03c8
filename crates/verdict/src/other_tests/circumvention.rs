//! Circumvention-tool tests: Tor targets (ts-023), vanilla Tor (ts-016), Tor with Snowflake
//! (ts-030), meek domain fronting (ts-014), Psiphon (ts-015), RiseupVPN (ts-026) and OpenVPN
//! (ts-040). They ask whether a tool can bootstrap or reach its servers from the probe's network.

use super::{
    Step, arr, blocked, bool_at, common_method, connects, down, failure_at, header_value, list, method_for, num_at,
    offline_reason, ok, requests, str_at, unclear, unusable,
};
use censorwatch_model::{Failure, Measurement, Verdict};
use serde_json::Value;

/// Tor targets (ooni/spec `ts-023-tor.md`; fastpath `score_tor`).
///
/// Each target's `failure` says whether it worked (`null`), failed (a string) or was not run
/// (`false`). Blocked when most targets that ran failed (fastpath's share above 0.5), or when
/// every target of one kind (directory ports, OR ports, obfs4 bridges…) failed while there were
/// at least two of them. The list-shaped `targets` of early development versions is not the
/// format ts-023 defines: inconclusive, as in fastpath.
pub(super) fn tor(_m: &Measurement, tk: &Value) -> Verdict {
    let targets = match tk.get("targets") {
        Some(Value::Object(t)) if !t.is_empty() => t,
        Some(Value::Array(_)) => {
            return unclear(vec![
                "the Tor targets are a list, the format of early development versions of the tor test rather \
                 than the one ooni/spec ts-023 defines; censorwatch does not interpret it"
                    .into(),
            ]);
        }
        _ => return unclear(vec!["the Tor measurement lists no targets".into()]),
    };
    let mut ok_count = 0usize;
    let mut failed: Vec<(String, String, Failure, Step)> = Vec::new();
    let mut per_protocol: Vec<(String, usize, usize)> = Vec::new();
    let mut live = false;
    for (id, t) in targets {
        let protocol = str_at(t, "target_protocol").unwrap_or("unknown").to_owned();
        let address = str_at(t, "target_address").unwrap_or(id).to_owned();
        let outcome = match t.get("failure") {
            Some(Value::Null) => Some(None),
            Some(v @ Value::String(_)) => super::failure_of(Some(v)).map(Some),
            _ => None, // false (not run) or missing
        };
        let Some(outcome) = outcome else { continue };
        let slot = match per_protocol.iter().position(|(p, _, _)| *p == protocol) {
            Some(i) => i,
            None => {
                per_protocol.push((protocol.clone(), 0, 0));
                per_protocol.len() - 1
            }
        };
        per_protocol[slot].1 += 1;
        let target_connects = connects(t.get("tcp_connect"));
        live |= target_connects.iter().any(|c| c.succeeded() == Some(true));
        match outcome {
            None => {
                ok_count += 1;
                live = true;
            }
            Some(f) => {
                per_protocol[slot].2 += 1;
                live |= super::network_answered_with(&f);
                let connect_failed = target_connects.iter().any(|c| c.succeeded() == Some(false));
                let step = if connect_failed {
                    Step::Tcp
                } else {
                    match protocol.as_str() {
                        "or_port" | "or_port_dirauth" => Step::Tls,
                        "dir_port" => Step::HttpPlain,
                        _ => Step::Unknown,
                    }
                };
                failed.push((protocol, address, f, step));
            }
        }
    }
    let ran = ok_count + failed.len();
    if ran == 0 {
        return unclear(vec!["none of the Tor targets has a result".into()]);
    }
    let describe = |(p, a, f, _): &(String, String, Failure, Step)| format!("{} {a}: {f}", protocol_name(p));
    let whole_kinds: Vec<String> = per_protocol
        .iter()
        .filter(|(_, total, bad)| *total >= 2 && bad == total)
        .map(|(p, total, _)| format!("all {total} {}s", protocol_name(p)))
        .collect();
    let majority = failed.len() * 2 > ran;
    if failed.is_empty() || (!majority && whole_kinds.is_empty()) {
        let mut r = vec![format!(
            "{ok_count} of {ran} Tor targets (directory authorities, relays, bridges) worked"
        )];
        if !failed.is_empty() {
            r.push(format!(
                "failing: {}",
                list(&failed.iter().map(describe).collect::<Vec<_>>(), 4)
            ));
        }
        return ok(if failed.is_empty() { 0.85 } else { 0.6 }, r);
    }
    let evidence: Vec<(Failure, Step)> = failed
        .iter()
        .filter(|(_, _, f, _)| unusable(f).is_none())
        .map(|(_, _, f, s)| (f.clone(), *s))
        .collect();
    let failing_text = list(&failed.iter().map(describe).collect::<Vec<_>>(), 5);
    if evidence.is_empty() {
        return unclear(vec![format!(
            "the failing Tor targets ({failing_text}) failed with errors that point to the probe, not the network"
        )]);
    }
    if !live {
        return unclear(vec![offline_reason("Tor target"), failing_text]);
    }
    let mut reasons = vec![format!("{} of {ran} Tor targets failed: {failing_text}", failed.len())];
    if !whole_kinds.is_empty() {
        reasons.push(format!("{} failed", list(&whole_kinds, 4)));
    }
    blocked(common_method(&evidence), if majority { 0.8 } else { 0.7 }, reasons)
}

/// A readable name for a ts-023 target protocol.
fn protocol_name(p: &str) -> &str {
    match p {
        "or_port_dirauth" => "directory-authority OR port",
        "or_port" => "relay OR port",
        "dir_port" => "directory port",
        "obfs4" => "obfs4 bridge",
        other => other,
    }
}

/// Progress, logs and result of a Tor bootstrap (vanilla_tor, torsf).
struct Bootstrap {
    /// `tor_progress`, when present.
    progress: Option<f64>,
    /// `tor_progress_tag` and `tor_progress_summary`.
    stage: Option<String>,
    /// Whether the logs show the bootstrap done.
    logs_done: bool,
    /// Whether any logs are present.
    has_logs: bool,
}

impl Bootstrap {
    /// Reads the bootstrap fields (ts-016 current and legacy forms; ts-030).
    fn read(tk: &Value) -> Bootstrap {
        let lines: Vec<&str> = match tk.get("tor_logs").or_else(|| tk.get("tor_log")) {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(s)) => s.lines().collect(),
            _ => Vec::new(),
        };
        // fastpath score_vanilla_tor: old probes wrote either form of the "done" line.
        let logs_done = lines.iter().any(|l| l.contains("Bootstrapped 100%"));
        let stage = match (str_at(tk, "tor_progress_tag"), str_at(tk, "tor_progress_summary")) {
            (Some(t), Some(s)) if !t.is_empty() => Some(format!("{t}: {s}")),
            (Some(t), _) if !t.is_empty() => Some(t.to_owned()),
            (_, Some(s)) if !s.is_empty() => Some(s.to_owned()),
            _ => None,
        };
        Bootstrap {
            progress: num_at(tk, "tor_progress").map(|p| p.clamp(0.0, 100.0)),
            stage,
            logs_done,
            has_logs: !lines.is_empty(),
        }
    }

    /// "5% (conn: Connecting to a relay)".
    fn describe(&self) -> String {
        match (self.progress, &self.stage) {
            (Some(p), Some(s)) => format!("{p:.0}% ({s})"),
            (Some(p), None) => format!("{p:.0}%"),
            (None, Some(s)) => s.clone(),
            (None, None) => "an unknown point".to_owned(),
        }
    }
}

/// Vanilla Tor (ooni/spec `ts-016-vanilla-tor.md`; fastpath `score_vanilla_tor`).
///
/// Ok when tor bootstrapped (100%, or the "Bootstrapped 100%" log line). Blocked when it gave
/// up before; stalling early, before finishing a handshake with any relay (below 15%), is the
/// signature of relays being blocked and gets more confidence than stalling late, which slow
/// networks also cause (fastpath scales its score down with progress the same way). Stuck at
/// 0% means tor never started connecting: a probe problem. No logs and no result: inconclusive.
pub(super) fn vanilla_tor(_m: &Measurement, tk: &Value) -> Verdict {
    let b = Bootstrap::read(tk);
    let failure = failure_at(tk, "failure");
    let success = bool_at(tk, "success");
    let bt = num_at(tk, "bootstrap_time").unwrap_or(0.0);
    if b.logs_done || b.progress == Some(100.0) || (success == Some(true) && failure.is_none()) {
        let mut r = vec!["Tor bootstrapped to 100% with its default configuration".to_owned()];
        if bt > 0.0 {
            r[0].push_str(&format!(" in {bt:.0} s"));
        }
        return ok(0.85, r);
    }
    let gave_up = failure.is_some() || success == Some(false) || str_at(tk, "error").is_some_and(|e| !e.is_empty());
    if !gave_up || (!b.has_logs && b.progress.is_none()) {
        return unclear(vec![
            "the vanilla Tor measurement has no bootstrap logs or result to judge".into(),
        ]);
    }
    let what = failure
        .as_ref()
        .map(Failure::to_string)
        .or_else(|| str_at(tk, "error").map(str::to_owned));
    let detail = what.map(|w| format!(": {w}")).unwrap_or_default();
    if let Some(f) = &failure {
        if let Some(why) = unusable(f) {
            return unclear(vec![format!("Tor did not bootstrap ({f}), but {why}")]);
        }
    }
    let progress = b.progress.unwrap_or(0.0);
    if progress <= 0.0 {
        return unclear(vec![format!(
            "Tor never started connecting (bootstrap stuck at {}){detail}: a problem on the probe, not evidence \
             of blocking",
            b.describe()
        )]);
    }
    let timeout = num_at(tk, "timeout")
        .map(|t| format!(" after {t:.0} s"))
        .unwrap_or_default();
    let reasons = vec![format!(
        "Tor's bootstrap stalled at {} and gave up{timeout}{detail}",
        b.describe()
    )];
    if progress < 15.0 {
        let mut r = reasons;
        r.push("it never completed a handshake with any Tor relay, as when relays are blocked".into());
        blocked(None, 0.8, r)
    } else {
        let mut r = reasons;
        r.push("it reached the Tor network but did not finish; very slow or throttled networks also do this".into());
        blocked(None, 0.6, r)
    }
}

/// Tor with Snowflake (ooni/spec `ts-030-torsf.md`; fastpath `score_torsf`).
///
/// `failure` set: blocked (the bootstrap through Snowflake failed). `failure` null with a
/// bootstrap time: ok. Measurements from ooniprobe-android 3.8.3 are inconclusive, as fastpath
/// flags them failed (ooni/backend#704, related ooni/probe#2406); so is a bootstrap stuck at 0%,
/// where tor never started the pluggable transport.
pub(super) fn torsf(m: &Measurement, tk: &Value) -> Verdict {
    let sw_name = m.software_name.as_deref().unwrap_or("");
    if m.software_version.as_deref() == Some("3.8.3") && sw_name.starts_with("ooniprobe-android") {
        return unclear(vec![
            "torsf measurements from ooniprobe-android 3.8.3 are known to be broken and OONI marks them failed \
             (ooni/backend#704)"
                .into(),
        ]);
    }
    let b = Bootstrap::read(tk);
    let bt = num_at(tk, "bootstrap_time").unwrap_or(0.0);
    match failure_at(tk, "failure") {
        None if tk.get("failure").is_some_and(Value::is_null) && bt > 0.0 => ok(
            0.85,
            vec![format!(
                "Tor bootstrapped through the Snowflake pluggable transport in {bt:.0} s"
            )],
        ),
        None => unclear(vec![
            "the torsf measurement reports neither a failure nor a completed bootstrap".into(),
        ]),
        Some(f) => {
            if let Some(why) = unusable(&f) {
                return unclear(vec![format!("Tor over Snowflake did not bootstrap ({f}), but {why}")]);
            }
            if b.progress == Some(0.0) {
                return unclear(vec![format!(
                    "Tor over Snowflake failed ({f}) while still at 0% ({}): tor never started the pluggable \
                     transport, a problem on the probe",
                    b.describe()
                )]);
            }
            let at = if b.progress.is_some() {
                format!(" at {}", b.describe())
            } else {
                String::new()
            };
            blocked(
                None,
                0.75,
                vec![format!(
                    "Tor could not bootstrap through the Snowflake pluggable transport{at}: {f}"
                )],
            )
        }
    }
}

/// The text the meek test server answers with (ts-014).
const MEEK_GREETING: &str = "happy little web server";

/// meek domain fronting (ooni/spec `ts-014-meek-fronted-requests.md`; fastpath
/// `score_meek_fronted_requests_test`).
///
/// Each request goes over HTTPS to a front domain with the meek server's name in the Host
/// header. A network failure is blocking. A completed HTTPS exchange whose answer is not the meek
/// server's greeting came from the front CDN itself: the CDN refused to forward (as CloudFront
/// has done since it stopped allowing domain fronting), which is `down`, not blocking — fastpath
/// counts any non-200 as an anomaly. The greeting is ok; fastpath's extra half point for a
/// missing Azure `Server: ECAcc` header is not used (it is CDN-specific and below its own anomaly
/// threshold).
pub(super) fn meek(m: &Measurement, tk: &Value) -> Verdict {
    let reqs = requests(tk);
    if reqs.is_empty() {
        return unclear(vec!["the meek measurement has no fronted requests".into()]);
    }
    let inputs: Vec<String> = match &m.input {
        Some(censorwatch_model::Input::Many(items)) => {
            items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        Some(censorwatch_model::Input::One(s)) => s.split(':').map(str::to_owned).collect(),
        None => Vec::new(),
    };
    let mut reasons = Vec::new();
    let mut evidence = Vec::new();
    let mut refused_by_cdn = Vec::new();
    let mut greeted = 0usize;
    let mut odd = Vec::new();
    for r in &reqs {
        let host = r
            .request_headers
            .and_then(|h| header_value(h, "host"))
            .map(str::to_owned)
            .or_else(|| inputs.get(1).cloned());
        let what = match host {
            Some(h) => format!("{} fronting for {h}", r.describe()),
            None => r.describe(),
        };
        match (&r.failure, r.code()) {
            (Some(f), _) => match unusable(f) {
                Some(why) => odd.push(format!("{what} failed with {f}, but {why}")),
                None => {
                    reasons.push(format!("the fronted request to {what} failed: {f}"));
                    evidence.push((f.clone(), Step::Https));
                }
            },
            (None, Some(200)) if r.body().is_some_and(|b| b.contains(MEEK_GREETING)) => greeted += 1,
            (None, Some(code)) if code != 200 => {
                let server = r
                    .response
                    .and_then(|resp| resp.get("headers"))
                    .and_then(|h| header_value(h, "server"))
                    .map(|s| format!(" (Server: {s})"))
                    .unwrap_or_default();
                refused_by_cdn.push(format!("{what} got HTTP {code}{server}"));
            }
            (None, _) => odd.push(format!("{what} got an answer that is not the meek server's greeting")),
        }
    }
    if !evidence.is_empty() {
        reasons.extend(odd);
        return blocked(common_method(&evidence), 0.7, reasons);
    }
    if !refused_by_cdn.is_empty() {
        let mut r = vec![format!(
            "the HTTPS connection to the front domain worked, but the CDN itself answered instead of forwarding to \
             the meek server: {}",
            list(&refused_by_cdn, 3)
        )];
        r.push(
            "the fronting route is broken at the provider (CDNs such as CloudFront stopped allowing domain \
                fronting), not blocked on the probe's network"
                .into(),
        );
        return down(0.6, r);
    }
    if greeted > 0 && odd.is_empty() {
        return ok(
            0.85,
            vec![format!(
                "the meek server answered through the front domain ({greeted} of {} requests)",
                reqs.len()
            )],
        );
    }
    let mut r = vec!["the meek measurement's answers cannot be read as either working or blocked".to_owned()];
    r.extend(odd);
    unclear(r)
}

/// Psiphon (ooni/spec `ts-015-psiphon.md`; fastpath `score_psiphon`).
///
/// ts-015's table: no failure and a bootstrap time is working; a failure with bootstrap time 0
/// is "error in bootstrapping Psiphon" (blocked); a failure after bootstrapping is "error in
/// using Psiphon" — the tunnel came up, so the tool was reachable and the failure says nothing
/// about blocking (fastpath counts it as an anomaly); no failure and no bootstrap time "should not
/// happen".
pub(super) fn psiphon(_m: &Measurement, tk: &Value) -> Verdict {
    let bt = num_at(tk, "bootstrap_time").unwrap_or(0.0);
    match failure_at(tk, "failure") {
        None if tk.get("failure").is_some_and(Value::is_null) && bt > 0.0 => ok(
            0.85,
            vec![format!(
                "Psiphon bootstrapped in {bt:.1} s and fetched a page through its tunnel"
            )],
        ),
        None => unclear(vec![
            "the Psiphon measurement reports neither a failure nor a bootstrap time (ts-015: \"should not happen\")"
                .into(),
        ]),
        Some(f) if bt > 0.0 => unclear(vec![format!(
            "Psiphon bootstrapped in {bt:.1} s, so it was reachable, but fetching a page through it then failed \
             ({f}); that is not evidence of blocking"
        )]),
        Some(f) => match unusable(&f) {
            Some(why) => unclear(vec![format!("Psiphon could not bootstrap ({f}), but {why}")]),
            None => blocked(None, 0.7, vec![format!("Psiphon could not bootstrap its tunnel: {f}")]),
        },
    }
}

/// RiseupVPN (ooni/spec `ts-026-riseupvpn.md`; fastpath `score_riseupvpn`).
///
/// OONI stopped scoring this test (ooni/backend#745) because its API check mostly caught
/// provider-side trouble (ooni/probe#1354, #2001). Following ts-026, the per-transport status is
/// the main indicator: a transport none of whose gateways accepted a connection, with the API
/// reachable, is blocked. An API failure is blocking only when it is one censors typically cause
/// (NXDOMAIN, reset, refusal); certificate errors and timeouts — the known false positives —
/// are inconclusive.
pub(super) fn riseupvpn(_m: &Measurement, tk: &Value) -> Verdict {
    let api_status = str_at(tk, "api_status");
    let ca_ok = bool_at(tk, "ca_cert_status");
    let transports: Vec<(String, String)> = tk
        .get("transport_status")
        .and_then(Value::as_object)
        .map(|t| {
            t.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    if api_status.is_none() && ca_ok.is_none() && transports.is_empty() {
        return unclear(vec!["the RiseupVPN measurement has no API or transport status".into()]);
    }
    let failed_reqs: Vec<String> = requests(tk)
        .iter()
        .filter_map(|r| Some(format!("{}: {}", r.describe(), r.failure.as_ref()?)))
        .collect();
    let api_failed = api_status == Some("blocked") || ca_ok == Some(false);
    if api_failed {
        let failure = failure_at(tk, "api_failure").or_else(|| requests(tk).into_iter().find_map(|r| r.failure));
        let detail = if failed_reqs.is_empty() {
            failure
                .as_ref()
                .map(|f| f.to_string())
                .unwrap_or_else(|| "no failure recorded".into())
        } else {
            list(&failed_reqs, 3)
        };
        let censor_like = failure.as_ref().filter(|f| {
            matches!(
                super::kind(f),
                censorwatch_model::FailureKind::Nxdomain
                    | censorwatch_model::FailureKind::Reset
                    | censorwatch_model::FailureKind::Refused
            )
        });
        if let Some(f) = censor_like {
            return blocked(
                method_for(f, Step::Https),
                0.5,
                vec![format!("RiseupVPN's API could not be reached: {detail}")],
            );
        }
        let ca = if ca_ok == Some(false) {
            " and no valid CA certificate could be fetched"
        } else {
            ""
        };
        return unclear(vec![
            format!("RiseupVPN's API check failed ({detail}){ca}"),
            "OONI no longer interprets this check (ooni/backend#745): it mostly fails for reasons on Riseup's side, \
             such as certificate changes, so it is not evidence of blocking"
                .into(),
        ]);
    }
    let bad: Vec<&str> = transports
        .iter()
        .filter(|(_, s)| s == "blocked")
        .map(|(t, _)| t.as_str())
        .collect();
    if !bad.is_empty() {
        let gateways: Vec<String> = arr(tk, "failing_gateways")
            .iter()
            .filter(|g| bad.iter().any(|t| str_at(g, "transport_type") == Some(t)))
            .map(|g| {
                let ip = str_at(g, "ip").unwrap_or("?");
                let port = g
                    .get("port")
                    .and_then(Value::as_u64)
                    .map(|p| format!(":{p}"))
                    .unwrap_or_default();
                format!("{ip}{port}")
            })
            .collect();
        let mut r = vec![format!(
            "no RiseupVPN gateway accepted a connection for the {} transport",
            bad.join(" and ")
        )];
        if !gateways.is_empty() {
            r.push(format!("failing gateways: {}", list(&gateways, 5)));
        }
        return blocked(None, 0.6, r);
    }
    if api_status == Some("ok") && !transports.is_empty() {
        let names: Vec<&str> = transports.iter().map(|(t, _)| t.as_str()).collect();
        return ok(
            0.8,
            vec![format!(
                "RiseupVPN's API answered and its {} gateways accepted connections",
                names.join(" and ")
            )],
        );
    }
    unclear(vec![
        "RiseupVPN's API answered, but the measurement has no gateway results".into(),
    ])
}

/// OpenVPN (ooni/spec `ts-040-openvpn.md`; fastpath `score_openvpn`).
///
/// `success` true: the tunnel came up. `success` false: blocked, with the TCP connect's failure
/// when the connection itself failed. `success` missing: inconclusive.
pub(super) fn openvpn(m: &Measurement, tk: &Value) -> Verdict {
    let endpoint = str_at(tk, "remote")
        .map(str::to_owned)
        .or_else(|| {
            arr(tk, "openvpn_handshake")
                .iter()
                .find_map(|h| str_at(h, "endpoint").map(str::to_owned))
        })
        .or_else(|| m.input_str().map(str::to_owned))
        .unwrap_or_else(|| "the OpenVPN server".into());
    match bool_at(tk, "success") {
        Some(true) => ok(0.85, vec![format!("an OpenVPN tunnel to {endpoint} came up")]),
        Some(false) => {
            let tcp_failure = connects(tk.get("tcp_connect")).into_iter().find_map(|c| c.failure);
            let handshake_failure = arr(tk, "openvpn_handshake")
                .iter()
                .find_map(|h| failure_at(h, "failure"));
            let failure = tcp_failure
                .clone()
                .or(handshake_failure)
                .or_else(|| failure_at(tk, "failure"));
            let Some(f) = failure else {
                return blocked(
                    None,
                    0.5,
                    vec![format!(
                        "the OpenVPN handshake with {endpoint} did not succeed (no failure recorded)"
                    )],
                );
            };
            if let Some(why) = unusable(&f) {
                return unclear(vec![format!(
                    "the OpenVPN handshake with {endpoint} failed ({f}), but {why}"
                )]);
            }
            let (step, stage) = if tcp_failure.is_some() {
                (Step::Tcp, "connecting to")
            } else {
                (Step::Unknown, "the OpenVPN handshake with")
            };
            blocked(
                method_for(&f, step),
                0.7,
                vec![format!("{stage} {endpoint} failed: {f}")],
            )
        }
        None => unclear(vec![
            "the OpenVPN measurement does not say whether the tunnel came up".into(),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{mentions, run};
    use super::super::verdict;
    use censorwatch_model::{Measurement, Method, Status};
    use serde_json::{Value, json};

    fn target(addr: &str, protocol: &str, failure: Option<&str>) -> Value {
        json!({"target_address": addr, "target_protocol": protocol, "failure": failure,
               "tcp_connect": [{"ip": addr.split(':').next().unwrap(), "port": 443,
                   "status": {"success": failure.is_none(), "failure": failure}}]})
    }

    #[test]
    fn tor_rules() {
        let v = run(
            "tor",
            json!({"targets": {"a": target("1.1.1.1:9001", "or_port_dirauth", None), "b": target("2.2.2.2:80", "obfs4", None)}}),
        );
        assert_eq!(v.status, Status::Ok, "{v:?}");

        let v = run(
            "tor",
            json!({"targets": {
            "a": target("1.1.1.1:9001", "or_port_dirauth", Some("connection_reset")),
            "b": target("1.1.1.2:9001", "or_port_dirauth", Some("connection_reset")),
            "c": target("2.2.2.2:80", "obfs4", None)}}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::TcpReset));
        assert!(mentions(&v, "1.1.1.2:9001: connection_reset"), "{:?}", v.reasons);

        // One bridge of several failing is not blocking.
        let v = run(
            "tor",
            json!({"targets": {
            "a": target("1.1.1.1:9001", "or_port_dirauth", None), "b": target("1.1.1.2:9001", "or_port_dirauth", None),
            "c": target("2.2.2.2:80", "obfs4", Some("generic_timeout_error"))}}),
        );
        assert_eq!(v.status, Status::Ok, "{v:?}");
        assert!(mentions(&v, "2.2.2.2:80"));

        // Everything timing out with nothing answering: offline.
        let v = run(
            "tor",
            json!({"targets": {
            "a": target("1.1.1.1:9001", "or_port_dirauth", Some("generic_timeout_error")),
            "b": target("2.2.2.2:80", "obfs4", Some("generic_timeout_error"))}}),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");

        let v = run("tor", json!({"targets": [target("1.1.1.1:9001", "dir_port", None)]}));
        assert_eq!(v.status, Status::Inconclusive);
        assert!(mentions(&v, "list"));
        let v = run("tor", json!({"targets": {}}));
        assert_eq!(v.status, Status::Inconclusive);
    }

    #[test]
    fn vanilla_tor_rules() {
        let v = run(
            "vanilla_tor",
            json!({"success": true, "failure": null, "tor_progress": 100, "bootstrap_time": 8.5, "tor_logs": ["Bootstrapped 100% (done): Done"]}),
        );
        assert_eq!(v.status, Status::Ok, "{v:?}");

        let v = run(
            "vanilla_tor",
            json!({"success": false, "failure": "generic_timeout_error", "tor_progress": 5,
            "tor_progress_tag": "conn", "tor_progress_summary": "Connecting to a relay", "timeout": 200,
            "tor_logs": ["Bootstrapped 0% (starting): Starting", "Bootstrapped 5% (conn): Connecting to a relay"]}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, None);
        assert!(
            mentions(&v, "5% (conn: Connecting to a relay)") && mentions(&v, "generic_timeout_error"),
            "{:?}",
            v.reasons
        );
        assert!(v.confidence >= 0.8);

        let late = run(
            "vanilla_tor",
            json!({"success": false, "failure": "generic_timeout_error", "tor_progress": 80, "tor_logs": ["x"]}),
        );
        assert_eq!(late.status, Status::Blocked);
        assert!(late.confidence < v.confidence, "stalling late is weaker evidence");

        // Legacy Python form with nothing recorded (ts-016 previous version).
        let v = run(
            "vanilla_tor",
            json!({"success": null, "tor_log": null, "tor_progress": 0, "error": null}),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        // Never started connecting.
        let v = run(
            "vanilla_tor",
            json!({"success": false, "failure": "generic_timeout_error", "tor_progress": 0, "tor_logs": ["Bootstrapped 0% (starting): Starting"]}),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        assert!(mentions(&v, "never started"));
    }

    #[test]
    fn torsf_rules() {
        assert_eq!(
            run("torsf", json!({"bootstrap_time": 78.9, "failure": null})).status,
            Status::Ok
        );
        let v = run(
            "torsf",
            json!({"bootstrap_time": 0, "failure": "generic_timeout_error"}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert!(mentions(&v, "generic_timeout_error"));
        let v = run(
            "torsf",
            json!({"bootstrap_time": 0, "failure": "generic_timeout_error", "tor_progress": 0, "tor_progress_tag": "starting"}),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        assert_eq!(
            run("torsf", json!({"bootstrap_time": 0, "failure": null})).status,
            Status::Inconclusive
        );

        let m = Measurement::from_slice(
            json!({"test_name": "torsf", "software_name": "ooniprobe-android-unattended", "software_version": "3.8.3",
                   "test_keys": {"bootstrap_time": 0, "failure": "generic_timeout_error", "tor_progress": 10}})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let v = verdict("torsf", &m, &m.test_keys_value().unwrap());
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        assert!(mentions(&v, "3.8.3"));
    }

    fn meek_request(code: Option<i64>, body: &str, failure: Option<&str>) -> Value {
        let response = match code {
            Some(c) => json!({"code": c, "body": body, "headers": {"Server": "CloudFront"}}),
            None => Value::Null,
        };
        json!({"failure": failure, "request": {"url": "https://a0.awsstatic.com", "headers": {"Host": "d2zfqthxsdq309.cloudfront.net"}}, "response": response})
    }

    #[test]
    fn meek_rules() {
        let v = run(
            "meek_fronted_requests_test",
            json!({"requests": [meek_request(Some(200), "I’m just a happy little web server.\n", None)], "success": true}),
        );
        assert_eq!(v.status, Status::Ok, "{v:?}");

        let v = run(
            "meek_fronted_requests_test",
            json!({"requests": [meek_request(None, "", Some("connection_reset"))]}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::TlsReset));
        assert!(
            mentions(&v, "d2zfqthxsdq309.cloudfront.net") && mentions(&v, "connection_reset"),
            "{:?}",
            v.reasons
        );

        let v = run(
            "meek_fronted_requests_test",
            json!({"requests": [meek_request(Some(403), "ERROR: The request could not be satisfied", None)], "success": false}),
        );
        assert_eq!(v.status, Status::Down, "{v:?}");
        assert!(mentions(&v, "HTTP 403 (Server: CloudFront)"), "{:?}", v.reasons);

        assert_eq!(
            run("meek_fronted_requests_test", json!({"requests": []})).status,
            Status::Inconclusive
        );
    }

    #[test]
    fn psiphon_rules() {
        assert_eq!(
            run("psiphon", json!({"bootstrap_time": 6.6, "failure": null})).status,
            Status::Ok
        );
        let v = run(
            "psiphon",
            json!({"bootstrap_time": 0, "failure": "generic_timeout_error"}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert!(mentions(&v, "generic_timeout_error"));
        let v = run("psiphon", json!({"bootstrap_time": 5.0, "failure": "connection_reset"}));
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        assert_eq!(
            run("psiphon", json!({"bootstrap_time": 0, "failure": null})).status,
            Status::Inconclusive
        );
    }

    #[test]
    fn riseupvpn_rules() {
        let v = run(
            "riseupvpn",
            json!({"api_status": "ok", "ca_cert_status": true, "transport_status": {"openvpn": "ok", "obfs4": "ok"}}),
        );
        assert_eq!(v.status, Status::Ok, "{v:?}");

        let v = run(
            "riseupvpn",
            json!({"api_status": "ok", "ca_cert_status": true,
            "transport_status": {"openvpn": "ok", "obfs4": "blocked"},
            "failing_gateways": [{"ip": "192.0.2.1", "port": 23042, "transport_type": "obfs4"}, {"ip": "192.0.2.2", "port": 443, "transport_type": "openvpn"}]}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert!(
            mentions(&v, "obfs4") && mentions(&v, "192.0.2.1:23042") && !mentions(&v, "192.0.2.2"),
            "{:?}",
            v.reasons
        );

        let v = run(
            "riseupvpn",
            json!({"api_status": "blocked", "ca_cert_status": false, "api_failure": null,
            "requests": [{"failure": "ssl_invalid_certificate", "request": {"url": "https://black.riseup.net/ca.crt"}, "response": null}]}),
        );
        assert_eq!(v.status, Status::Inconclusive, "{v:?}");
        assert!(
            mentions(&v, "https://black.riseup.net/ca.crt: ssl_invalid_certificate"),
            "{:?}",
            v.reasons
        );

        let v = run(
            "riseupvpn",
            json!({"api_status": "blocked", "ca_cert_status": true, "api_failure": "dns_nxdomain_error"}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::DnsNxdomain));

        assert_eq!(run("riseupvpn", json!({"failure": null})).status, Status::Inconclusive);
    }

    #[test]
    fn openvpn_rules() {
        let v = run("openvpn", json!({"success": true, "remote": "198.252.153.109:443"}));
        assert_eq!(v.status, Status::Ok, "{v:?}");
        let v = run(
            "openvpn",
            json!({"success": false, "remote": "198.252.153.109:443",
            "tcp_connect": {"ip": "198.252.153.109", "port": 443, "status": {"success": false, "failure": "connection_refused"}}}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert_eq!(v.method, Some(Method::TcpRefused));
        assert!(
            mentions(&v, "198.252.153.109:443") && mentions(&v, "connection_refused"),
            "{:?}",
            v.reasons
        );
        let v = run(
            "openvpn",
            json!({"success": false, "openvpn_handshake": [{"endpoint": "openvpn://1.2.3.4:1194/udp", "failure": "generic_timeout_error"}]}),
        );
        assert_eq!(v.status, Status::Blocked, "{v:?}");
        assert!(mentions(&v, "openvpn://1.2.3.4:1194/udp"), "{:?}", v.reasons);
        assert_eq!(run("openvpn", json!({"failure": null})).status, Status::Inconclusive);
    }
}
