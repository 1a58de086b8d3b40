//! Addresses the browser never connects to (AUTOBOT_BROWSER_DENY), and the
//! DNS resolver that enforces them.
//!
//! A host name is resolved once, EVERY address it resolves to is checked,
//! and the connection is made only to those checked addresses (the resolver
//! hands them to the HTTP client). A name that resolves to an allowed address
//! for a check and to a metadata address for the connection (DNS rebinding)
//! therefore cannot slip through: there is only one resolution. IP literals
//! never reach a resolver, so [`DenyList::check_host`] checks them before
//! each request.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Host;

/// The default list: link-local ranges and the cloud metadata endpoints.
/// Loopback and private ranges are NOT in it (the tests, and services on the
/// same VM, are fetched over them); add them with AUTOBOT_BROWSER_DENY.
const DEFAULT_DENY: &[&str] = &[
    // IPv4 link-local: AWS, GCP, Azure, OCI, DigitalOcean metadata (169.254.169.254),
    // ECS task metadata (169.254.170.2).
    "169.254.0.0/16",
    // IPv6 link-local.
    "fe80::/10",
    // AWS instance metadata over IPv6.
    "fd00:ec2::254/128",
    // Alibaba Cloud metadata.
    "100.100.100.200/32",
    // Azure WireServer (platform agent and DNS).
    "168.63.129.16/32",
    // Oracle Cloud classic metadata.
    "192.0.0.192/32",
];

/// NAT64 well-known prefix: 64:ff9b::a9fe:a9fe reaches 169.254.169.254 through a NAT64 gateway.
const NAT64: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);

/// Address ranges refused before connecting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DenyList {
    ranges: Vec<IpNet>,
}

impl DenyList {
    /// Link-local and cloud metadata addresses.
    pub fn default_metadata() -> Self {
        Self {
            ranges: DEFAULT_DENY
                .iter()
                .map(|r| r.parse().expect("the default deny list parses"))
                .collect(),
        }
    }

    /// A comma- (or space-) separated list of CIDR ranges or single addresses;
    /// `none` for an empty list.
    pub fn parse(list: &str) -> Result<Self, String> {
        if list.trim().eq_ignore_ascii_case("none") {
            return Ok(Self { ranges: Vec::new() });
        }
        let mut ranges = Vec::new();
        for item in list
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            let range = match item.parse::<IpNet>() {
                Ok(net) => net.trunc(),
                Err(_) => match item.parse::<IpAddr>() {
                    Ok(ip) => IpNet::from(ip),
                    Err(_) => {
                        return Err(format!(
                            "{item:?} is not an address range like 169.254.0.0/16 or fe80::/10"
                        ));
                    }
                },
            };
            ranges.push(range);
        }
        Ok(Self { ranges })
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The ranges, as CIDR text.
    pub fn ranges(&self) -> Vec<String> {
        self.ranges.iter().map(ToString::to_string).collect()
    }

    /// The range that refuses `ip`, looking through IPv4-mapped,
    /// IPv4-compatible and NAT64 forms of IPv4 addresses.
    pub fn denies(&self, ip: IpAddr) -> Option<IpNet> {
        let mut forms = vec![ip];
        if let IpAddr::V6(v6) = ip {
            if let Some(v4) = v6.to_ipv4() {
                forms.push(IpAddr::V4(v4));
            }
            let s = v6.segments();
            if s[..6] == NAT64.segments()[..6] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                forms.push(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
            }
        }
        forms
            .into_iter()
            .find_map(|f| self.ranges.iter().find(|r| r.contains(&f)).copied())
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
            Some(range) => Err(DeniedAddress {
                host: None,
                address: ip,
                range,
            }),
            None => Ok(()),
        }
    }
}

/// A host (or the address a name resolves to) that the deny list refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeniedAddress {
    /// The host name, when the address came from DNS.
    pub host: Option<String>,
    pub address: IpAddr,
    pub range: IpNet,
}

impl fmt::Display for DeniedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Some(host) => write!(
                f,
                "{host} resolves to {}, which is in a denied range ({}, AUTOBOT_BROWSER_DENY)",
                self.address, self.range
            ),
            None => write!(
                f,
                "{} is in a denied range ({}, AUTOBOT_BROWSER_DENY)",
                self.address, self.range
            ),
        }
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
    deny: Arc<DenyList>,
}

impl CheckedResolver {
    pub fn new(deny: Arc<DenyList>) -> Self {
        Self { deny }
    }
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let deny = self.deny.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port in.
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(Box::new(NoAddress(host)) as _);
            }
            for addr in &addrs {
                if let Some(range) = deny.denies(addr.ip()) {
                    return Err(Box::new(DeniedAddress {
                        host: Some(host),
                        address: addr.ip(),
                        range,
                    }) as _);
                }
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

    #[test]
    fn the_default_list_refuses_metadata_and_link_local_only() {
        let d = DenyList::default_metadata();
        for denied in [
            "169.254.169.254",
            "169.254.170.2",
            "100.100.100.200",
            "fe80::1",
            "fd00:ec2::254",
            "168.63.129.16",
        ] {
            assert!(d.denies(ip(denied)).is_some(), "{denied}");
        }
        for allowed in ["127.0.0.1", "::1", "10.0.0.1", "172.16.168.25", "8.8.8.8"] {
            assert!(d.denies(ip(allowed)).is_none(), "{allowed}");
        }
    }

    #[test]
    fn ipv4_hidden_in_ipv6_is_still_refused() {
        let d = DenyList::default_metadata();
        for disguised in [
            "::ffff:169.254.169.254",
            "::ffff:a9fe:a9fe",
            "64:ff9b::169.254.169.254",
        ] {
            assert!(d.denies(ip(disguised)).is_some(), "{disguised}");
        }
    }

    #[test]
    fn url_hosts_in_any_spelling_are_checked() {
        let d = DenyList::default_metadata();
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:169.254.169.254]/",
            // WHATWG URL parsing turns these into 169.254.169.254.
            "http://2852039166/",
            "http://0xa9.0xfe.0xa9.0xfe/",
            "http://0251.0376.0251.0376/",
        ] {
            let u = url::Url::parse(url).unwrap();
            let err = d.check_host(&u.host().unwrap()).unwrap_err();
            assert!(
                err.to_string().contains("AUTOBOT_BROWSER_DENY"),
                "{url}: {err}"
            );
        }
        let ok = url::Url::parse("http://example.com/").unwrap();
        assert!(d.check_host(&ok.host().unwrap()).is_ok());
    }

    #[test]
    fn lists_parse_ranges_and_single_addresses() {
        let d = DenyList::parse("10.0.0.0/8,  192.168.1.7 2001:db8::/32").unwrap();
        assert_eq!(
            d.ranges(),
            ["10.0.0.0/8", "192.168.1.7/32", "2001:db8::/32"]
        );
        // Host bits are dropped: 10.1.2.3/8 means 10.0.0.0/8.
        assert_eq!(
            DenyList::parse("10.1.2.3/8").unwrap().ranges(),
            ["10.0.0.0/8"]
        );
        assert!(DenyList::parse("10.0.0.0/40").is_err());
        assert!(DenyList::parse("metadata.google.internal").is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_with_any_denied_address() {
        let resolver = CheckedResolver::new(Arc::new(DenyList::parse("127.0.0.0/8").unwrap()));
        let err = match resolver.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost resolves to 127.0.0.1, which is denied"),
            Err(e) => e,
        };
        let denied = err
            .downcast_ref::<DeniedAddress>()
            .expect("a DeniedAddress");
        assert_eq!(denied.host.as_deref(), Some("localhost"));
        assert_eq!(denied.address, ip("127.0.0.1"));

        let open = CheckedResolver::new(Arc::new(DenyList::default_metadata()));
        let addrs: Vec<_> = open
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().any(|a| a.ip().is_loopback()), "{addrs:?}");
    }
}
