//! Checks of the deployment files, with the real tools:
//! - `infra/compose.yaml` against the Compose specification schema
//!   (check-jsonschema's vendored `compose-spec.json`, offline);
//! - `infra/jaeger/config*.yaml`: the structure check of
//!   `autobot_deploy_checks::jaeger_config`, and that compose and the jaeger
//!   role run that configuration with the same pinned release;
//! - `infra/systemd/*.service` with `systemd-analyze verify` in a temp root;
//! - `infra/sshd/autobot-trace-context.conf` with `sshd -T`;
//! - `ansible/`: `--syntax-check`, `ansible-lint`, and two real runs of the
//!   service roles against localhost into a temp prefix (the second must
//!   change nothing);
//! - `.env.example` lists every variable the code reads.
//!
//! Python tools come from `scripts/setup.d/40-ansible.sh`; a missing tool
//! fails the test with the command to run, never a silent skip.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SERVICES: [&str; 5] = [
    "autobot-backend",
    "autobot-ai-stack",
    "autobot-npu-worker",
    "autobot-browser",
    "autobot-pki-distributor",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

fn venv_bin() -> PathBuf {
    repo().join(".run/venv-ansible/bin")
}

/// A tool from the ansible venv; panics with the setup command when absent.
fn venv_tool(name: &str) -> PathBuf {
    let path = venv_bin().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/setup.sh (scripts/setup.d/40-ansible.sh installs \
         ansible-core, ansible-lint and check-jsonschema into .run/venv-ansible)",
        path.display()
    );
    path
}

fn system_tool(path: &str, package: &str) -> PathBuf {
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/setup.sh (or apt-get install {package})",
        path.display()
    );
    path
}

/// A command with the venv first on PATH (ansible-lint calls ansible-playbook).
fn command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![venv_bin()];
    dirs.extend(std::env::split_paths(&path));
    cmd.env("PATH", std::env::join_paths(dirs).expect("PATH joins"))
        .env("NO_COLOR", "1")
        .env("ANSIBLE_NOCOLOR", "1");
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// ---------------------------------------------------------------- compose

fn check_compose_schema(file: &Path) -> Output {
    run(command(&venv_tool("check-jsonschema"))
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(file))
}

/// YAML → JSON with the venv's PyYAML (an ansible-core dependency).
fn yaml_to_json(file: &Path) -> serde_json::Value {
    let out = run(command(&venv_tool("python"))
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
        ])
        .arg(file));
    assert!(
        out.status.success(),
        "cannot read {}: {}",
        file.display(),
        text(&out)
    );
    serde_json::from_slice(&out.stdout).expect("PyYAML wrote JSON")
}

#[test]
fn compose_file_matches_the_compose_specification() {
    let out = check_compose_schema(&repo().join("infra/compose.yaml"));
    assert!(
        out.status.success(),
        "infra/compose.yaml is not valid Compose: {}",
        text(&out)
    );
}

#[test]
fn compose_schema_check_rejects_a_misspelled_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compose.yaml");
    fs::write(
        &file,
        format!("services:\n  jaeger:\n    imagee: jaegertracing/jaeger:{JAEGER_VERSION}\n"),
    )
    .unwrap();
    let out = check_compose_schema(&file);
    assert!(
        !out.status.success(),
        "the schema check accepted a broken file: {}",
        text(&out)
    );
    assert!(text(&out).contains("imagee"), "{}", text(&out));
}

/// The Jaeger release compose and the ansible role pin (they must agree).
const JAEGER_VERSION: &str = "2.20.0";

#[test]
fn compose_runs_jaeger_with_its_config_and_a_volume_and_redis() {
    let compose = yaml_to_json(&repo().join("infra/compose.yaml"));
    let jaeger = &compose["services"]["jaeger"];
    assert_eq!(
        jaeger["image"],
        format!("jaegertracing/jaeger:{JAEGER_VERSION}")
    );
    assert_eq!(jaeger["environment"]["JAEGER_LISTEN_HOST"], "0.0.0.0");
    assert_eq!(
        jaeger["command"],
        serde_json::json!(["--config", "/etc/jaeger/config.yaml"])
    );
    let volumes: Vec<&str> = jaeger["volumes"]
        .as_array()
        .expect("jaeger mounts volumes")
        .iter()
        .map(|v| v.as_str().expect("short volume syntax"))
        .collect();
    for mount in [
        "./jaeger/config.yaml:/etc/jaeger/config.yaml:ro",
        "./jaeger/ui-config.json:/etc/jaeger/ui-config.json:ro",
    ] {
        assert!(volumes.contains(&mount), "{mount} not in {volumes:?}");
        let source = mount.split(':').next().unwrap();
        assert!(
            repo().join("infra").join(source).is_file(),
            "{source} is not in infra/"
        );
    }
    // Badger's directory is on the named volume, so traces survive a restart.
    let badger = jaeger["environment"]["JAEGER_BADGER_DIR"].as_str().unwrap();
    let data = volumes
        .iter()
        .find(|v| v.starts_with("jaeger-data:"))
        .expect("a named volume for the data");
    let target = data.split(':').nth(1).unwrap();
    assert!(badger.starts_with(target), "{badger} is not under {target}");
    assert!(compose["volumes"].get("jaeger-data").is_some());
    let ports: BTreeSet<String> = jaeger["ports"]
        .as_array()
        .expect("jaeger publishes ports")
        .iter()
        .map(|p| p.as_str().expect("short port syntax").to_owned())
        .collect();
    for port in ["4317:4317", "4318:4318", "16686:16686"] {
        assert!(
            ports.contains(port),
            "jaeger does not publish {port}: {ports:?}"
        );
    }
    let redis = &compose["services"]["redis"];
    assert!(
        redis["image"].as_str().unwrap_or("").starts_with("redis:"),
        "{redis}"
    );
    assert_eq!(redis["ports"][0], "6379:6379");
}

// ---------------------------------------------------------------- jaeger

fn jaeger_configs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(repo().join("infra/jaeger"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("config") && name.ends_with(".yaml")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_jaeger_config_holds_together() {
    let files = jaeger_configs();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in [
        "config.yaml",
        "config-tail-sampling.yaml",
        "config-elasticsearch.yaml",
        "config-opensearch.yaml",
        "config-cassandra.yaml",
        "config-clickhouse.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    for file in &files {
        let config = yaml_to_json(file);
        let problems =
            autobot_deploy_checks::jaeger_config::problems(&config, &repo().join("infra/jaeger"));
        assert!(
            problems.is_empty(),
            "{}:\n  {}",
            file.display(),
            problems.join("\n  ")
        );
    }
}

#[test]
fn the_jaeger_structure_check_fails_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let broken = fs::read_to_string(repo().join("infra/jaeger/config.yaml"))
        .unwrap()
        .replace("traces: badger_main", "traces: badger_typo");
    let file = dir.path().join("config.yaml");
    fs::write(&file, broken).unwrap();
    let problems = autobot_deploy_checks::jaeger_config::problems(
        &yaml_to_json(&file),
        &repo().join("infra/jaeger"),
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("storage.traces \"badger_typo\" is not a jaeger_storage backend")),
        "{problems:?}"
    );
}

/// The default keeps traces across restarts and feeds the Monitor tab;
/// the tail-sampling variant keeps errors, slow traces and a share of the rest.
#[test]
fn the_default_persists_and_the_tail_variant_keeps_errors_and_slow_traces() {
    let jaeger = repo().join("infra/jaeger");
    let config = yaml_to_json(&jaeger.join("config.yaml"));
    let backend = &config["extensions"]["jaeger_storage"]["backends"]["badger_main"]["badger"];
    assert_eq!(backend["ephemeral"], false);
    assert!(
        backend["ttl"]["spans"]
            .as_str()
            .unwrap()
            .contains("JAEGER_RETENTION")
    );
    let prom =
        &config["extensions"]["jaeger_storage"]["metric_backends"]["prometheus_red"]["prometheus"];
    assert_eq!(prom["metric_namespace"], "traces_span_metrics");
    assert_eq!(prom["normalize_calls"], true);
    assert_eq!(prom["normalize_duration"], true);
    for protocol in ["grpc", "http"] {
        let endpoint = config["receivers"]["otlp"]["protocols"][protocol]["endpoint"]
            .as_str()
            .unwrap();
        assert!(endpoint.contains("JAEGER_LISTEN_HOST"), "{endpoint}");
    }
    let ui: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(jaeger.join("ui-config.json")).unwrap()).unwrap();
    assert_eq!(ui["monitor"]["menuEnabled"], true);

    let tail = yaml_to_json(&jaeger.join("config-tail-sampling.yaml"));
    assert_eq!(
        tail["service"]["pipelines"]["traces"]["processors"],
        serde_json::json!(["memory_limiter", "tail_sampling", "batch"])
    );
    let policies: Vec<&str> = tail["processors"]["tail_sampling"]["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert_eq!(policies, ["status_code", "latency", "probabilistic"]);
    assert_eq!(
        tail["processors"]["tail_sampling"]["policies"][0]["status_code"]["status_codes"],
        serde_json::json!(["ERROR"])
    );
}

/// The role installs the same release and every configuration file.
#[test]
fn the_jaeger_role_pins_the_release_and_ships_every_config() {
    let defaults = yaml_to_json(&repo().join("ansible/roles/jaeger/defaults/main.yml"));
    assert_eq!(defaults["jaeger_version"], JAEGER_VERSION);
    assert_eq!(defaults["jaeger_config_file"], "config.yaml");
    let role = repo().join("ansible/roles/jaeger/tasks");
    let tasks = fs::read_to_string(role.join("main.yml")).unwrap()
        + &fs::read_to_string(role.join("configs.yml")).unwrap();
    for file in jaeger_configs() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            tasks.contains(&format!("- {name}\n")),
            "the jaeger role does not install {name}"
        );
    }
    assert!(tasks.contains("/infra/jaeger/ui-config.json\""));
    assert!(
        tasks.contains("/api/v3/services"),
        "health check over API v3"
    );
    let unit =
        unit_settings(&fs::read_to_string(repo().join("infra/systemd/jaeger.service")).unwrap());
    assert_eq!(
        setting(&unit, "ExecStart"),
        Some("/usr/local/bin/jaeger --config /etc/jaeger/${JAEGER_CONFIG_FILE}")
    );
    assert_eq!(
        setting(&unit, "EnvironmentFile"),
        Some("/etc/jaeger/jaeger.env")
    );
    assert_eq!(setting(&unit, "StateDirectory"), Some("jaeger"));
}

// ---------------------------------------------------------------- systemd

fn unit_settings(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn setting<'a>(settings: &'a [(String, String)], key: &str) -> Option<&'a str> {
    settings
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `systemd-analyze verify` of one unit inside a temp root holding the
/// system's own units (for sysinit.target & co.) and an executable stub at
/// the unit's ExecStart path. Returns everything it printed.
fn systemd_verify(unit_name: &str, unit: &str) -> (Output, String) {
    let analyze = system_tool("/usr/bin/systemd-analyze", "systemd");
    let root = tempfile::tempdir().unwrap();
    let system_units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("sysinit.target").is_file())
        .expect("this machine has systemd's units (sysinit.target) in /usr/lib/systemd/system");
    let target_units = root.path().join("usr/lib/systemd/system");
    fs::create_dir_all(&target_units).unwrap();
    for entry in fs::read_dir(system_units).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), target_units.join(entry.file_name())).unwrap();
        }
    }
    let etc = root.path().join("etc/systemd/system");
    fs::create_dir_all(&etc).unwrap();
    let unit_path = etc.join(unit_name);
    fs::write(&unit_path, unit).unwrap();
    if let Some(exec) = setting(&unit_settings(unit), "ExecStart") {
        let binary = exec
            .split_whitespace()
            .next()
            .unwrap()
            .trim_start_matches(['-', '@', '+', '!']);
        let stub = root.path().join(binary.trim_start_matches('/'));
        fs::create_dir_all(stub.parent().unwrap()).unwrap();
        fs::write(&stub, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&stub, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = run(Command::new(analyze)
        .arg("verify")
        .arg("--man=no")
        .arg(format!("--root={}", root.path().display()))
        .arg(&unit_path));
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, said)
}

#[test]
fn systemd_units_verify_without_a_complaint() {
    let units = SERVICES
        .iter()
        .map(|s| format!("infra/systemd/{s}.service"))
        .chain(
            [
                "infra/systemd/jaeger.service",
                // jaeger_engine=autobot-trace (the lab) installs it as jaeger.service.
                "infra/systemd/jaeger-autobot-trace.service",
                // The lab's outside world (infra/lab/outside.yml).
                "infra/lab/systemd/autobot-llm-standin.service",
                "infra/lab/systemd/autobot-demo-site.service",
            ]
            .map(str::to_owned),
        );
    for path in units {
        let unit = fs::read_to_string(repo().join(&path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let name = Path::new(&path).file_name().unwrap().to_str().unwrap();
        let (out, said) = systemd_verify(name, &unit);
        // verify only warns (exit 0) about unknown keys and bad values: any output fails.
        assert!(
            out.status.success() && said.trim().is_empty(),
            "systemd-analyze verify {path}: {}",
            text(&out)
        );
    }
}

#[test]
fn systemd_verify_reports_a_broken_unit() {
    let unit = "[Service]\nExecStart=/usr/local/bin/x\nRestart=sometimes\nTimeoutStopSecs=30\n";
    let (_, said) = systemd_verify("broken.service", unit);
    assert!(
        said.contains("sometimes"),
        "bad Restart= value not reported: {said}"
    );
    assert!(
        said.contains("TimeoutStopSecs"),
        "unknown key not reported: {said}"
    );
}

fn seconds(value: &str) -> u64 {
    let v = value.trim();
    let (number, scale) = if let Some(n) = v.strip_suffix("min") {
        (n, 60)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1)
    } else {
        (v, 1)
    };
    number
        .trim()
        .parse::<u64>()
        .unwrap_or_else(|_| panic!("TimeoutStopSec={value} is not N[s|min]"))
        * scale
}

#[test]
fn service_units_run_hardened_as_their_own_user_with_their_env_file() {
    for service in SERVICES {
        let unit =
            fs::read_to_string(repo().join(format!("infra/systemd/{service}.service"))).unwrap();
        let s = unit_settings(&unit);
        let want = [
            // One system user per service (docs/security.md).
            ("User", (*service).to_owned()),
            ("EnvironmentFile", format!("/etc/autobot/{service}.env")),
            ("ExecStart", format!("/usr/local/bin/{service}")),
            ("Restart", "on-failure".to_owned()),
            ("NoNewPrivileges", "yes".to_owned()),
            ("ProtectSystem", "strict".to_owned()),
            ("ProtectHome", "yes".to_owned()),
            ("PrivateTmp", "yes".to_owned()),
        ];
        for (key, value) in want {
            assert_eq!(
                setting(&s, key),
                Some(value.as_str()),
                "{service}.service: {key}"
            );
        }
        // The span flush alone may take AUTOBOT_TRACE_SHUTDOWN_TIMEOUT_MS (5 s), after
        // in-flight requests end: leave at least twice that before SIGKILL.
        let stop = seconds(setting(&s, "TimeoutStopSec").expect("TimeoutStopSec is set"));
        assert!(
            stop >= 10,
            "{service}.service: TimeoutStopSec={stop}s is too short for the span flush"
        );
    }
    let pki = unit_settings(
        &fs::read_to_string(repo().join("infra/systemd/autobot-pki-distributor.service")).unwrap(),
    );
    assert_eq!(
        setting(&pki, "ReadWritePaths"),
        Some("/var/lib/autobot/pki")
    );
    let jaeger =
        unit_settings(&fs::read_to_string(repo().join("infra/systemd/jaeger.service")).unwrap());
    assert!(
        jaeger
            .iter()
            .any(|(k, v)| k == "Environment" && v == "JAEGER_LISTEN_HOST=0.0.0.0"),
        "jaeger listens beyond localhost unless jaeger.env narrows it"
    );
}

// ---------------------------------------------------------------- sshd

#[test]
fn sshd_accepts_the_trace_context_with_the_snippet() {
    let sshd = system_tool("/usr/sbin/sshd", "openssh-server");
    let keygen = system_tool("/usr/bin/ssh-keygen", "openssh-client");
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("host_ed25519");
    let out = run(Command::new(keygen)
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key));
    assert!(out.status.success(), "{}", text(&out));
    let snippet = repo().join("infra/sshd/autobot-trace-context.conf");
    let config = dir.path().join("sshd_config");
    fs::write(
        &config,
        format!("HostKey {}\nInclude {}\n", key.display(), snippet.display()),
    )
    .unwrap();
    // -T: check the config and print the effective settings.
    let out = run(Command::new(sshd).arg("-T").arg("-f").arg(&config));
    assert!(
        out.status.success(),
        "sshd refuses the snippet: {}",
        text(&out)
    );
    let effective = String::from_utf8_lossy(&out.stdout).to_lowercase();
    for name in ["traceparent", "tracestate", "baggage"] {
        assert!(
            effective
                .lines()
                .any(|l| l.starts_with("acceptenv ") && l.split_whitespace().any(|w| w == name)),
            "sshd does not accept {name} with the snippet:\n{effective}"
        );
    }
}

// ---------------------------------------------------------------- ansible

fn ansible(program: &str) -> Command {
    let mut cmd = command(&venv_tool(program));
    let dir = repo().join("ansible");
    cmd.current_dir(&dir)
        .env("ANSIBLE_CONFIG", dir.join("ansible.cfg"))
        .env("ANSIBLE_ROLES_PATH", dir.join("roles"))
        .env("ANSIBLE_LOCAL_TEMP", std::env::temp_dir())
        .env(
            "ANSIBLE_HOME",
            std::env::temp_dir().join("autobot-deploy-checks-ansible"),
        );
    cmd
}

#[test]
fn ansible_site_playbook_passes_syntax_check() {
    let out = run(ansible("ansible-playbook").args(["--syntax-check", "site.yml"]));
    assert!(
        out.status.success(),
        "ansible-playbook --syntax-check site.yml: {}",
        text(&out)
    );
}

#[test]
fn ansible_lint_is_clean() {
    let out = run(ansible("ansible-lint").args(["--offline", "--strict"]));
    assert!(
        out.status.success(),
        "ansible-lint found problems: {}",
        text(&out)
    );
}

fn recap_counts(output: &str) -> (u32, u32) {
    let line = output
        .lines()
        .find(|l| l.starts_with("localhost") && l.contains("changed="))
        .unwrap_or_else(|| panic!("no PLAY RECAP line:\n{output}"));
    let count = |key: &str| -> u32 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line}"))
    };
    (count("changed="), count("failed="))
}

#[test]
fn ansible_service_roles_install_into_a_prefix_and_a_second_run_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let bins = work.path().join("bin");
    fs::create_dir_all(&bins).unwrap();
    let target = repo().join("target/debug");
    let mut stand_ins = Vec::new();
    for bin in SERVICES.iter().copied().chain(["autobot-pki-agent"]) {
        let built = target.join(bin);
        if built.is_file() {
            fs::copy(&built, bins.join(bin)).unwrap();
        } else {
            // Not built (yet): a small stand-in file; the roles only copy it.
            fs::write(
                bins.join(bin),
                format!("#!/bin/sh\necho 'stand-in for {bin}'\n"),
            )
            .unwrap();
            stand_ins.push(bin);
        }
    }
    if !stand_ins.is_empty() {
        eprintln!(
            "stand-in files for binaries not built: {stand_ins:?} (cargo build --workspace --bins)"
        );
    }
    let secrets = work.path().join("secrets");
    let playbook = work.path().join("local.yml");
    fs::write(
        &playbook,
        r#"- name: AutoBot service roles into a temp prefix
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  roles: [sshd_trace_context, pki_agent, backend, ai_stack, npu_worker, browser, pki_distributor]
"#,
    )
    .unwrap();
    let play = || {
        let out = run(ansible("ansible-playbook")
            .args(["-i", "localhost,"])
            .arg(&playbook)
            .args(["-e", "@group_vars/all.yml"])
            .args(["-e", "autobot_manage_system=false"])
            .arg("-e")
            .arg(format!("autobot_root={}", root.display()))
            .arg("-e")
            .arg(format!("autobot_bin_dir={}", bins.display()))
            .arg("-e")
            .arg(format!("autobot_repo_dir={}", repo().display()))
            .arg("-e")
            .arg(format!("autobot_secrets_dir={}", secrets.display())));
        let said = text(&out);
        assert!(out.status.success(), "ansible-playbook failed: {said}");
        recap_counts(&said)
    };

    let (changed, failed) = play();
    assert_eq!(failed, 0);
    assert!(changed > 0, "the first run installed nothing");

    for service in SERVICES {
        let installed = root.join("usr/local/bin").join(service);
        assert_eq!(
            fs::read(&installed).unwrap(),
            fs::read(bins.join(service)).unwrap(),
            "{service} binary"
        );
        let unit =
            fs::read_to_string(root.join(format!("etc/systemd/system/{service}.service"))).unwrap();
        assert_eq!(
            unit,
            fs::read_to_string(repo().join(format!("infra/systemd/{service}.service"))).unwrap()
        );
        let env = fs::read_to_string(root.join(format!("etc/autobot/{service}.env"))).unwrap();
        // Mutual TLS is on by default (autobot_tls): the VM's certificate
        // for serving and calling, and for OTLP to Jaeger.
        for line in [
            "AUTOBOT_JAEGER_ENDPOINT=https://172.16.168.23:4317",
            "AUTOBOT_TRACE_SAMPLE_RATE=1.0",
            "AUTOBOT_TLS_CERT=/etc/autobot/certs/server-cert.pem",
            "AUTOBOT_TLS_KEY=/etc/autobot/certs/server-key.pem",
            "AUTOBOT_TLS_CA=/etc/autobot/certs/ca-cert.pem",
            "OTEL_EXPORTER_OTLP_CERTIFICATE=/etc/autobot/certs/ca-cert.pem",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE=/etc/autobot/certs/server-cert.pem",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY=/etc/autobot/certs/server-key.pem",
        ] {
            assert!(
                env.lines().any(|l| l == line),
                "{service}.env lacks {line}:\n{env}"
            );
        }
    }
    let backend_env = fs::read_to_string(root.join("etc/autobot/autobot-backend.env")).unwrap();
    for line in [
        "AUTOBOT_BIND=172.16.168.20:8001",
        "AUTOBOT_API_KEYS_FILE=/etc/autobot/autobot-backend.keys",
        "AUTOBOT_AI_STACK_URL=https://172.16.168.24:8080",
        "AUTOBOT_BROWSER_URL=https://172.16.168.25:3000",
        "AUTOBOT_PKI_URL=https://172.16.168.20:8002",
        "AUTOBOT_NPU_URL=https://172.16.168.22:8081",
    ] {
        assert!(
            backend_env.lines().any(|l| l == line),
            "backend env lacks {line}:\n{backend_env}"
        );
    }
    // The backend's Redis URL names its own ACL user; its password is the
    // one the password lookup keeps in the secrets folder.
    let redis_password = fs::read_to_string(secrets.join("redis-autobot-backend")).unwrap();
    let redis_url = format!(
        "AUTOBOT_REDIS_URL=redis://autobot-backend:{}@172.16.168.23:6379/0",
        redis_password.trim()
    );
    assert!(
        backend_env.lines().any(|l| l == redis_url),
        "backend env lacks its Redis user:\n{backend_env}"
    );
    // The operator key file holds the deploy key's sha256, never the key.
    let deploy_key = fs::read_to_string(secrets.join("api-key-deploy")).unwrap();
    let keys = fs::read_to_string(root.join("etc/autobot/autobot-backend.keys")).unwrap();
    let key_lines: Vec<&str> = keys
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert_eq!(key_lines.len(), 1, "{keys}");
    let words: Vec<&str> = key_lines[0].split(' ').collect();
    assert_eq!(&words[..2], ["deploy", "admin"], "{keys}");
    assert!(
        words[2].len() == 64 && words[2].bytes().all(|b| b.is_ascii_hexdigit()),
        "{keys}"
    );
    assert!(
        !keys.contains(deploy_key.trim()),
        "the key itself is in the file"
    );
    assert!(root.join("usr/local/bin/autobot-pki-agent").is_file());
    let wrapper = fs::read_to_string(root.join("usr/local/lib/autobot/pki-agent-ssh")).unwrap();
    assert!(
        wrapper.contains("/usr/local/bin/autobot-pki-agent install --staging"),
        "{wrapper}"
    );
    let agent_env = fs::read_to_string(root.join("home/autobot-pki-agent/.env")).unwrap();
    for line in [
        "AUTOBOT_JAEGER_ENDPOINT=https://172.16.168.23:4317",
        // The key it installs is the services' to read (0640, this group).
        "AUTOBOT_PKI_KEY_GROUP=autobot-tls",
        "OTEL_EXPORTER_OTLP_CLIENT_KEY=/etc/autobot/certs/server-key.pem",
    ] {
        assert!(
            agent_env.lines().any(|l| l == line),
            "agent env lacks {line}:\n{agent_env}"
        );
    }
    assert!(
        root.join("etc/ssh/sshd_config.d/autobot-trace-context.conf")
            .is_file()
    );
    assert!(root.join("var/lib/autobot/pki").is_dir());

    let (changed, failed) = play();
    assert_eq!(
        (changed, failed),
        (0, 0),
        "the second run changed something"
    );
}

// ---------------------------------------------------------------- .env.example

/// Uppercase names that are environment of the system, not AutoBot settings.
/// (HOSTNAME: the jobs consumer's default name.)
const NOT_SETTINGS: [&str; 5] = ["HOME", "PATH", "USER", "TMPDIR", "HOSTNAME"];

/// Variable names the code reads: every `"AUTOBOT_…"`/`"OTEL_…"` literal, and
/// any other uppercase literal passed to an env lookup (`var("X")`,
/// `var_os("X")`, `get("X")`, `lookup("X")`, clap's `env = "X"`).
fn variables_in(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = source.as_bytes();
    // Every `"NAME"` (uppercase, digits, underscores between two quotes); no need
    // to pair quotes, which escaped quotes and char literals would upset.
    for (start, _) in source.match_indices('"') {
        let name_len = bytes[start + 1..]
            .iter()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || **b == b'_')
            .count();
        let end = start + 1 + name_len;
        if name_len < 3 || bytes.get(end) != Some(&b'"') || !bytes[start + 1].is_ascii_uppercase() {
            continue;
        }
        let literal = &source[start + 1..end];
        if literal.starts_with("AUTOBOT_") || literal.starts_with("OTEL_") {
            found.insert(literal.to_owned());
            continue;
        }
        let before = source[..start].trim_end();
        let lookup = ["var(", "var_os(", "get(", "lookup(", "env ="]
            .iter()
            .any(|call| before.ends_with(call));
        if lookup && !NOT_SETTINGS.contains(&literal) && !literal.starts_with("CARGO_") {
            found.insert(literal.to_owned());
        }
    }
    found
}

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            // Test programs and benchmarks set variables; binaries read them from src/.
            if !["tests", "benches", "target"].contains(&name.to_str().unwrap_or("")) {
                rust_sources(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn variable_scanner_finds_env_lookups() {
    let found = variables_in(
        r#"let a = get("AUTOBOT_BIND"); std::env::var("OPENAI_API_KEY"); lookup("HOME");
           #[arg(long, env = "RUST_LOG")] x; const X: &str = "OTEL_SDK_DISABLED"; "POST"; "a \"B\""#,
    );
    let want: BTreeSet<String> = [
        "AUTOBOT_BIND",
        "OPENAI_API_KEY",
        "OTEL_SDK_DISABLED",
        "RUST_LOG",
    ]
    .map(String::from)
    .into();
    assert_eq!(found, want);
}

#[test]
fn env_example_lists_every_variable_the_code_reads() {
    let root = repo();
    let mut sources = Vec::new();
    for dir in ["services", "shared", "tools"] {
        rust_sources(&root.join(dir), &mut sources);
    }
    // This crate names variables in its own checks; testkit is test support;
    // the lab's tool reads what scripts/lab.sh sets (docs/lab.md).
    sources.retain(|p| {
        !p.starts_with(root.join("tools/deploy-checks"))
            && !p.starts_with(root.join("shared/testkit"))
            && !p.starts_with(root.join("tools/lab"))
    });
    assert!(
        sources.len() > 10,
        "found only {} Rust files under services/, shared/, tools/",
        sources.len()
    );

    let example = fs::read_to_string(root.join(".env.example")).expect(".env.example exists");
    let listed: BTreeSet<String> = example
        .lines()
        .map(|l| l.trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('='))
        .map(|(name, _)| name.trim().to_owned())
        .collect();

    let mut missing = Vec::new();
    for file in &sources {
        let source = fs::read_to_string(file).unwrap();
        for name in variables_in(&source) {
            if !listed.contains(&name) {
                missing.push(format!(
                    "{name} (read in {})",
                    file.strip_prefix(&root).unwrap().display()
                ));
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        ".env.example does not list these variables (add each, commented, with its default):\n  {}",
        missing.join("\n  ")
    );
}

// ---------------------------------------------------------------- Prometheus, Alertmanager, Grafana

fn prometheus_dir() -> PathBuf {
    repo().join("infra/prometheus")
}

fn promtool() -> PathBuf {
    system_tool("/usr/bin/promtool", "prometheus")
}

#[test]
fn prometheus_config_and_rules_pass_promtool() {
    let dir = prometheus_dir();
    let out = run(command(&promtool())
        .arg("check")
        .arg("config")
        .arg(dir.join("prometheus.yml")));
    assert!(
        out.status.success(),
        "promtool check config:\n{}",
        text(&out)
    );
    let out = run(command(&promtool())
        .arg("check")
        .arg("rules")
        .arg(dir.join("rules/recording.yml"))
        .arg(dir.join("rules/alerts.yml")));
    assert!(
        out.status.success(),
        "promtool check rules:\n{}",
        text(&out)
    );
}

#[test]
fn promtool_check_rules_fails_a_broken_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.yml");
    fs::write(
        &broken,
        "groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum by (job (up)\n",
    )
    .unwrap();
    let out = run(command(&promtool()).arg("check").arg("rules").arg(&broken));
    assert!(!out.status.success(), "{}", text(&out));
}

/// The alert names of infra/prometheus/rules/alerts.yml.
fn alert_names() -> Vec<String> {
    let rules = yaml_to_json(&prometheus_dir().join("rules/alerts.yml"));
    rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter())
        .filter_map(|r| r["alert"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn every_alert_has_promtool_unit_tests_firing_and_silent_and_they_pass() {
    let tests_file = prometheus_dir().join("tests/alerts.test.yml");
    let out = run(command(&promtool())
        .arg("test")
        .arg("rules")
        .arg(&tests_file));
    assert!(out.status.success(), "promtool test rules:\n{}", text(&out));
    let tests = yaml_to_json(&tests_file);
    let cases: Vec<&serde_json::Value> = tests["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().into_iter().flatten())
        .collect();
    let names = alert_names();
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        let of_it: Vec<_> = cases.iter().filter(|c| c["alertname"] == *name).collect();
        let fires = of_it
            .iter()
            .any(|c| c["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()));
        let silent = of_it
            .iter()
            .any(|c| c["exp_alerts"].as_array().is_none_or(|a| a.is_empty()));
        assert!(
            fires && silent,
            "{name}: a case where it fires and one where it stays silent"
        );
    }
}

#[test]
fn every_alert_has_a_runbook_entry_it_links_to() {
    let runbook = fs::read_to_string(repo().join("docs/runbook.md")).unwrap();
    let alerts = fs::read_to_string(prometheus_dir().join("rules/alerts.yml")).unwrap();
    for name in alert_names() {
        assert!(
            runbook
                .lines()
                .any(|l| l.starts_with('#') && l.trim_start_matches('#').trim() == name),
            "docs/runbook.md has no heading `{name}`"
        );
        let anchor = format!("docs/runbook.md#{}", name.to_lowercase());
        assert!(alerts.contains(&anchor), "{name} links to {anchor}");
    }
}

#[test]
fn alertmanager_config_passes_amtool() {
    let amtool = system_tool("/usr/bin/amtool", "prometheus-alertmanager");
    let out = run(command(&amtool)
        .arg("check-config")
        .arg(prometheus_dir().join("alertmanager.yml")));
    assert!(out.status.success(), "amtool check-config:\n{}", text(&out));
}

#[test]
fn grafana_dashboards_and_provisioning_hold_together() {
    let grafana = repo().join("infra/grafana");
    let mut uids = BTreeSet::new();
    let mut dashboards = 0;
    for entry in fs::read_dir(grafana.join("dashboards")).unwrap() {
        let path = entry.unwrap().path();
        let d: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).expect("JSON");
        dashboards += 1;
        assert!(uids.insert(d["uid"].as_str().expect("uid").to_owned()));
        let panels = d["panels"].as_array().expect("panels");
        assert!(!panels.is_empty(), "{}", path.display());
        for p in panels {
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{}: {}", path.display(), p["title"]);
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "autobot-prometheus");
                assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()));
            }
        }
    }
    assert_eq!(dashboards, 4);
    let sources = yaml_to_json(&grafana.join("provisioning/datasources/autobot.yml"));
    let uids_of_sources: Vec<&str> = sources["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids_of_sources, ["autobot-prometheus", "autobot-jaeger"]);
    assert_eq!(
        sources["datasources"][0]["jsonData"]["exemplarTraceIdDestinations"][0]["datasourceUid"],
        "autobot-jaeger"
    );
    let providers = yaml_to_json(&grafana.join("provisioning/dashboards/autobot.yml"));
    assert_eq!(providers["providers"][0]["type"], "file");
}

/// The jaeger role's configurations with autobot_tls (the default): every
/// variant's OTLP/gRPC receiver requires a client certificate of the CA,
/// its OTLP/HTTP receiver serves TLS without asking browsers for one, and
/// nothing else in the file changes; without TLS, the files as they are.
#[test]
fn ansible_jaeger_role_turns_on_the_receivers_tls_blocks() {
    let work = tempfile::tempdir().unwrap();
    let playbook = work.path().join("jaeger-configs.yml");
    fs::write(
        &playbook,
        r#"- name: Jaeger's configurations into a temp prefix
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: The jaeger role's configuration tasks
      ansible.builtin.include_role:
        name: jaeger
        tasks_from: configs.yml
"#,
    )
    .unwrap();
    for tls in [true, false] {
        let root = work.path().join(format!("root-{tls}"));
        let out = run(ansible("ansible-playbook")
            .args(["-i", "localhost,"])
            .arg(&playbook)
            .args(["-e", "@group_vars/all.yml"])
            .args(["-e", "autobot_manage_system=false"])
            .arg("-e")
            .arg(format!("autobot_tls={tls}"))
            .arg("-e")
            .arg(format!("autobot_root={}", root.display()))
            .arg("-e")
            .arg(format!("autobot_repo_dir={}", repo().display())));
        assert!(
            out.status.success(),
            "ansible-playbook failed: {}",
            text(&out)
        );
        let mut variants = 0;
        for source in jaeger_configs() {
            let name = source.file_name().unwrap().to_str().unwrap().to_owned();
            variants += 1;
            let installed = root.join("etc/jaeger").join(&name);
            let config = yaml_to_json(&installed);
            let protocols = &config["receivers"]["otlp"]["protocols"];
            if !tls {
                assert!(protocols["grpc"].get("tls").is_none(), "{name}");
                assert_eq!(
                    fs::read_to_string(&installed).unwrap().trim_end(),
                    fs::read_to_string(&source).unwrap().trim_end(),
                    "{name}"
                );
                continue;
            }
            let grpc = &protocols["grpc"]["tls"];
            assert_eq!(
                grpc["cert_file"], "/etc/autobot/certs/server-cert.pem",
                "{name}"
            );
            assert_eq!(
                grpc["key_file"], "/etc/autobot/certs/server-key.pem",
                "{name}"
            );
            assert_eq!(
                grpc["client_ca_file"], "/etc/autobot/certs/ca-cert.pem",
                "{name}"
            );
            let http = &protocols["http"]["tls"];
            assert_eq!(
                http["cert_file"], "/etc/autobot/certs/server-cert.pem",
                "{name}"
            );
            assert!(
                http.get("client_ca_file").is_none(),
                "{name}: browsers show no certificate"
            );
            // Only the receivers changed: the rest is the file in infra/jaeger.
            let mut expected = yaml_to_json(&source);
            expected["receivers"]["otlp"]["protocols"]["grpc"]["tls"] = grpc.clone();
            expected["receivers"]["otlp"]["protocols"]["http"]["tls"] = http.clone();
            assert_eq!(config, expected, "{name}");
        }
        assert_eq!(variants, 6);
    }
}

#[test]
fn ansible_monitoring_roles_install_checked_configs_into_a_prefix_and_a_second_run_changes_nothing()
{
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    let secrets = work.path().join("secrets");
    let playbook = work.path().join("monitoring.yml");
    fs::write(
        &playbook,
        r#"- name: AutoBot monitoring roles into a temp prefix
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  roles: [prometheus, grafana]
"#,
    )
    .unwrap();
    // promtool checks that the scrapes' TLS files exist (the VM's set).
    let certs = work.path().join("certs");
    fs::create_dir_all(&certs).unwrap();
    for file in ["ca-cert.pem", "server-cert.pem", "server-key.pem"] {
        fs::write(certs.join(file), "").unwrap();
    }
    let play = || {
        let out = run(ansible("ansible-playbook")
            .args(["-i", "localhost,"])
            .arg(&playbook)
            .args(["-e", "@group_vars/all.yml"])
            .args(["-e", "autobot_manage_system=false"])
            .args(["-e", "autobot_ip_redis_jaeger=10.9.0.23"])
            .arg("-e")
            .arg(format!("autobot_cert_dir={}", certs.display()))
            .args([
                "-e",
                "prometheus_page_webhook_url=http://pager.example:9000/page",
            ])
            .arg("-e")
            .arg(format!("autobot_root={}", root.display()))
            .arg("-e")
            .arg(format!("autobot_repo_dir={}", repo().display()))
            .arg("-e")
            .arg(format!("autobot_secrets_dir={}", secrets.display())));
        let said = text(&out);
        assert!(out.status.success(), "ansible-playbook failed: {said}");
        recap_counts(&said)
    };
    let (changed, failed) = play();
    assert_eq!(failed, 0);
    assert!(changed > 0, "the first run installed nothing");

    // What the role wrote holds together for the real tools.
    let etc = root.join("etc/prometheus");
    let out = run(command(&promtool())
        .arg("check")
        .arg("config")
        .arg(etc.join("prometheus.yml")));
    assert!(out.status.success(), "{}", text(&out));
    // With TLS (the default) the AutoBot jobs scrape https with the VM's
    // certificate; the others stay as infra/prometheus/prometheus.yml has them.
    let config = yaml_to_json(&etc.join("prometheus.yml"));
    for job in config["scrape_configs"].as_array().unwrap() {
        let name = job["job_name"].as_str().unwrap();
        if name.starts_with("autobot-") {
            assert_eq!(job["scheme"], "https", "{name}");
            assert_eq!(
                job["tls_config"]["key_file"],
                certs.join("server-key.pem").display().to_string(),
                "{name}"
            );
        } else {
            assert!(
                job.get("scheme").is_none() && job.get("tls_config").is_none(),
                "{name}"
            );
        }
    }
    let redis = fs::read_to_string(etc.join("targets/redis.yml")).unwrap();
    assert!(
        redis.contains(r#"- targets: ["10.9.0.23:9121"]"#),
        "{redis}"
    );
    let backend = fs::read_to_string(etc.join("targets/autobot-backend.yml")).unwrap();
    assert!(
        backend.contains(r#"- targets: ["172.16.168.20:8001"]"#),
        "{backend}"
    );
    let amtool = system_tool("/usr/bin/amtool", "prometheus-alertmanager");
    let out = run(command(&amtool)
        .arg("check-config")
        .arg(etc.join("alertmanager.yml")));
    assert!(out.status.success(), "{}", text(&out));
    let am = fs::read_to_string(etc.join("alertmanager.yml")).unwrap();
    assert!(am.contains("url: http://pager.example:9000/page"), "{am}");
    let flags = fs::read_to_string(root.join("etc/default/prometheus")).unwrap();
    assert!(
        flags.contains("--web.listen-address=10.9.0.23:9090")
            && flags.contains("--enable-feature=exemplar-storage"),
        "{flags}"
    );
    let sources =
        fs::read_to_string(root.join("etc/grafana/provisioning/datasources/autobot.yml")).unwrap();
    assert!(sources.contains("url: http://10.9.0.23:9090"), "{sources}");
    assert!(
        root.join("var/lib/grafana/dashboards/autobot/autobot-red.json")
            .is_file()
    );

    let (changed, failed) = play();
    assert_eq!(
        (changed, failed),
        (0, 0),
        "the second run changed something"
    );
}
