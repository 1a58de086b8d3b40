//! "VMs" for the PKI tests: one real sshd, and per target a system user of
//! its own with the login shell under test (sh, bash, zsh, fish, tcsh), its
//! certificate and staging directories, and the targets file, key and
//! known_hosts the distributor needs. Creating users needs root; every
//! user is deleted again when the fleet is dropped.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use autobot_testkit::process::Launch;
use autobot_testkit::sshd::{KeyFiles, Sshd, SshdOptions};

/// The login shells a target user may have (docs/pki.md).
pub const SHELLS: [&str; 5] = ["sh", "bash", "zsh", "fish", "tcsh"];

/// Panics unless the test runs as root (CI does): users are created.
pub fn require_root() {
    let out = Command::new("id").arg("-u").output().expect("id runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "the SSH hostile tests create system users: run them as root"
    );
}

/// `/bin/NAME` or `/usr/bin/NAME`; panics naming the setup step when missing.
pub fn shell_path(name: &str) -> PathBuf {
    ["/bin", "/usr/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "login shell {name} is not installed: run scripts/setup.sh (setup.d/15-shells.sh)"
            )
        })
}

pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn chown(path: &Path, user: &str) {
    run(
        "chown",
        &["-R", &format!("{user}:{user}"), path.to_str().unwrap()],
    );
}

/// A system user that exists while this value lives.
pub struct TempUser {
    pub name: String,
    pub home: PathBuf,
}

impl TempUser {
    pub fn create(tag: &str, shell: &Path, homes: &Path) -> Self {
        let suffix = format!("{:06x}", rand_u32() & 0xff_ffff);
        let name = format!("ah-{tag}-{suffix}");
        let home = homes.join(&name);
        run(
            "useradd",
            &[
                "--create-home",
                "--home-dir",
                home.to_str().unwrap(),
                "--shell",
                shell.to_str().unwrap(),
                // No password, but not locked: sshd refuses locked accounts (`!`).
                "--password",
                "*",
                &name,
            ],
        );
        Self { name, home }
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel")
            .args(["--force", "--remove", &self.name])
            .output();
    }
}

fn rand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    nanos ^ std::process::id().rotate_left(16)
}

/// One target: a user with a login shell, and its directories.
pub struct Vm {
    /// The target's name in the targets file (`vm-<shell>`).
    pub name: String,
    pub shell: String,
    pub user: TempUser,
    pub cert_dir: PathBuf,
    pub staging: PathBuf,
}

/// How to start a fleet.
pub struct FleetOptions<'a> {
    /// One target per shell.
    pub shells: &'a [&'a str],
    /// The program the command line runs (the agent, or a wrapper of it).
    pub agent: &'a Path,
    /// sshd's SetEnv for every session (the agents' exporter settings).
    pub set_env: Vec<(String, String)>,
    /// sshd's AcceptEnv (empty: refuse every env request).
    pub accept_env: Vec<String>,
}

/// A running sshd with one user per target.
pub struct Fleet {
    pub vms: Vec<Vm>,
    _sshd: Sshd,
    pub keys: KeyFiles,
    pub known_hosts: PathBuf,
    pub targets_file: PathBuf,
    pub pki_dir: PathBuf,
}

impl Fleet {
    /// `root` must be traversable by every user (0755).
    pub fn start(root: &Path, options: FleetOptions<'_>) -> Self {
        require_root();
        let homes = root.join("home");
        std::fs::create_dir_all(&homes).unwrap();
        chmod(&homes, 0o755);
        let keys = KeyFiles::generate(root, "distributor_key").unwrap();
        let mut vms = Vec::new();
        for shell in options.shells {
            let user = TempUser::create(shell, &shell_path(shell), &homes);
            let vm_dir = root.join(format!("vm-{shell}"));
            let cert_dir = vm_dir.join("certs");
            let staging = vm_dir.join("staging");
            std::fs::create_dir_all(&cert_dir).unwrap();
            std::fs::create_dir_all(&staging).unwrap();
            chown(&vm_dir, &user.name);
            chmod(&vm_dir, 0o755);
            chmod(&staging, 0o700);
            vms.push(Vm {
                name: format!("vm-{shell}"),
                shell: (*shell).to_owned(),
                user,
                cert_dir,
                staging,
            });
        }
        let users: Vec<&str> = vms.iter().map(|vm| vm.user.name.as_str()).collect();
        let sshd = Sshd::start(SshdOptions {
            authorized_keys: vec![keys.public_line.clone()],
            accept_env: options.accept_env.clone(),
            set_env: options.set_env.clone(),
            // AllowUsers lines add up: the current user and ours.
            extra_config: vec![format!("AllowUsers {}", users.join(" "))],
        })
        .unwrap();
        // sshd reads authorized_keys as the user logging in.
        chmod(sshd.dir(), 0o755);
        chmod(&sshd.dir().join("authorized_keys"), 0o644);
        let known_hosts = root.join("known_hosts");
        std::fs::write(&known_hosts, sshd.known_hosts_line()).unwrap();
        let mut targets = String::new();
        for vm in &vms {
            targets.push_str(&format!(
                "[[targets]]\nname = \"{}\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\ncert_dir = \"{}\"\nagent = \"{}\"\nstaging_dir = \"{}\"\n\n",
                vm.name,
                sshd.port(),
                vm.user.name,
                vm.cert_dir.display(),
                options.agent.display(),
                vm.staging.display(),
            ));
        }
        let targets_file = root.join("targets.toml");
        std::fs::write(&targets_file, targets).unwrap();
        Self {
            vms,
            _sshd: sshd,
            keys,
            known_hosts,
            targets_file,
            pki_dir: root.join("pki"),
        }
    }

    /// The distributor, configured for this fleet.
    pub fn distributor(&self) -> Launch {
        Launch::workspace_bin("autobot-pki-distributor")
            .env("AUTOBOT_PKI_DIR", &self.pki_dir)
            .env("AUTOBOT_PKI_TARGETS", &self.targets_file)
            .env("AUTOBOT_SSH_KEY", &self.keys.private)
            .env("AUTOBOT_SSH_KNOWN_HOSTS", &self.known_hosts)
            .env("AUTOBOT_SSH_TIMEOUT_SECS", "60")
    }

    pub fn vm(&self, shell: &str) -> &Vm {
        self.vms.iter().find(|vm| vm.shell == shell).unwrap()
    }
}

/// The agent binary copied where every user can run it (the target dir
/// may not be readable by others).
pub fn install_agent(root: &Path) -> PathBuf {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    chmod(&bin, 0o755);
    let agent = bin.join("autobot-pki-agent");
    std::fs::copy(
        autobot_testkit::bins::workspace_bin("autobot-pki-agent").unwrap(),
        &agent,
    )
    .unwrap();
    chmod(&agent, 0o755);
    agent
}

/// What a certificate directory shows must be ONE set: the certificate
/// chains to the CA, and the key is the certificate's. Returns the
/// certificate's text, or `None` when the directory holds no set at all.
pub fn whole_set(dir: &Path) -> Result<Option<String>, String> {
    let names = ["ca-cert.pem", "server-cert.pem", "server-key.pem"];
    let present: Vec<bool> = names.iter().map(|n| dir.join(n).exists()).collect();
    if present.iter().all(|p| !p) {
        return Ok(None);
    }
    if present.iter().any(|p| !p) {
        return Err(format!(
            "{}: only part of a set: {present:?}",
            dir.display()
        ));
    }
    let openssl = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "openssl {args:?} in {}: {}{}",
                dir.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    openssl(&["verify", "-CAfile", "ca-cert.pem", "server-cert.pem"])?;
    let from_cert = openssl(&["x509", "-noout", "-pubkey", "-in", "server-cert.pem"])?;
    let from_key = openssl(&["pkey", "-pubout", "-in", "server-key.pem"])?;
    if from_cert != from_key {
        return Err(format!(
            "{}: the key is not the certificate's",
            dir.display()
        ));
    }
    Ok(Some(
        std::fs::read_to_string(dir.join("server-cert.pem")).unwrap(),
    ))
}

/// Staging directories (`autobot-pki-*`) left in `dir`.
pub fn staging_left(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("autobot-pki-"))
                .collect()
        })
        .unwrap_or_default()
}
