//! What one ISP's censor does, as data: kernel rules (nftables drop / reject-with-reset on the
//! router's forward path), and the userspace censor's DPI and DNS rules (`censorwatch-censor`),
//! which the router's nftables redirect the client's traffic to. Rendering the nftables ruleset is
//! pure and tested here; [`crate::Lab::apply`] loads it.
//!
//! Only traffic from the client side (`iifname cw-down`) is touched, and never traffic to the lab
//! infrastructure (10.77.200.0/24: the control's path is uncensored) — except by a blackout, which
//! emulates a network gone dark. The DPI and DNS redirects
//! are installed only when the censor has rules for them, so a flow nobody filters reaches its
//! server with the client's own address (the geoblock scenario depends on it).

use crate::topology::{RESOLVER, ROUTER_DOWN_IF};
use censorwatch_censor::{DnsRule, FlowRule};
use std::net::Ipv4Addr;

/// The port the DPI proxy listens on inside each router namespace.
pub const DPI_PORT: u16 = 10080;
/// The port the DNS censor listens on inside each router namespace.
pub const DNS_PORT: u16 = 10053;
/// The nftables table the lab owns in each router namespace.
pub const TABLE: &str = "cw_censor";
/// The lab infrastructure prefix (resolver, control), never filtered.
pub const INFRA: &str = "10.77.200.0/24";

/// A kernel-level rule on the router's forward path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacketRule {
    /// Drop every packet to this address (IP blackhole: connects time out).
    DropAddress(Ipv4Addr),
    /// Answer TCP to this address with a reset (connects are refused).
    ResetTcp(Ipv4Addr),
    /// Drop UDP to this port (QUIC blocking when 443).
    DropUdpPort(u16),
    /// Drop everything from the clients, the lab infrastructure included (a network gone dark).
    Blackout,
}

/// One ISP's censor.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Censor {
    /// Kernel rules.
    pub packets: Vec<PacketRule>,
    /// DPI rules (the transparent proxy sees TCP 80 and 443).
    pub dpi: Vec<FlowRule>,
    /// DNS rules (the DNS censor answers queries to the lab resolver).
    pub dns: Vec<DnsRule>,
}

impl Censor {
    /// No censorship.
    pub fn none() -> Censor {
        Censor::default()
    }

    /// Whether it does nothing.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty() && self.dpi.is_empty() && self.dns.is_empty()
    }

    /// The nftables ruleset (for `nft -f -`): creates the table, empties it, and fills it, so
    /// loading it again replaces the previous censor atomically.
    pub fn nft_ruleset(&self) -> String {
        let mut s = String::new();
        s.push_str(&format!(
            "table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n"
        ));
        s.push_str("  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n");
        if !self.dns.is_empty() {
            s.push_str(&format!(
                "    iifname \"{ROUTER_DOWN_IF}\" ip daddr {RESOLVER} udp dport 53 redirect to :{DNS_PORT}\n"
            ));
        }
        if !self.dpi.is_empty() {
            s.push_str(&format!(
                "    iifname \"{ROUTER_DOWN_IF}\" ip daddr != {INFRA} tcp dport {{ 80, 443 }} redirect to :{DPI_PORT}\n"
            ));
        }
        s.push_str("  }\n");
        s.push_str("  chain forward {\n    type filter hook forward priority filter; policy accept;\n");
        for rule in &self.packets {
            let line = match rule {
                PacketRule::DropAddress(ip) => format!("iifname \"{ROUTER_DOWN_IF}\" ip daddr {ip} drop"),
                PacketRule::ResetTcp(ip) => {
                    format!("iifname \"{ROUTER_DOWN_IF}\" ip daddr {ip} meta l4proto tcp reject with tcp reset")
                }
                PacketRule::DropUdpPort(port) => {
                    format!("iifname \"{ROUTER_DOWN_IF}\" ip daddr != {INFRA} udp dport {port} drop")
                }
                PacketRule::Blackout => format!("iifname \"{ROUTER_DOWN_IF}\" drop"),
            };
            s.push_str(&format!("    {line}\n"));
        }
        s.push_str("  }\n}\n");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use censorwatch_censor::{Action, DnsAction, Layer, NameMatch};

    #[test]
    fn clean_censor_has_empty_chains() {
        let r = Censor::none().nft_ruleset();
        assert!(r.starts_with("table inet cw_censor\ndelete table inet cw_censor\n"));
        assert!(!r.contains("redirect"));
        assert!(!r.contains("drop"));
        assert!(Censor::none().is_empty());
    }

    #[test]
    fn redirects_only_for_the_censor_parts_in_use() {
        let c = Censor {
            dns: vec![DnsRule::always(NameMatch::exact("x.com"), DnsAction::NxDomain)],
            ..Censor::none()
        };
        let r = c.nft_ruleset();
        assert!(r.contains("ip daddr 10.77.200.53 udp dport 53 redirect to :10053"));
        assert!(!r.contains(":10080"));
        let c = Censor {
            dpi: vec![FlowRule::always(NameMatch::exact("x.com"), Layer::Sni, Action::Reset)],
            ..Censor::none()
        };
        let r = c.nft_ruleset();
        assert!(r.contains("ip daddr != 10.77.200.0/24 tcp dport { 80, 443 } redirect to :10080"));
        assert!(!r.contains(":10053"));
    }

    #[test]
    fn packet_rules_render_on_the_client_side_only() {
        let ip = Ipv4Addr::new(104, 244, 42, 1);
        let c = Censor {
            packets: vec![
                PacketRule::DropAddress(ip),
                PacketRule::ResetTcp(ip),
                PacketRule::DropUdpPort(443),
                PacketRule::Blackout,
            ],
            ..Censor::none()
        };
        let r = c.nft_ruleset();
        assert!(r.contains("iifname \"cw-down\" ip daddr 104.244.42.1 drop\n"));
        assert!(r.contains("ip daddr 104.244.42.1 meta l4proto tcp reject with tcp reset"));
        assert!(r.contains("ip daddr != 10.77.200.0/24 udp dport 443 drop"));
        assert!(r.contains("    iifname \"cw-down\" drop\n"));
        assert_eq!(r.matches("iifname").count(), 4);
    }
}
