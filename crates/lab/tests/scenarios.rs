//! End to end, as root: each scenario on a fresh lab (set up, probe, assert the verdict's status
//! and method, tear down), then a check that nothing of the lab is left — no `cw<pid>-` namespace,
//! no lab thread, no child process. Tests share one mutex: each builds its own topology, and the
//! leak check looks at the whole process.
//!
//! Without root these tests say so and return (CI runs as root, so there they run).

use censorwatch_lab::netns::{self, list_namespaces, live_lab_threads};
use censorwatch_lab::scenario::{self, Scenario};
use censorwatch_lab::{Lab, LabOptions, run_scenario};
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

fn root_or_skip() -> bool {
    if netns::is_root() {
        return true;
    }
    eprintln!("SKIPPED: the lab tests need root (network namespaces); CI runs them as root");
    false
}

/// Children of this process (from /proc/*/stat's ppid field).
fn child_processes() -> Vec<u32> {
    let me = std::process::id();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …: comm may hold spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        if rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(me) {
            out.push(pid);
        }
    }
    out
}

/// Nothing of this process's labs is left.
fn assert_clean() {
    let prefix = netns::process_prefix();
    let left: Vec<String> = list_namespaces()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    let threads = live_lab_threads();
    assert!(threads.is_empty(), "lab threads left running: {threads:?}");
    let children = child_processes();
    assert!(children.is_empty(), "child processes left: {children:?}");
    // No veth of ours in the host's namespace either (the lab never creates one there).
    let links = std::process::Command::new("ip").args(["-o", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(!links.contains("cw-"), "lab interfaces in the host namespace: {links}");
}

fn check(name: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if !root_or_skip() {
        return;
    }
    let scenario: Scenario = scenario::find(name).expect("a scenario of the catalogue");
    let result = {
        let mut lab = Lab::new(
            &[censorwatch_lab::IspLabel::new("Lab ISP", 64496, "PK")],
            LabOptions::default(),
        )
        .expect("the lab builds");
        let r = run_scenario(&mut lab, 0, &scenario);
        lab.shutdown().expect("the lab tears down");
        r
    };
    assert_clean();
    assert!(result.error.is_none(), "{name}: {:?}", result.error);
    let v = result.verdict().expect("a verdict");
    assert!(
        result.pass,
        "{name}: expected {}, got {} ({:?}); all: {:?}",
        scenario.expected.label(),
        scenario::label(v.status, v.method),
        v.reasons,
        result
            .verdicts
            .iter()
            .map(|v| scenario::label(v.status, v.method))
            .collect::<Vec<_>>()
    );
}

#[test]
fn clean() {
    check("clean");
}

#[test]
fn dns_nxdomain() {
    check("dns-nxdomain");
}

#[test]
fn dns_bogon() {
    check("dns-bogon");
}

#[test]
fn dns_blockpage() {
    check("dns-blockpage");
}

#[test]
fn dns_injection() {
    check("dns-injection");
}

#[test]
fn ip_blackhole() {
    check("ip-blackhole");
}

#[test]
fn tcp_reset() {
    check("tcp-reset");
}

#[test]
fn sni_reset() {
    check("sni-reset");
}

#[test]
fn sni_blackhole() {
    check("sni-blackhole");
}

#[test]
fn sni_fin() {
    check("sni-fin");
}

#[test]
fn http_host_reset() {
    check("http-host-reset");
}

#[test]
fn http_blockpage() {
    check("http-blockpage");
}

#[test]
fn quic_blocked() {
    check("quic-blocked");
}

#[test]
fn sni_throttle() {
    check("sni-throttle");
}

#[test]
fn intermittent() {
    check("intermittent");
}

#[test]
fn website_down() {
    check("website-down");
}

#[test]
fn geoblock_captcha() {
    check("geoblock-captcha");
}
