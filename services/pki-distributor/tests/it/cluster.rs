//! A pretend cluster on loopback: real sshd processes as the "VMs", each
//! with its own certificate directory, known_hosts as an operator would
//! write it, a targets file, and the distributor's environment.

use std::path::{Path, PathBuf};

use autobot_lifecycle::ServiceConfig as _;
use autobot_testkit::sshd::{KeyFiles, Sshd, SshdOptions, current_user, known_hosts_line};

use crate::support::agent_bin;

/// How a VM's sshd is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vm {
    /// `AcceptEnv TRACEPARENT TRACESTATE BAGGAGE`.
    AcceptEnv,
    /// sshd's default: env requests refused, only the prefix carries the context.
    NoAcceptEnv,
    /// Running, but known_hosts lists another key for it.
    WrongHostKey,
    /// Running, but not in known_hosts at all.
    UnknownHostKey,
    /// Nothing listens on its port.
    Down,
    /// sshd fine, but the agent is not installed where the targets file says.
    NoAgent,
}

pub struct VmHandle {
    pub name: String,
    pub kind: Vm,
    pub port: u16,
    pub sshd: Option<Sshd>,
    pub root: PathBuf,
}

impl VmHandle {
    pub fn cert_dir(&self) -> PathBuf {
        self.root.join("certs")
    }
    pub fn staging_parent(&self) -> PathBuf {
        self.root.join("staging")
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub client_key: KeyFiles,
    pub vms: Vec<VmHandle>,
    pub otlp_endpoint: String,
}

impl Cluster {
    /// One VM per entry of `vms`, named `vm-<n>-<kind>`.
    pub fn start(vms: &[Vm], otlp_endpoint: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("autobot-pki-it-")
            .tempdir()
            .unwrap();
        let client_key = KeyFiles::generate(dir.path(), "id_ed25519").unwrap();
        let other_key = KeyFiles::generate(dir.path(), "not_the_host_key").unwrap();
        let mut handles = Vec::new();
        let mut known_hosts = String::from("# written by the test, as an operator would\n");
        for (i, kind) in vms.iter().enumerate() {
            let label = match kind {
                Vm::AcceptEnv => "acceptenv",
                Vm::NoAcceptEnv => "noacceptenv",
                Vm::WrongHostKey => "wronghostkey",
                Vm::UnknownHostKey => "unknownhostkey",
                Vm::Down => "down",
                Vm::NoAgent => "noagent",
            };
            let name = format!("vm-{i}-{label}");
            let root = dir.path().join(&name);
            std::fs::create_dir_all(root.join("staging")).unwrap();
            let (port, sshd) = if *kind == Vm::Down {
                (autobot_testkit::ports::free_port(), None)
            } else {
                let sshd = Sshd::start(SshdOptions {
                    authorized_keys: vec![client_key.public_line.clone()],
                    accept_env: if *kind == Vm::AcceptEnv {
                        vec!["TRACEPARENT".into(), "TRACESTATE".into(), "BAGGAGE".into()]
                    } else {
                        vec![]
                    },
                    // What the VM's own environment gives the agent.
                    set_env: vec![
                        ("AUTOBOT_JAEGER_ENDPOINT".into(), otlp_endpoint.into()),
                        (
                            "OTEL_RESOURCE_ATTRIBUTES".into(),
                            format!("host.name={name}"),
                        ),
                    ],
                    extra_config: vec![],
                })
                .unwrap();
                (sshd.port(), Some(sshd))
            };
            match (kind, &sshd) {
                (Vm::WrongHostKey, Some(_)) => {
                    known_hosts.push_str(&known_hosts_line(port, &other_key.key_type_and_base64()))
                }
                (Vm::UnknownHostKey, _) => {}
                (_, Some(s)) => known_hosts.push_str(&s.known_hosts_line()),
                (_, None) => {}
            }
            handles.push(VmHandle {
                name,
                kind: *kind,
                port,
                sshd,
                root,
            });
        }
        std::fs::write(dir.path().join("known_hosts"), known_hosts).unwrap();

        let user = current_user().unwrap();
        let mut targets = String::new();
        for vm in &handles {
            let agent = if vm.kind == Vm::NoAgent {
                PathBuf::from("/nonexistent/autobot-pki-agent")
            } else {
                agent_bin()
            };
            targets.push_str(&format!(
                "[[targets]]\nname = \"{}\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{user}\"\ncert_dir = \"{}\"\nagent = \"{}\"\nstaging_dir = \"{}\"\n\n",
                vm.name,
                vm.port,
                vm.cert_dir().display(),
                agent.display(),
                vm.staging_parent().display(),
            ));
        }
        std::fs::write(dir.path().join("targets.toml"), targets).unwrap();
        Self {
            dir,
            client_key,
            vms: handles,
            otlp_endpoint: otlp_endpoint.to_owned(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn pki_dir(&self) -> PathBuf {
        self.path().join("pki")
    }

    pub fn vm(&self, kind: Vm) -> &VmHandle {
        self.vms.iter().find(|v| v.kind == kind).unwrap()
    }

    /// The distributor's environment (nothing inherited from the test's).
    pub fn distributor_env(&self) -> Vec<(String, String)> {
        let p = |p: PathBuf| p.display().to_string();
        vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("HOME".into(), p(self.path().to_owned())),
            ("AUTOBOT_PKI_DIR".into(), p(self.pki_dir())),
            (
                "AUTOBOT_PKI_TARGETS".into(),
                p(self.path().join("targets.toml")),
            ),
            ("AUTOBOT_SSH_KEY".into(), p(self.client_key.private.clone())),
            (
                "AUTOBOT_SSH_KNOWN_HOSTS".into(),
                p(self.path().join("known_hosts")),
            ),
            ("AUTOBOT_SSH_TIMEOUT_SECS".into(), "20".into()),
            // Fewer slots than VMs: the bound is exercised.
            ("AUTOBOT_PKI_PARALLELISM".into(), "2".into()),
            ("AUTOBOT_JAEGER_ENDPOINT".into(), self.otlp_endpoint.clone()),
            ("OTEL_RESOURCE_ATTRIBUTES".into(), "host.name=main".into()),
        ]
    }

    /// The distributor's configuration, for in-process use.
    pub fn config(&self) -> autobot_pki_distributor::config::Config {
        let env: std::collections::HashMap<String, String> =
            self.distributor_env().into_iter().collect();
        autobot_pki_distributor::config::Config::from_lookup(|k| env.get(k).cloned()).unwrap()
    }

    /// Every log line the sshds wrote.
    pub fn sshd_logs(&self) -> String {
        self.vms
            .iter()
            .filter_map(|v| v.sshd.as_ref().map(Sshd::log))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
