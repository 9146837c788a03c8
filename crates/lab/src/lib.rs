//! censorwatch's censorship lab: emulated ISPs in Linux network namespaces, each with a censor
//! (nftables drop / reject / redirect, and `censorwatch-censor`'s userspace DPI proxy and lying
//! DNS resolver), in front of an emulated internet (a DNS server, websites under a lab CA, a
//! blockpage server, a site that is down, a site that geoblocks, and the control server); and the
//! scenario suite that runs censorwatch's probe through each technique and checks the verdict.
//!
//! Layout: [`topology`] (the namespaces and addresses, pure), [`netns`] (commands, namespace
//! threads, cleanup registry), [`hosts`] (the lab's internet), [`censor`] (a censor as data and its
//! nftables ruleset), [`lab`] (a running lab), [`scenario`] (the catalogue, pure), [`suite`]
//! (running and reporting), [`replay`] (multi-ISP replays on a compressed clock, with ground truth).
//!
//! What it refuses to do: run outside a test or the `censorwatch lab` command, touch the host's
//! own network namespace (everything it creates lives in `cw<pid>-…` namespaces), or leave anything
//! behind — see [`Lab`] for the cleanup guarantees. It needs root.

pub mod censor;
pub mod hosts;
pub mod lab;
pub mod netns;
pub mod replay;
pub mod scenario;
pub mod suite;
pub mod topology;

pub use censor::{Censor, PacketRule};
pub use lab::{Lab, LabOptions, install_signal_cleanup};
pub use netns::LabError;
pub use scenario::{Expected, Judge, Scenario};
pub use suite::{ScenarioResult, render_tables, run_all, run_scenario};
pub use topology::IspLabel;
