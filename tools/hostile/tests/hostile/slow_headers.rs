//! Slowloris against every service: 200 connections each sending its
//! request head one header line at a time, held open. A normal request
//! still answers while they hang on, and the service closes every one of
//! them at its header-read timeout (AUTOBOT_HEADER_READ_TIMEOUT_MS).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use autobot_testkit::process::{Launch, Process};
use autobot_testkit::redis::RedisServer;
use autobot_testkit::sshd::KeyFiles;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SLOW_CONNECTIONS: usize = 200;
/// The header-read timeout the services get here (default 10 s: shorter
/// keeps the test short, and still longer than the normal request needs).
const HEADER_TIMEOUT: Duration = Duration::from_secs(4);
/// How long a normal request may take while the slow ones hang on: ample on
/// a loaded machine, far below the header-read timeout they would need.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

/// What the slow connections saw.
struct Slowloris {
    connected: Arc<AtomicUsize>,
    /// Connections the server closed, and when (since the attack began).
    closed: Arc<std::sync::Mutex<Vec<Duration>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Opens the connections; each sends `GET path`, its Host line, then one
/// more header line every 300 ms, never the blank line that ends the head.
async fn slowloris(addr: SocketAddr, path: &str) -> Slowloris {
    let connected = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..SLOW_CONNECTIONS {
        let connected = connected.clone();
        let closed = closed.clone();
        let head = format!("GET {path} HTTP/1.1\r\nHost: x\r\n");
        tasks.push(tokio::spawn(async move {
            let Ok(mut stream) = TcpStream::connect(addr).await else {
                return;
            };
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            connected.fetch_add(1, Ordering::Relaxed);
            let mut buf = [0u8; 512];
            let mut line = 0u64;
            loop {
                tokio::select! {
                    // The server's only way out: closing (or answering) the connection.
                    _ = stream.read(&mut buf) => break,
                    () = tokio::time::sleep(Duration::from_millis(300)) => {
                        line += 1;
                        let header = format!("X-Slow-{i}-{line}: a\r\n");
                        if stream.write_all(header.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                }
                if started.elapsed() > Duration::from_secs(60) {
                    return;
                }
            }
            closed.lock().unwrap().push(started.elapsed());
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while connected.load(Ordering::Relaxed) < SLOW_CONNECTIONS {
        assert!(
            Instant::now() < deadline,
            "only {} of {SLOW_CONNECTIONS} slow connections got in",
            connected.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Slowloris {
        connected,
        closed,
        tasks,
    }
}

/// Attacks `service` and checks it still answers `path` with `status`,
/// then that it closes every slow connection at its header-read timeout.
async fn still_answers(service: &mut Process, path: &str, status: u16) {
    let name = service.name().to_owned();
    let attack = slowloris(service.addr(), path).await;
    // Hang on a while: well into the attack, before the timeout closes them.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        attack.closed.lock().unwrap().len(),
        0,
        "{name}: slow connections closed before the header-read timeout"
    );
    let asked = Instant::now();
    let answer = reqwest::Client::new()
        .get(service.url(path))
        .timeout(ANSWER_WITHIN)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{name}: no answer to GET {path} within {ANSWER_WITHIN:?} under {SLOW_CONNECTIONS} slow connections: {e}\n{}",
                service.output()
            )
        });
    assert_eq!(answer.status(), status, "{name}: GET {path}");
    let took = asked.elapsed();
    assert!(
        attack.connected.load(Ordering::Relaxed) == SLOW_CONNECTIONS
            && attack.closed.lock().unwrap().len() < SLOW_CONNECTIONS,
        "{name}: the slow connections were still open while it answered"
    );
    for task in attack.tasks {
        tokio::time::timeout(HEADER_TIMEOUT + Duration::from_secs(20), task)
            .await
            .unwrap_or_else(|_| panic!("{name}: a slow connection was never closed"))
            .unwrap();
    }
    let closed = attack.closed.lock().unwrap().clone();
    assert_eq!(
        closed.len(),
        SLOW_CONNECTIONS,
        "{name}: every slow connection is closed by the server"
    );
    let last = closed.iter().max().unwrap();
    assert!(
        *last >= HEADER_TIMEOUT - Duration::from_millis(500),
        "{name}: closed after {last:?}, before the header-read timeout"
    );
    eprintln!(
        "{name}: answered GET {path} in {took:?} under {SLOW_CONNECTIONS} slow connections; all closed by {last:?}"
    );
}

fn service(name: &str) -> Launch {
    Launch::workspace_bin(name)
        .env(
            "AUTOBOT_HEADER_READ_TIMEOUT_MS",
            HEADER_TIMEOUT.as_millis().to_string(),
        )
        .env("OTEL_SDK_DISABLED", "true")
}

/// Polls `path` until it answers `status` (the npu-worker loads its model first).
async fn wait_for(service: &mut Process, path: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = reqwest::get(service.url(path)).await
            && r.status() == status
        {
            return;
        }
        assert!(
            Instant::now() < deadline && service.is_running(),
            "{} never answered {status} on {path}:\n{}",
            service.name(),
            service.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_starve_no_service() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start().expect("redis-server starts (scripts/setup.sh)");

    // Only /api/health is asked, which needs no operator key.
    let mut backend = service("autobot-backend")
        .env("AUTOBOT_REDIS_URL", redis.url())
        .env("AUTOBOT_AUTH", "off")
        .start();
    still_answers(&mut backend, "/api/health", 200).await;
    drop(backend);

    let mut ai_stack = service("autobot-ai-stack").start();
    still_answers(&mut ai_stack, "/health", 200).await;
    drop(ai_stack);

    let mut browser = service("autobot-browser").start();
    still_answers(&mut browser, "/health", 200).await;
    drop(browser);

    let key = KeyFiles::generate(dir.path(), "key").unwrap();
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, "").unwrap();
    let targets = dir.path().join("targets.toml");
    std::fs::write(&targets, "").unwrap();
    let mut pki = service("autobot-pki-distributor")
        .env("AUTOBOT_PKI_DIR", dir.path().join("pki"))
        .env("AUTOBOT_PKI_TARGETS", &targets)
        .env("AUTOBOT_SSH_KEY", &key.private)
        .env("AUTOBOT_SSH_KNOWN_HOSTS", &known_hosts)
        .start();
    still_answers(&mut pki, "/health", 200).await;
    drop(pki);

    let model_dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.run/models/all-MiniLM-L6-v2");
    assert!(
        model_dir.join("model.safetensors").is_file(),
        "no model at {}: run scripts/setup.sh",
        model_dir.display()
    );
    let mut npu = service("autobot-npu-worker")
        .env("AUTOBOT_REDIS_URL", redis.url())
        .env("AUTOBOT_NPU_MODEL_DIR", &model_dir)
        .start();
    wait_for(&mut npu, "/health", 200).await;
    still_answers(&mut npu, "/health", 200).await;
}
