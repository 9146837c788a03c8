//! The lab's network: per emulated ISP a *client* namespace (where the probe runs) behind a
//! *router* namespace (the ISP, where the censor lives), all routers joined to one *internet*
//! namespace holding the lab's hosts. The plan (names, addresses, the `ip` commands) is pure and
//! tested without root; [`crate::Lab`] carries it out.
//!
//! ```text
//!  client0 (10.77.10.2) ── router0 (10.77.10.1 | 10.77.100.2) ──┐
//!  client1 (10.77.11.2) ── router1 (10.77.11.1 | 10.77.101.2) ──┼── internet (10.77.100+i.1, lab hosts)
//!  …                                                            ┘
//! ```
//!
//! Addresses: links in 10.77.0.0/16 (client subnet `10.77.{10+i}.0/24`, uplink `10.77.{100+i}.0/24`),
//! lab infrastructure (resolver, control) on the internet namespace's loopback in 10.77.200.0/24,
//! and the websites on *public-looking* addresses (see [`crate::hosts::SITES`]) that exist only
//! inside the lab: the verdict engine treats private answers as bogons, so a site on 10.x could not
//! be told from a censor's bogon answer. IPv4 only (no IPv6 yet).

use std::net::Ipv4Addr;

/// Most ISPs one lab holds (the client and uplink subnets are numbered from 10 and 100).
pub const MAX_ISPS: usize = 80;
/// The lab's DNS resolver (in the internet namespace; each ISP's DNS censor intercepts it).
pub const RESOLVER: Ipv4Addr = Ipv4Addr::new(10, 77, 200, 53);
/// The control server (in the internet namespace, never censored).
pub const CONTROL: Ipv4Addr = Ipv4Addr::new(10, 77, 200, 80);
/// The port the control listens on.
pub const CONTROL_PORT: u16 = 80;

/// An emulated ISP's identity: what the control's `/whoami` tells probes behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IspLabel {
    /// Short name (PTCL, Jazz, …).
    pub name: String,
    /// AS number.
    pub asn: u32,
    /// Two-letter country.
    pub cc: String,
}

impl IspLabel {
    /// A label.
    pub fn new(name: &str, asn: u32, cc: &str) -> IspLabel {
        IspLabel {
            name: name.to_owned(),
            asn,
            cc: cc.to_owned(),
        }
    }
}

/// One ISP's namespaces and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IspPlan {
    /// Its identity.
    pub label: IspLabel,
    /// The client namespace.
    pub client_ns: String,
    /// The router (censor) namespace.
    pub router_ns: String,
    /// The client's address.
    pub client_ip: Ipv4Addr,
    /// The router's address on the client side (the client's gateway).
    pub router_client_ip: Ipv4Addr,
    /// The router's address on the internet side.
    pub router_uplink_ip: Ipv4Addr,
    /// The internet namespace's address facing this router.
    pub internet_ip: Ipv4Addr,
    /// The internet namespace's interface to this router.
    pub internet_if: String,
}

/// Interface names inside the namespaces (short: Linux allows 15 bytes).
pub const CLIENT_IF: &str = "cw-up";
/// The router's interface facing its client.
pub const ROUTER_DOWN_IF: &str = "cw-down";
/// The router's interface facing the internet.
pub const ROUTER_UP_IF: &str = "cw-up";

/// Everything to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Prefix of every namespace name: `cw<pid>-<lab>-`.
    pub prefix: String,
    /// The internet namespace.
    pub internet_ns: String,
    /// The ISPs.
    pub isps: Vec<IspPlan>,
    /// Addresses put on the internet namespace's loopback (infrastructure and websites).
    pub internet_addrs: Vec<Ipv4Addr>,
}

impl Plan {
    /// Plans a lab named `prefix` (e.g. `cw123-0-`) with `isps`, hosting `internet_addrs`.
    pub fn new(prefix: &str, isps: &[IspLabel], internet_addrs: &[Ipv4Addr]) -> Result<Plan, String> {
        if isps.is_empty() || isps.len() > MAX_ISPS {
            return Err(format!("a lab holds 1 to {MAX_ISPS} ISPs, not {}", isps.len()));
        }
        let isps = isps
            .iter()
            .enumerate()
            .map(|(i, label)| {
                let c = 10 + i as u8;
                let u = 100 + i as u8;
                IspPlan {
                    label: label.clone(),
                    client_ns: format!("{prefix}client{i}"),
                    router_ns: format!("{prefix}isp{i}"),
                    client_ip: Ipv4Addr::new(10, 77, c, 2),
                    router_client_ip: Ipv4Addr::new(10, 77, c, 1),
                    router_uplink_ip: Ipv4Addr::new(10, 77, u, 2),
                    internet_ip: Ipv4Addr::new(10, 77, u, 1),
                    internet_if: format!("cw-isp{i}"),
                }
            })
            .collect();
        let mut addrs = vec![RESOLVER, CONTROL];
        addrs.extend(
            internet_addrs
                .iter()
                .copied()
                .filter(|a| *a != RESOLVER && *a != CONTROL),
        );
        Ok(Plan {
            prefix: prefix.to_owned(),
            internet_ns: format!("{prefix}inet"),
            isps,
            internet_addrs: addrs,
        })
    }

    /// Every namespace, internet first.
    pub fn namespaces(&self) -> Vec<String> {
        let mut out = vec![self.internet_ns.clone()];
        for isp in &self.isps {
            out.push(isp.router_ns.clone());
            out.push(isp.client_ns.clone());
        }
        out
    }

    /// The `ip` commands (arguments after `ip`) that wire the namespaces once they exist.
    pub fn ip_commands(&self) -> Vec<Vec<String>> {
        let mut cmds: Vec<Vec<String>> = Vec::new();
        let mut c = |args: &[&str]| cmds.push(args.iter().map(|s| s.to_string()).collect());
        let inet = self.internet_ns.as_str();
        c(&["-n", inet, "link", "set", "lo", "up"]);
        for a in &self.internet_addrs {
            c(&["-n", inet, "addr", "add", &format!("{a}/32"), "dev", "lo"]);
        }
        for isp in &self.isps {
            let (cl, r) = (isp.client_ns.as_str(), isp.router_ns.as_str());
            c(&[
                "-n",
                cl,
                "link",
                "add",
                CLIENT_IF,
                "type",
                "veth",
                "peer",
                "name",
                ROUTER_DOWN_IF,
                "netns",
                r,
            ]);
            c(&[
                "-n",
                r,
                "link",
                "add",
                ROUTER_UP_IF,
                "type",
                "veth",
                "peer",
                "name",
                &isp.internet_if,
                "netns",
                inet,
            ]);
            c(&[
                "-n",
                cl,
                "addr",
                "add",
                &format!("{}/24", isp.client_ip),
                "dev",
                CLIENT_IF,
            ]);
            c(&[
                "-n",
                r,
                "addr",
                "add",
                &format!("{}/24", isp.router_client_ip),
                "dev",
                ROUTER_DOWN_IF,
            ]);
            c(&[
                "-n",
                r,
                "addr",
                "add",
                &format!("{}/24", isp.router_uplink_ip),
                "dev",
                ROUTER_UP_IF,
            ]);
            c(&[
                "-n",
                inet,
                "addr",
                "add",
                &format!("{}/24", isp.internet_ip),
                "dev",
                &isp.internet_if,
            ]);
            for (ns, dev) in [
                (cl, "lo"),
                (cl, CLIENT_IF),
                (r, "lo"),
                (r, ROUTER_DOWN_IF),
                (r, ROUTER_UP_IF),
                (inet, isp.internet_if.as_str()),
            ] {
                c(&["-n", ns, "link", "set", dev, "up"]);
            }
            c(&[
                "-n",
                cl,
                "route",
                "add",
                "default",
                "via",
                &isp.router_client_ip.to_string(),
            ]);
            c(&["-n", r, "route", "add", "default", "via", &isp.internet_ip.to_string()]);
            let subnet = Ipv4Addr::from(u32::from(isp.client_ip) & 0xffff_ff00);
            c(&[
                "-n",
                inet,
                "route",
                "add",
                &format!("{subnet}/24"),
                "via",
                &isp.router_uplink_ip.to_string(),
            ]);
        }
        cmds
    }

    /// The IP → ASN table the control reads (ip-location-db `start,end,asn,org`): each ISP's client
    /// subnet with its label.
    pub fn asn_table(&self) -> String {
        let mut out = String::new();
        for isp in &self.isps {
            let (start, end) = client_range(isp);
            out.push_str(&format!(
                "{start},{end},{},{}\n",
                isp.label.asn,
                isp.label.name.replace(',', " ")
            ));
        }
        out
    }

    /// The IP → country table the control reads (`start,end,cc`).
    pub fn country_table(&self) -> String {
        let mut out = String::new();
        for isp in &self.isps {
            let (start, end) = client_range(isp);
            out.push_str(&format!("{start},{end},{}\n", isp.label.cc));
        }
        out
    }
}

fn client_range(isp: &IspPlan) -> (Ipv4Addr, Ipv4Addr) {
    let base = u32::from(isp.client_ip) & 0xffff_ff00;
    (Ipv4Addr::from(base), Ipv4Addr::from(base | 0xff))
}

/// Whether `ip` is a lab client address (any ISP's client subnet).
pub fn is_client_address(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            o[0] == 10 && o[1] == 77 && (10..10 + MAX_ISPS as u8).contains(&o[2])
        }
        std::net::IpAddr::V6(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> Plan {
        Plan::new(
            "cw9-0-",
            &[IspLabel::new("PTCL", 17557, "PK"), IspLabel::new("Jazz", 45669, "PK")],
            &[Ipv4Addr::new(104, 244, 42, 1)],
        )
        .unwrap()
    }

    #[test]
    fn names_and_addresses_per_isp() {
        let p = two();
        assert_eq!(
            p.namespaces(),
            vec![
                "cw9-0-inet",
                "cw9-0-isp0",
                "cw9-0-client0",
                "cw9-0-isp1",
                "cw9-0-client1"
            ]
        );
        assert_eq!(p.isps[1].client_ip, Ipv4Addr::new(10, 77, 11, 2));
        assert_eq!(p.isps[1].router_uplink_ip, Ipv4Addr::new(10, 77, 101, 2));
        assert_eq!(
            p.internet_addrs,
            vec![RESOLVER, CONTROL, Ipv4Addr::new(104, 244, 42, 1)]
        );
        assert!(p.namespaces().iter().all(|n| n.starts_with("cw9-")));
    }

    #[test]
    fn every_interface_name_fits_linux_limit() {
        let p = Plan::new("cw1-0-", &vec![IspLabel::new("a", 1, "ZZ"); MAX_ISPS], &[]).unwrap();
        for cmd in p.ip_commands() {
            for w in cmd.windows(2) {
                if matches!(w[0].as_str(), "dev" | "name" | "add") && !w[1].contains('/') && !w[1].contains('.') {
                    assert!(w[1].len() <= 15, "{} too long", w[1]);
                }
            }
        }
    }

    #[test]
    fn routes_lead_back_to_each_client() {
        let p = two();
        let cmds: Vec<String> = p.ip_commands().iter().map(|c| c.join(" ")).collect();
        assert!(cmds.contains(&"-n cw9-0-inet route add 10.77.11.0/24 via 10.77.101.2".to_owned()));
        assert!(cmds.contains(&"-n cw9-0-client0 route add default via 10.77.10.1".to_owned()));
        assert!(cmds.contains(&"-n cw9-0-isp1 route add default via 10.77.101.1".to_owned()));
    }

    #[test]
    fn tables_label_client_subnets() {
        let p = two();
        assert_eq!(
            p.asn_table(),
            "10.77.10.0,10.77.10.255,17557,PTCL\n10.77.11.0,10.77.11.255,45669,Jazz\n"
        );
        assert_eq!(
            p.country_table(),
            "10.77.10.0,10.77.10.255,PK\n10.77.11.0,10.77.11.255,PK\n"
        );
    }

    #[test]
    fn plan_bounds() {
        assert!(Plan::new("p-", &[], &[]).is_err());
        assert!(Plan::new("p-", &vec![IspLabel::new("a", 1, "ZZ"); MAX_ISPS + 1], &[]).is_err());
    }

    #[test]
    fn client_addresses() {
        assert!(is_client_address("10.77.10.2".parse().unwrap()));
        assert!(is_client_address("10.77.89.2".parse().unwrap()));
        assert!(!is_client_address("10.77.100.2".parse().unwrap()));
        assert!(!is_client_address("10.77.200.80".parse().unwrap()));
        assert!(!is_client_address("77.77.77.4".parse().unwrap()));
    }
}
