//! Where the browser may connect: every address is refused that is in a
//! denied range (the built-in list, the deployment's subnet,
//! AUTOBOT_BROWSER_DENY), unless AUTOBOT_BROWSER_ALLOW lifts it, and the DNS
//! resolver that enforces this.
//!
//! The built-in list holds every range that is not the public internet:
//! "this network" and `::` (which reach the local host), loopback, the
//! private and shared ranges, link-local, unique local, documentation,
//! multicast, reserved, and the cloud metadata endpoints; at start the
//! host's own addresses are added (a service bound to 0.0.0.0 answers on
//! each of them, whatever range it is in). A web page is fetched from the
//! public internet; anything else is an exception an operator writes down.
//!
//! A host name is resolved once, EVERY address it resolves to is checked,
//! and the connection is made only to those checked addresses (the resolver
//! hands them to the HTTP client). A name that resolves to an allowed address
//! for a check and to a metadata address for the connection (DNS rebinding)
//! therefore cannot slip through: there is only one resolution. IP literals
//! never reach a resolver, so [`AddressPolicy::check_host`] checks them
//! before each request. The URL parser has already turned every spelling of
//! an IPv4 address (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`) into
//! the address; IPv4 addresses inside IPv6 ones (mapped, compatible, NAT64,
//! 6to4, Teredo) are checked as the IPv4 address they reach.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Host;

/// The built-in list: every range that is not the public internet, and the
/// public addresses of cloud metadata services. Each with the reason an
/// operator reads in the refusal.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "0.0.0.0/8",
        "\"this network\": 0.0.0.0 reaches the local host",
    ),
    ("10.0.0.0/8", "private (RFC 1918)"),
    (
        "100.64.0.0/10",
        "shared address space (RFC 6598; Alibaba Cloud metadata)",
    ),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local (cloud metadata)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    (
        "192.0.0.0/24",
        "IETF protocol assignments (Oracle Cloud metadata)",
    ),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("192.0.2.0/24", "documentation (RFC 5737)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation (RFC 5737)"),
    ("203.0.113.0/24", "documentation (RFC 5737)"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved and broadcast"),
    ("168.63.129.16/32", "Azure WireServer (cloud metadata)"),
    ("::/128", "unspecified: :: reaches the local host"),
    ("::1/128", "loopback"),
    ("100::/64", "discard-only (RFC 6666)"),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    ("fc00::/7", "unique local (AWS metadata over IPv6)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
    ("64:ff9b:1::/48", "local-use NAT64 (RFC 8215)"),
];

/// The deployment's own subnet, when AUTOBOT_DEPLOYMENT_SUBNET is unset:
/// the VMs of the inventory (ansible/).
pub const DEFAULT_DEPLOYMENT_SUBNET: &str = "172.16.168.0/24";

/// A range refused, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeniedRange {
    pub range: IpNet,
    pub reason: &'static str,
}

/// Exceptions to the denied ranges (AUTOBOT_BROWSER_ALLOW): networks, and
/// host names whose addresses are not checked at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    networks: Vec<IpNet>,
    hosts: Vec<String>,
}

impl AllowList {
    /// A comma- (or space-) separated list of networks (`10.1.2.0/24`),
    /// addresses (`127.0.0.2`, `::1`) and host names (`wiki.internal`).
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut allow = Self::default();
        for item in split_list(list) {
            if let Some(net) = parse_network(item) {
                allow.networks.push(net);
            } else if let Some(host) = host_name(item) {
                allow.hosts.push(host);
            } else {
                return Err(format!(
                    "{item:?} is neither a network (10.1.2.0/24), an address (127.0.0.2) \
                     nor a host name (wiki.internal); ports and URLs are not taken"
                ));
            }
        }
        Ok(allow)
    }

    pub fn is_empty(&self) -> bool {
        self.networks.is_empty() && self.hosts.is_empty()
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        self.networks.iter().any(|n| n.contains(&ip))
    }

    fn allows_host(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.');
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(name))
    }
}

/// A comma/space separated list, empty items skipped.
fn split_list(list: &str) -> impl Iterator<Item = &str> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

/// A CIDR range (host bits dropped) or a single address.
fn parse_network(item: &str) -> Option<IpNet> {
    match item.parse::<IpNet>() {
        Ok(net) => Some(net.trunc()),
        Err(_) => item.parse::<IpAddr>().ok().map(IpNet::from),
    }
}

/// A DNS name in lower case, without its final dot; `None` for anything else.
fn host_name(item: &str) -> Option<String> {
    let name = item.trim_end_matches('.');
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        // All digits and dots is an address the URL parser reads as IPv4.
        && !name.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    valid.then(|| name.to_ascii_lowercase())
}

/// A list of networks (AUTOBOT_BROWSER_DENY, AUTOBOT_DEPLOYMENT_SUBNET).
pub fn parse_networks(list: &str) -> Result<Vec<IpNet>, String> {
    split_list(list)
        .map(|item| {
            parse_network(item).ok_or_else(|| {
                format!("{item:?} is not an address range like 203.0.113.0/24 or 2001:db8::/32")
            })
        })
        .collect()
}

/// Which addresses the browser connects to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressPolicy {
    deny: Vec<DeniedRange>,
    allow: AllowList,
}

impl Default for AddressPolicy {
    /// The built-in list and the default deployment subnet, no exception.
    fn default() -> Self {
        let subnet = parse_networks(DEFAULT_DEPLOYMENT_SUBNET).expect("the default subnet parses");
        Self::new(&subnet, &[], AllowList::default())
    }
}

impl AddressPolicy {
    /// The built-in list, plus the deployment's subnets and the operator's
    /// own ranges, minus the allowed exceptions.
    pub fn new(deployment: &[IpNet], extra: &[IpNet], allow: AllowList) -> Self {
        let mut deny: Vec<DeniedRange> = BUILT_IN
            .iter()
            .map(|(range, reason)| DeniedRange {
                range: range.parse().expect("the built-in list parses"),
                reason,
            })
            .collect();
        deny.extend(deployment.iter().map(|range| DeniedRange {
            range: *range,
            reason: "the deployment's subnet (AUTOBOT_DEPLOYMENT_SUBNET)",
        }));
        deny.extend(extra.iter().map(|range| DeniedRange {
            range: *range,
            reason: "AUTOBOT_BROWSER_DENY",
        }));
        Self { deny, allow }
    }

    /// The same policy denying `addresses` too (the host's own, from
    /// [`host_addresses`]), those not denied already.
    pub fn with_host_addresses(mut self, addresses: &[IpAddr]) -> Self {
        for &ip in addresses {
            if !self.deny.iter().any(|d| d.range.contains(&ip)) {
                self.deny.push(DeniedRange {
                    range: IpNet::from(ip),
                    reason: "this host's own address",
                });
            }
        }
        self
    }

    /// The denied ranges, as CIDR text.
    pub fn deny_ranges(&self) -> Vec<String> {
        self.deny.iter().map(|d| d.range.to_string()).collect()
    }

    /// The exceptions: networks as CIDR text, then host names.
    pub fn allow_entries(&self) -> Vec<String> {
        let networks = self.allow.networks.iter().map(ToString::to_string);
        networks.chain(self.allow.hosts.iter().cloned()).collect()
    }

    /// The range that refuses `ip`: a form of it (itself, or the IPv4
    /// address it carries) is in a denied range and not allowed.
    pub fn denies(&self, ip: IpAddr) -> Option<&DeniedRange> {
        forms(ip).into_iter().find_map(|form| {
            if self.allow.allows_ip(form) {
                return None;
            }
            self.deny.iter().find(|d| d.range.contains(&form))
        })
    }

    /// Refuses a URL host that is an IP literal in a denied range (names go
    /// through [`CheckedResolver`]).
    pub fn check_host(&self, host: &Host<&str>) -> Result<(), DeniedAddress> {
        let ip = match host {
            Host::Ipv4(v4) => IpAddr::V4(*v4),
            Host::Ipv6(v6) => IpAddr::V6(*v6),
            Host::Domain(_) => return Ok(()),
        };
        match self.denies(ip) {
            Some(denied) => Err(DeniedAddress {
                host: None,
                address: ip,
                denied: denied.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Checks what `host` resolved to; a host name in AUTOBOT_BROWSER_ALLOW
    /// is not checked.
    pub fn check_resolved(&self, host: &str, addrs: &[SocketAddr]) -> Result<(), DeniedAddress> {
        if self.allow.allows_host(host) {
            return Ok(());
        }
        for addr in addrs {
            if let Some(denied) = self.denies(addr.ip()) {
                return Err(DeniedAddress {
                    host: Some(host.to_owned()),
                    address: addr.ip(),
                    denied: denied.clone(),
                });
            }
        }
        Ok(())
    }
}

/// This host's addresses, as the kernel lists them (Linux): the local /32
/// entries of `/proc/net/fib_trie` and every line of `/proc/net/if_inet6`.
/// Read once at start: an address added later is not seen. Elsewhere, none.
pub fn host_addresses() -> Vec<IpAddr> {
    let v4 = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
    let v6 = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    let mut found = local_ipv4(&v4);
    found.extend(v6.lines().filter_map(|line| {
        let hex = line.split_whitespace().next()?;
        u128::from_str_radix(hex, 16)
            .ok()
            .filter(|_| hex.len() == 32)
            .map(|bits| IpAddr::V6(bits.into()))
    }));
    found.sort();
    found.dedup();
    found
}

/// In `/proc/net/fib_trie`, an address line (`|-- 192.0.2.2`) followed by
/// `/32 host LOCAL` is one of the host's own addresses.
fn local_ipv4(fib_trie: &str) -> Vec<IpAddr> {
    let mut found = Vec::new();
    let mut last: Option<IpAddr> = None;
    for line in fib_trie.lines().map(str::trim) {
        if let Some(addr) = line.strip_prefix("|-- ") {
            last = addr.parse().ok();
        } else if line.starts_with("/32 host LOCAL")
            && let Some(ip) = last.take()
        {
            found.push(ip);
        }
    }
    found
}

/// The address, and the IPv4 address inside it when it is an IPv6 address
/// that carries one: IPv4-mapped and -compatible (`::ffff:a.b.c.d`,
/// `::a.b.c.d`), NAT64 (`64:ff9b::/96`), 6to4 (`2002::/16`) and Teredo
/// (`2001::/32`, client and server).
fn forms(ip: IpAddr) -> Vec<IpAddr> {
    let mut forms = vec![ip];
    let IpAddr::V6(v6) = ip else {
        return forms;
    };
    let s = v6.segments();
    let v4 = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    };
    if let Some(inner) = v6.to_ipv4() {
        forms.push(IpAddr::V4(inner));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        forms.push(v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        forms.push(v4(s[1], s[2]));
    }
    if s[0] == 0x2001 && s[1] == 0 {
        forms.push(v4(s[2], s[3]));
        forms.push(v4(!s[6], !s[7]));
    }
    forms
}

/// A host (or the address a name resolves to) that the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeniedAddress {
    /// The host name, when the address came from DNS.
    pub host: Option<String>,
    pub address: IpAddr,
    pub denied: DeniedRange,
}

impl fmt::Display for DeniedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(host) = &self.host {
            write!(f, "{host} resolves to ")?;
        }
        write!(
            f,
            "{}, which is in a denied range ({}: {}); AUTOBOT_BROWSER_ALLOW lifts it",
            self.address, self.denied.range, self.denied.reason
        )
    }
}

impl std::error::Error for DeniedAddress {}

/// The name does not resolve to any address.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves to no address")]
struct NoAddress(String);

/// reqwest's resolver: resolves with the system resolver, refuses the name
/// if ANY of its addresses is denied, and returns exactly the addresses it
/// checked, so the client connects to nothing else.
#[derive(Clone, Debug)]
pub struct CheckedResolver {
    policy: Arc<AddressPolicy>,
}

impl CheckedResolver {
    pub fn new(policy: Arc<AddressPolicy>) -> Self {
        Self { policy }
    }
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port in.
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(Box::new(NoAddress(host)) as _);
            }
            if let Err(denied) = policy.check_resolved(&host, &addrs) {
                return Err(Box::new(denied) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn policy(allow: &str) -> AddressPolicy {
        let subnet = parse_networks(DEFAULT_DEPLOYMENT_SUBNET).unwrap();
        AddressPolicy::new(&subnet, &[], AllowList::parse(allow).unwrap())
    }

    #[test]
    fn everything_but_the_public_internet_is_refused_by_default() {
        let p = AddressPolicy::default();
        for denied in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "172.16.168.20",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.100.100.200",
            "169.254.169.254",
            "169.254.170.2",
            "192.0.0.192",
            "168.63.129.16",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "192.0.2.1",
            "2001:db8::1",
        ] {
            assert!(p.denies(ip(denied)).is_some(), "{denied}");
        }
        for allowed in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert_eq!(p.denies(ip(allowed)), None, "{allowed}");
        }
    }

    #[test]
    fn the_hosts_own_addresses_are_read_from_the_kernels_tables() {
        let fib_trie = "Main:\n  +-- 0.0.0.0/0 3 0 4\n     |-- 0.0.0.0\n        /0 universe UNICAST\n\
            |-- 127.0.0.0\n   /8 host LOCAL\n   |-- 127.0.0.1\n   /32 host LOCAL\n\
            |-- 203.0.113.255\n   /32 link BROADCAST\n   |-- 203.0.113.7\n   /32 host LOCAL\n";
        assert_eq!(local_ipv4(fib_trie), [ip("127.0.0.1"), ip("203.0.113.7")]);
        let p = AddressPolicy::new(&[], &[], AllowList::default()).with_host_addresses(&[
            ip("127.0.0.1"),
            ip("8.8.4.4"),
            ip("2a00::1"),
        ]);
        assert_eq!(
            p.denies(ip("8.8.4.4")).unwrap().reason,
            "this host's own address"
        );
        assert_eq!(
            p.denies(ip("2a00::1")).unwrap().reason,
            "this host's own address"
        );
        assert_eq!(p.denies(ip("127.0.0.1")).unwrap().reason, "loopback");
        assert_eq!(p.denies(ip("8.8.8.8")), None);
        // On this machine: at least loopback.
        assert!(host_addresses().contains(&ip("127.0.0.1")));
    }

    #[test]
    fn ipv4_hidden_in_ipv6_is_checked_as_the_ipv4_address() {
        let p = AddressPolicy::default();
        for disguised in [
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::169.254.169.254",
            "64:ff9b::10.0.0.1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            // Teredo, client 127.0.0.1 (stored inverted) and server 10.0.0.1.
            "2001:0:0a00:0001::80ff:fffe",
        ] {
            let refused = p.denies(ip(disguised));
            assert!(refused.is_some(), "{disguised}");
        }
        assert_eq!(p.denies(ip("::ffff:8.8.8.8")), None);
        assert_eq!(p.denies(ip("64:ff9b::8.8.8.8")), None);
    }

    #[test]
    fn url_hosts_in_any_spelling_are_checked() {
        let p = AddressPolicy::default();
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::]/",
            "http://0.0.0.0:8080/",
            "http://0/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://0177.1/",
            "http://127.1/",
            "http://127.0.0.1./",
            "http://0xa9.0xfe.0xa9.0xfe/",
            "http://0251.0376.0251.0376/",
            "http://2852039166/",
            "http://[0:0:0:0:0:ffff:127.0.0.1]/",
        ] {
            let u = url::Url::parse(url).unwrap();
            let err = p.check_host(&u.host().unwrap()).unwrap_err();
            assert!(
                err.to_string().contains("AUTOBOT_BROWSER_ALLOW lifts it"),
                "{url}: {err}"
            );
        }
        let ok = url::Url::parse("http://example.com/").unwrap();
        assert!(p.check_host(&ok.host().unwrap()).is_ok());
    }

    #[test]
    fn the_refusal_says_which_range_and_why() {
        let p = AddressPolicy::default();
        let u = url::Url::parse("http://2130706433/").unwrap();
        assert_eq!(
            p.check_host(&u.host().unwrap()).unwrap_err().to_string(),
            "127.0.0.1, which is in a denied range (127.0.0.0/8: loopback); AUTOBOT_BROWSER_ALLOW lifts it"
        );
        let subnet = AddressPolicy::new(
            &parse_networks("45.33.0.0/24").unwrap(),
            &parse_networks("9.9.9.9").unwrap(),
            AllowList::default(),
        );
        assert_eq!(
            subnet.denies(ip("45.33.0.9")).unwrap().reason,
            "the deployment's subnet (AUTOBOT_DEPLOYMENT_SUBNET)"
        );
        assert_eq!(
            subnet.denies(ip("9.9.9.9")).unwrap().reason,
            "AUTOBOT_BROWSER_DENY"
        );
    }

    #[test]
    fn allowed_networks_and_hosts_are_exceptions_and_nothing_more() {
        let p = policy("127.0.0.2, 10.1.0.0/16 wiki.Internal.");
        assert_eq!(p.denies(ip("127.0.0.2")), None);
        assert_eq!(p.denies(ip("::ffff:127.0.0.2")), None, "the same address");
        assert!(p.denies(ip("127.0.0.1")).is_some());
        assert_eq!(p.denies(ip("10.1.200.3")), None);
        assert!(p.denies(ip("10.2.0.1")).is_some());
        let loopback = [SocketAddr::new(ip("127.0.0.1"), 0)];
        assert!(p.check_resolved("wiki.internal", &loopback).is_ok());
        assert!(p.check_resolved("WIKI.internal.", &loopback).is_ok());
        assert!(p.check_resolved("other.internal", &loopback).is_err());
        assert_eq!(
            p.allow_entries(),
            ["127.0.0.2/32", "10.1.0.0/16", "wiki.internal"]
        );
    }

    #[test]
    fn lists_parse_and_say_what_they_refuse() {
        assert_eq!(
            parse_networks("10.1.2.3/8,  192.168.1.7 2001:db8::/32").unwrap(),
            parse_networks("10.0.0.0/8 192.168.1.7/32 2001:db8::/32").unwrap()
        );
        assert!(parse_networks("10.0.0.0/40").is_err());
        assert!(parse_networks("metadata.google.internal").is_err());
        for bad in [
            "127.0.0.1:8090",
            "http://wiki/",
            "-bad-.example",
            "10.0.0.0/33",
        ] {
            let e = AllowList::parse(bad).unwrap_err();
            assert!(e.contains("ports and URLs are not taken"), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_with_any_denied_address() {
        let resolver = CheckedResolver::new(Arc::new(AddressPolicy::default()));
        let err = match resolver.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost resolves to 127.0.0.1, which is denied"),
            Err(e) => e,
        };
        let denied = err
            .downcast_ref::<DeniedAddress>()
            .expect("a DeniedAddress");
        assert_eq!(denied.host.as_deref(), Some("localhost"));
        assert!(denied.address.is_loopback(), "{}", denied.address);

        let allowed = CheckedResolver::new(Arc::new(policy("localhost")));
        let addrs: Vec<_> = allowed
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
