//! The proxy behind a real `nft … redirect` rule, in a network namespace of its own: proves that
//! SO_ORIGINAL_DST (IPv4, through a dual-stack listener) and IP6T_SO_ORIGINAL_DST (IPv6) give the
//! address the client dialled, with no fallback upstream configured. Needs root (CI runs as
//! root); without it the test says so and returns. The namespace (`cwc-…`) is deleted by a Drop
//! guard even when the test fails, and the test checks it is gone.

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::process::Command;
use std::time::Duration;

use censorwatch_censor::sniff::build::client_hello;
use censorwatch_censor::{Action, DpiConfig, DpiStats, FlowRule, Layer, NameMatch, serve_dpi};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket};

const PROXY_PORT: u16 = 15001;

/// Deletes the named namespace (and with it its addresses and nftables tables) when dropped.
struct NetnsGuard(String);

impl NetnsGuard {
    fn create(name: &str) -> NetnsGuard {
        // A leftover from a killed earlier run would make `add` fail: remove it first.
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        run("ip", &["netns", "add", name]);
        NetnsGuard(name.to_owned())
    }

    fn exec(&self, program: &str, args: &[&str]) {
        let mut full = vec!["netns", "exec", &self.0, program];
        full.extend_from_slice(args);
        run("ip", &full);
    }

    fn exec_with_input(&self, program: &str, args: &[&str], input: &str) {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0, program])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("ip netns exec {program}: {e}"));
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn namespace_exists(name: &str) -> bool {
    let output = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .any(|line| line.split_whitespace().next() == Some(name))
}

#[test]
fn nft_redirect_reaches_the_original_destination_v4_and_v6() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root for network namespaces (CI runs as root)");
        return;
    }
    let name = format!("cwc-dpi-{}", std::process::id());
    let netns = NetnsGuard::create(&name);
    netns.exec("ip", &["link", "set", "lo", "up"]);
    for (family, address) in [
        ("-4", "192.0.2.1/24"),
        ("-4", "192.0.2.2/24"),
        ("-6", "2001:db8::1/64"),
        ("-6", "2001:db8::2/64"),
    ] {
        let mut args = vec![family, "addr", "add", address, "dev", "lo"];
        if family == "-6" {
            args.push("nodad");
        }
        netns.exec("ip", &args);
    }
    // Only the client's source addresses are redirected, so the proxy's own upstream
    // connections (sourced from the destination address itself) are not.
    let ruleset = format!(
        "table ip cwc {{\n  chain out {{\n    type nat hook output priority -100; policy accept;\n    \
         ip saddr 192.0.2.2 tcp dport 443 redirect to :{PROXY_PORT}\n  }}\n}}\n\
         table ip6 cwc {{\n  chain out {{\n    type nat hook output priority -100; policy accept;\n    \
         ip6 saddr 2001:db8::2 tcp dport 443 redirect to :{PROXY_PORT}\n  }}\n}}\n"
    );
    netns.exec_with_input("nft", &["-f", "-"], &ruleset);

    let netns_path = format!("/run/netns/{name}");
    let outcome = std::thread::spawn(move || {
        // Sockets belong to the namespace of the thread that creates them: move this thread in,
        // then run every socket of the test on it.
        let file = std::fs::File::open(&netns_path).unwrap();
        rustix::thread::move_into_link_name_space(file.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))
            .unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(exercise())
    })
    .join();

    drop(netns);
    assert!(!namespace_exists(&name), "namespace {name} left behind");
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn exercise() {
    // The "real" servers: each says which address it was reached on, then echoes.
    for addr in ["192.0.2.1:443", "[2001:db8::1]:443"] {
        let listener = TcpListener::bind(addr).await.unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let here = stream.local_addr().unwrap();
                    let _ = stream.write_all(format!("reached {here}\n").as_bytes()).await;
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
    }
    // One dual-stack listener: IPv4 clients arrive as v4-mapped addresses.
    let listener = TcpListener::bind(("::", PROXY_PORT)).await.unwrap();
    let stats = DpiStats::new();
    let config = DpiConfig {
        rules: vec![FlowRule::always(NameMatch::exact("x.com"), Layer::Sni, Action::Reset)],
        fallback_upstream: None,
        sniff_timeout: Duration::from_secs(2),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let proxy = tokio::spawn(serve_dpi(listener, config, stats.clone(), async {
        let _ = stopped.await;
    }));

    for (source, destination) in [
        ("192.0.2.2:0", "192.0.2.1:443"),
        ("[2001:db8::2]:0", "[2001:db8::1]:443"),
    ] {
        let source: SocketAddr = source.parse().unwrap();
        let destination: SocketAddr = destination.parse().unwrap();
        let connect = || async {
            let socket = if source.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }
            .unwrap();
            socket.bind(source).unwrap();
            socket.connect(destination).await.unwrap()
        };
        // Forwarded to the address the client dialled.
        let mut client = connect().await;
        let hello = client_hello(Some("example.org"));
        client.write_all(&hello).await.unwrap();
        let banner = format!("reached {destination}\n");
        let mut got = vec![0u8; banner.len() + hello.len()];
        tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            &got[..banner.len()],
            banner.as_bytes(),
            "forwarded to the original destination"
        );
        assert!(got[banner.len()..] == hello[..], "echo through the proxy");
        // Matched and reset: proves the flow really went through the proxy.
        let mut blocked = connect().await;
        blocked.write_all(&client_hello(Some("x.com"))).await.unwrap();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(5), blocked.read(&mut buf))
            .await
            .unwrap();
        assert_eq!(read.map_err(|e| e.kind()), Err(std::io::ErrorKind::ConnectionReset));
    }
    let snapshot = stats.snapshot();
    assert_eq!(
        (snapshot.forwarded, snapshot.reset, snapshot.flows_no_destination),
        (2, 2, 0)
    );
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), proxy)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
