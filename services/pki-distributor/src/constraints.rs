//! The names the CA may issue certificates for: the permitted subtrees of
//! its name constraints (RFC 5280 4.2.1.10), written into the CA
//! certificate when it is created. A TLS client that checks the chain
//! (rustls-webpki, OpenSSL) refuses a certificate for any other name or
//! address, so a stolen CA key cannot impersonate a host outside the
//! deployment.
//!
//! `AUTOBOT_PKI_CA_PERMITTED` lists them (IP subnets and DNS names, comma
//! separated); without it they come from the targets file when the CA is
//! made: each target's name, its host when that is a DNS name, and the /24
//! (IPv4) or /64 (IPv6) around each target's address: the deployment's
//! subnet, so that a VM added later on it needs no new CA.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use rcgen::{CidrSubnet, GeneralSubtree, NameConstraints};

use crate::targets::{Target, is_dns_name};

/// The variable that sets the permitted names of a new CA.
pub const PERMITTED_VAR: &str = "AUTOBOT_PKI_CA_PERMITTED";

/// Permitted subnets and DNS names (a name permits itself and its subdomains).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permitted {
    pub subnets: Vec<IpNet>,
    pub dns_names: Vec<String>,
}

impl fmt::Display for Permitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<String> = self
            .subnets
            .iter()
            .map(ToString::to_string)
            .chain(self.dns_names.iter().cloned())
            .collect();
        f.write_str(&all.join(","))
    }
}

impl Permitted {
    /// `172.16.168.0/24,autobot.internal,npu-worker`: subnets (an address
    /// alone is a /32 or /128) and DNS names.
    pub fn parse(v: &str) -> Result<Self, String> {
        let mut permitted = Self::default();
        for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if let Ok(net) = item.parse::<IpNet>() {
                permitted.subnets.push(net.trunc());
            } else if let Ok(ip) = item.parse::<IpAddr>() {
                permitted.subnets.push(IpNet::from(ip));
            } else if is_dns_name(item) {
                permitted.dns_names.push(item.to_ascii_lowercase());
            } else {
                return Err(format!(
                    "{item:?} is neither an IP subnet (172.16.168.0/24) nor a DNS name"
                ));
            }
        }
        if permitted.is_empty() {
            return Err("names no subnet and no DNS name".to_owned());
        }
        Ok(permitted)
    }

    /// What the targets file implies: each target's subnet, name and DNS host.
    pub fn from_targets(targets: &[Target]) -> Self {
        let mut permitted = Self::default();
        for t in targets {
            if let Some(ip) = t.ip() {
                let prefix = if ip.is_ipv4() { 24 } else { 64 };
                let net = IpNet::new(ip, prefix)
                    .map(|n| n.trunc())
                    .unwrap_or(ip.into());
                if !permitted.subnets.contains(&net) {
                    permitted.subnets.push(net);
                }
            }
            for name in std::iter::once(&t.name).chain(t.ip().is_none().then_some(&t.host)) {
                let name = name.to_ascii_lowercase();
                if !permitted.dns_names.contains(&name) {
                    permitted.dns_names.push(name);
                }
            }
        }
        permitted
    }

    pub fn is_empty(&self) -> bool {
        self.subnets.is_empty() && self.dns_names.is_empty()
    }

    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        self.subnets.iter().any(|net| net.contains(&ip))
    }

    /// The name itself or a subdomain of a permitted name (a permitted name
    /// with a leading dot permits subdomains only).
    pub fn allows_dns(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.dns_names
            .iter()
            .any(|permitted| match permitted.strip_prefix('.') {
                Some(domain) => name.ends_with(&format!(".{domain}")),
                None => name == *permitted || name.ends_with(&format!(".{permitted}")),
            })
    }

    /// rcgen's form, for the CA certificate.
    pub fn name_constraints(&self) -> NameConstraints {
        let subnets = self.subnets.iter().map(|net| {
            GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(net.addr(), net.prefix_len()))
        });
        let names = self
            .dns_names
            .iter()
            .map(|n| GeneralSubtree::DnsName(n.clone()));
        NameConstraints {
            permitted_subtrees: subnets.chain(names).collect(),
            excluded_subtrees: Vec::new(),
        }
    }

    /// The permitted subtrees of a CA certificate (DER); `None` when it
    /// has no name constraints. Subtree kinds other than IP and DNS are
    /// ignored (AutoBot's CA writes none).
    pub fn from_certificate(der: &[u8]) -> Result<Option<Self>, String> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
        let Some(ext) = cert.name_constraints().map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let mut permitted = Self::default();
        for subtree in ext.value.permitted_subtrees.iter().flatten() {
            match &subtree.base {
                GeneralName::DNSName(name) => permitted.dns_names.push(name.to_ascii_lowercase()),
                GeneralName::IPAddress(bytes) => {
                    let net = match bytes.len() {
                        8 => {
                            let addr: [u8; 4] = bytes[..4].try_into().map_err(|_| "IP subtree")?;
                            let mask: [u8; 4] = bytes[4..].try_into().map_err(|_| "IP subtree")?;
                            IpNet::with_netmask(addr.into(), mask.into())
                        }
                        32 => {
                            let addr: [u8; 16] =
                                bytes[..16].try_into().map_err(|_| "IP subtree")?;
                            let mask: [u8; 16] =
                                bytes[16..].try_into().map_err(|_| "IP subtree")?;
                            IpNet::with_netmask(addr.into(), mask.into())
                        }
                        n => return Err(format!("an IP subtree of {n} bytes")),
                    };
                    permitted.subnets.push(net.map_err(|e| e.to_string())?);
                }
                _ => {}
            }
        }
        Ok(Some(permitted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_lists_subnets_and_names() {
        let p = Permitted::parse("172.16.168.7/24, 10.0.0.5,Autobot.Internal").unwrap();
        assert_eq!(
            p.to_string(),
            "172.16.168.0/24,10.0.0.5/32,autobot.internal"
        );
        assert!(p.allows_ip("172.16.168.22".parse().unwrap()));
        assert!(!p.allows_ip("172.16.169.22".parse().unwrap()));
        assert!(p.allows_dns("vm2.autobot.internal") && p.allows_dns("AUTOBOT.internal"));
        assert!(!p.allows_dns("evilautobot.internal") && !p.allows_dns("example.com"));
        assert!(Permitted::parse("a b").is_err());
        assert!(Permitted::parse(" , ").is_err());
    }

    #[test]
    fn the_targets_give_their_subnets_and_names() {
        let targets = crate::targets::parse_targets(
            std::path::Path::new("t.toml"),
            "[[targets]]\nname = \"npu-worker\"\nhost = \"172.16.168.22\"\n\
             [[targets]]\nname = \"browser\"\nhost = \"172.16.168.25\"\n\
             [[targets]]\nname = \"vm9\"\nhost = \"vm9.autobot.internal\"\n",
        )
        .unwrap();
        let p = Permitted::from_targets(&targets);
        assert_eq!(
            p.to_string(),
            "172.16.168.0/24,npu-worker,browser,vm9,vm9.autobot.internal"
        );
    }
}
