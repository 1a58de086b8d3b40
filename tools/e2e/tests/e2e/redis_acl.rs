//! Redis with ACL users and passwords, set up as docs/security.md says
//! (`user default off`, one user per service with only the commands it
//! runs): the backend and the npu-worker work with
//! `redis://user:password@host:port/0` and an embedding job round-trips; a
//! wrong password stops each at start with exit status 2 naming
//! AUTOBOT_REDIS_URL, redacted, and the password appears in no output.

use std::path::PathBuf;

use serde_json::{Value, json};

use autobot_testkit::operator_keys::OperatorKeys;
use autobot_testkit::process::Launch;
use autobot_testkit::redis::{Acl, RedisServer};

// With the characters a URL must percent-encode (docs/security.md).
const BACKEND_PASSWORD: &str = "b4ckend@Pw:7d/1e0c";
const NPU_PASSWORD: &str = "npu/Pw@93:af24";
const WRONG_PASSWORD: &str = "wr0ng:Pw@51/c2aa";

/// The ACL of docs/security.md ("Redis"), with the passwords of this test,
/// and a user for the test itself.
fn documented_acl() -> Acl {
    let doc = std::fs::read_to_string(repo_root().join("docs/security.md")).unwrap();
    let mut lines: Vec<String> = doc
        .lines()
        // The ACL is the indented code block; prose lines may start with "user" too.
        .filter(|l| l.starts_with("    user "))
        .map(str::trim)
        .map(|l| {
            l.replace(
                ">PASSWORD",
                &format!(
                    ">{}",
                    if l.starts_with("user autobot-backend ") {
                        BACKEND_PASSWORD
                    } else {
                        NPU_PASSWORD
                    }
                ),
            )
        })
        .collect();
    assert_eq!(
        lines
            .iter()
            .map(|l| l.split(' ').nth(1).unwrap())
            .collect::<Vec<_>>(),
        ["default", "autobot-backend", "autobot-npu"],
        "the ACL lines of docs/security.md"
    );
    lines.push("user tester on >tester-pw ~* &* +@all".into());
    Acl {
        lines,
        user: "tester".into(),
        password: "tester-pw".into(),
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_dir() -> PathBuf {
    let dir = repo_root().join(".run/models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "no model at {}: run scripts/setup.sh",
        dir.display()
    );
    dir
}

fn npu_worker(redis_url: &str) -> Launch {
    Launch::workspace_bin("autobot-npu-worker")
        .env("AUTOBOT_REDIS_URL", redis_url)
        .env("AUTOBOT_NPU_MODEL_DIR", model_dir())
        .env("OTEL_TRACES_EXPORTER", "none")
}

fn backend(redis_url: &str, keys: &OperatorKeys) -> Launch {
    Launch::workspace_bin("autobot-backend")
        .env("AUTOBOT_REDIS_URL", redis_url)
        .env("AUTOBOT_API_KEYS_FILE", &keys.file)
        .env("OTEL_TRACES_EXPORTER", "none")
}

/// Neither as written nor percent-encoded as in the URL.
fn assert_no_password(output: &str, what: &str) {
    for password in [BACKEND_PASSWORD, NPU_PASSWORD, WRONG_PASSWORD] {
        let encoded = password
            .replace('@', "%40")
            .replace(':', "%3A")
            .replace('/', "%2F");
        for form in [password.to_owned(), encoded] {
            assert!(!output.contains(&form), "a password in {what}'s output");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_round_trips_with_acl_users_and_a_wrong_password_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let keys = OperatorKeys::generate(dir.path(), &[("carol", "user")]);
    let redis = RedisServer::start_with_acl(documented_acl())
        .expect("redis-server starts with the documented ACL");

    let mut npu = npu_worker(&redis.url_as("autobot-npu", NPU_PASSWORD)).start();
    let mut api = backend(&redis.url_as("autobot-backend", BACKEND_PASSWORD), &keys).start();
    let answer = reqwest::Client::new()
        .post(api.url("/api/embeddings"))
        .header("authorization", keys.key("carol").bearer())
        .json(&json!({"texts": ["Which header carries the trace context?", "A passage."]}))
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    assert_eq!(
        status,
        200,
        "{body}\n{}\n{}\nredis log:\n{}",
        api.output(),
        npu.output(),
        std::fs::read_to_string(redis.dir().join("redis.log")).unwrap_or_default()
    );
    let vectors = body["embeddings"].as_array().expect("embeddings");
    assert_eq!(vectors.len(), 2, "{body}");
    assert_eq!(vectors[0].as_array().unwrap().len(), 384);
    // The worker's queue sampler ran with its user's rights too (a refused
    // command there only shows as Redis down in the metrics).
    let metrics = reqwest::get(npu.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let up = metrics
        .lines()
        .find(|l| l.starts_with("autobot_redis_up"))
        .unwrap_or_else(|| panic!("autobot_redis_up in:\n{metrics}"));
    assert!(up.ends_with(" 1"), "{up}");
    api.stop();
    npu.stop();
    assert_no_password(&api.output(), "the backend");
    assert_no_password(&npu.output(), "the npu-worker");

    // The user exists, the password is wrong: each stops at start.
    for (name, launch) in [
        (
            "autobot-backend",
            backend(&redis.url_as("autobot-backend", WRONG_PASSWORD), &keys),
        ),
        (
            "autobot-npu-worker",
            npu_worker(&redis.url_as("autobot-npu", WRONG_PASSWORD)),
        ),
    ] {
        let out = launch.run();
        let output = format!("{}{}", out.stdout, out.stderr);
        assert_eq!(out.code(), Some(2), "{name}: {output}");
        let redacted = format!(
            "AUTOBOT_REDIS_URL=\"redis://REDACTED:REDACTED@127.0.0.1:{}/0\" is not valid",
            redis.port()
        );
        assert!(
            out.stderr.contains(&redacted),
            "{name}: expected {redacted:?} in:\n{}",
            out.stderr
        );
        assert!(!output.contains("listening on"), "{name} did not start");
        assert_no_password(&output, name);
    }
}
