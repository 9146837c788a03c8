//! Network namespaces as the lab uses them: the `ip`/`nft` commands that build and configure them,
//! a registry of the namespaces this process created (so a SIGINT handler or a panic can delete
//! them), a sweep of namespaces left by dead processes, and [`NsThread`] — a thread living inside one
//! namespace with a tokio runtime, on which the lab runs its servers, censors and the probe.
//!
//! Why threads and not `ip netns exec` subprocesses: a socket belongs to the network namespace of
//! the thread that creates it, so a thread that has called `setns(CLONE_NEWNET)` on itself and then
//! builds a current-thread tokio runtime creates every socket of every task spawned on that runtime
//! inside the namespace. Servers stay in-process (shared state, no binaries to find, no processes to
//! leak), and stopping a thread closes all its sockets.
//!
//! Names: every namespace is `cw<pid>-<lab>-<role>`, so parallel runs never collide and leftovers say
//! which process made them. Veths are created inside the namespaces (never in the host's), so
//! deleting the namespaces deletes the veths and their nftables tables with them.

use std::collections::BTreeSet;
use std::future::Future;
use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// Something the lab could not do.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Not running as root.
    #[error(
        "the lab needs root (it creates network namespaces, veth pairs and nftables rules); run it with sudo, or as root in a container with CAP_NET_ADMIN and CAP_SYS_ADMIN"
    )]
    NotRoot,
    /// A required tool is not installed.
    #[error(
        "`{tool}` is not installed or not runnable ({reason}); install iproute2 and nftables (scripts/system-deps does)"
    )]
    ToolMissing {
        /// The program.
        tool: String,
        /// What the OS said.
        reason: String,
    },
    /// A command failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A namespace thread could not start or died.
    #[error("namespace {namespace}: {reason}")]
    Namespace {
        /// The namespace.
        namespace: String,
        /// What went wrong.
        reason: String,
    },
    /// Some other I/O failure.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Whether the effective user is root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `Ok` for root, [`LabError::NotRoot`] for anyone else (`euid` as given: testable without root).
pub fn require_root(euid_is_root: bool) -> Result<(), LabError> {
    if euid_is_root { Ok(()) } else { Err(LabError::NotRoot) }
}

/// Runs `program args…`, feeding `stdin` if given; fails with its stderr.
pub fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), LabError> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| LabError::ToolMissing {
        tool: program.to_owned(),
        reason: e.to_string(),
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(|e| LabError::Io {
            what: format!("writing to {program}"),
            source: e,
        })?;
    }
    let out = child.wait_with_output().map_err(|e| LabError::Io {
        what: format!("waiting for {program}"),
        source: e,
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Command {
            command: format!("{program} {}", args.join(" ")),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Runs `ip args…`.
pub fn ip(args: &[&str]) -> Result<(), LabError> {
    run("ip", args, None)
}

/// Loads an nftables ruleset (`nft -f -`) inside `namespace`.
pub fn nft(namespace: &str, ruleset: &str) -> Result<(), LabError> {
    run("ip", &["netns", "exec", namespace, "nft", "-f", "-"], Some(ruleset))
}

/// Sets a sysctl inside `namespace`.
pub fn sysctl(namespace: &str, key_value: &str) -> Result<(), LabError> {
    run(
        "ip",
        &["netns", "exec", namespace, "sysctl", "-q", "-w", key_value],
        None,
    )
}

/// Namespaces this process created and has not deleted yet.
static REGISTRY: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn registry() -> std::sync::MutexGuard<'static, BTreeSet<String>> {
    // A panic while holding the lock leaves a set that is still correct.
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The name prefix of this process's namespaces: `cw<pid>-`.
pub fn process_prefix() -> String {
    format!("cw{}-", std::process::id())
}

/// Creates namespace `name`, registered for deletion before it exists (a crash in between leaves
/// nothing unregistered).
pub fn add_namespace(name: &str) -> Result<(), LabError> {
    registry().insert(name.to_owned());
    let result = ip(&["netns", "add", name]);
    if result.is_err() {
        registry().remove(name);
    }
    result
}

/// Deletes namespace `name` (its veths and nftables tables go with it).
pub fn delete_namespace(name: &str) -> Result<(), LabError> {
    let result = ip(&["netns", "delete", name]);
    registry().remove(name);
    result
}

/// Deletes every namespace this process created and still holds. For a SIGINT handler: it does
/// not stop the threads inside them (the process is about to exit, which does).
pub fn delete_all_registered() -> Vec<String> {
    let names: Vec<String> = registry().iter().cloned().collect();
    for name in &names {
        let _ = delete_namespace(name);
    }
    names
}

/// The namespaces that exist now (`ip netns list`).
pub fn list_namespaces() -> Vec<String> {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return Vec::new();
    };
    parse_netns_list(&String::from_utf8_lossy(&out.stdout))
}

/// Names from `ip netns list` output (`name` or `name (id: N)` per line).
pub fn parse_netns_list(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The pid in a lab namespace name `cw<pid>-…`, or `None` for any other name.
pub fn lab_namespace_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("cw")?;
    let (pid, tail) = rest.split_once('-')?;
    if tail.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Deletes lab namespaces whose process is gone (a run killed with SIGKILL cannot clean up after
/// itself). Returns the names deleted.
pub fn sweep_stale() -> Vec<String> {
    let mut swept = Vec::new();
    for name in list_namespaces() {
        let Some(pid) = lab_namespace_pid(&name) else { continue };
        let alive = pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists();
        if !alive && ip(&["netns", "delete", &name]).is_ok() {
            swept.push(name);
        }
    }
    swept
}

/// A thread inside a network namespace, running a current-thread tokio runtime until dropped.
pub struct NsThread {
    namespace: String,
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for NsThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NsThread").field("namespace", &self.namespace).finish()
    }
}

/// The prefix of every lab thread's name (`/proc/self/task/*/comm`), so tests can check none is left.
pub const THREAD_PREFIX: &str = "cwlab-";

impl NsThread {
    /// Starts a thread named `cwlab-<label>` inside `namespace` (which must exist).
    pub fn start(namespace: &str, label: &str) -> Result<NsThread, LabError> {
        let path = format!("/run/netns/{namespace}");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let ns_name = namespace.to_owned();
        let thread = std::thread::Builder::new()
            .name(format!("{THREAD_PREFIX}{label}"))
            .spawn(move || {
                let entered = std::fs::File::open(&path).and_then(|f| {
                    rustix::thread::move_into_link_name_space(
                        f.as_fd(),
                        Some(rustix::thread::LinkNameSpaceType::Network),
                    )
                    .map_err(std::io::Error::from)
                });
                let runtime = entered.and_then(|()| tokio::runtime::Builder::new_current_thread().enable_all().build());
                let runtime = match runtime {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
                let _ = ready_tx.send(Ok((runtime.handle().clone(), stop_tx)));
                runtime.block_on(async {
                    let _ = stop_rx.await;
                });
                // Tasks still running (servers) are cancelled; their sockets close.
                runtime.shutdown_timeout(Duration::from_secs(2));
            })
            .map_err(|e| LabError::Namespace {
                namespace: ns_name.clone(),
                reason: format!("cannot start a thread: {e}"),
            })?;
        match ready_rx.recv() {
            Ok(Ok((handle, stop))) => Ok(NsThread {
                namespace: ns_name,
                handle,
                stop: Some(stop),
                thread: Some(thread),
            }),
            Ok(Err(reason)) => {
                let _ = thread.join();
                Err(LabError::Namespace {
                    namespace: ns_name,
                    reason: format!("cannot enter it: {reason}"),
                })
            }
            Err(_) => {
                let _ = thread.join();
                Err(LabError::Namespace {
                    namespace: ns_name,
                    reason: "its thread died while starting".into(),
                })
            }
        }
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Spawns `future` inside the namespace (sockets it creates are the namespace's).
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Runs `future` inside the namespace and waits for it (from outside any runtime).
    pub fn block_on<F>(&self, future: F) -> Result<F::Output, LabError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        self.handle.spawn(async move {
            let _ = tx.send(future.await);
        });
        rx.recv().map_err(|_| LabError::Namespace {
            namespace: self.namespace.clone(),
            reason: "a task panicked or the namespace thread stopped".into(),
        })
    }
}

impl Drop for NsThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Names of this process's threads that start with [`THREAD_PREFIX`] (from `/proc/self/task`).
pub fn live_lab_threads() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| s.starts_with(THREAD_PREFIX))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_check_is_an_error_for_anyone_else() {
        assert!(require_root(true).is_ok());
        let e = require_root(false).unwrap_err();
        assert!(matches!(e, LabError::NotRoot));
        assert!(e.to_string().contains("needs root"));
    }

    #[test]
    fn lab_namespace_names_carry_the_pid() {
        assert_eq!(lab_namespace_pid("cw1234-0-client0"), Some(1234));
        assert_eq!(lab_namespace_pid("cw1-x"), Some(1));
        assert_eq!(lab_namespace_pid("cw-1-x"), None);
        assert_eq!(lab_namespace_pid("cw12a-x"), None);
        assert_eq!(lab_namespace_pid("cw12-"), None);
        assert_eq!(lab_namespace_pid("other"), None);
        assert_eq!(lab_namespace_pid("cwtest"), None);
    }

    #[test]
    fn netns_list_with_and_without_ids() {
        let text = "cw1-0-inet (id: 2)\ncw1-0-isp0 (id: 1)\nplain\n\n";
        assert_eq!(parse_netns_list(text), vec!["cw1-0-inet", "cw1-0-isp0", "plain"]);
    }
}
