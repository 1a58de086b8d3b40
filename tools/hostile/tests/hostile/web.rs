//! What the web tests stand up around the services: a hostile web site on
//! 127.0.0.2 (the one address the browser is allowed to read) that serves
//! hostile pages and redirects anywhere, recording what it receives;
//! listeners planted where the browser must never connect; entries added
//! to /etc/hosts for the time of a test; the browser itself; and readings
//! of a process's CPU time.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autobot_testkit::process::{Launch, Process};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use futures::StreamExt as _;

/// Where the site listens: loopback, but not 127.0.0.1, so that allowing
/// it lets nothing else on the machine through.
pub const SITE_IP: &str = "127.0.0.2";

/// An OTLP endpoint nobody answers on: the services' spans go nowhere.
pub const NO_TRACES: &str = "http://127.0.0.1:9";

/// One request the site received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Clone, Default)]
struct SiteState {
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Redirect targets, by index (`/r/{index}`): no URL encoding needed.
    redirects: Arc<Mutex<Vec<String>>>,
}

/// The hostile site.
pub struct Site {
    pub addr: SocketAddr,
    state: SiteState,
}

/// The pages, generated on request.
pub mod pages {
    /// 5 MiB of `a. a. …` in one paragraph: one sentence every 3 bytes.
    pub fn dots() -> String {
        format!("<html><body><p>{}</p>", "a. ".repeat(5 * 1024 * 1024 / 3))
    }

    /// 500 000 nested `<div>`, then 600 000 `</p>`.
    pub fn nest() -> String {
        format!("{}{}", "<div>".repeat(500_000), "</p>".repeat(600_000))
    }

    /// One tag with 700 000 attributes, each of another name (the
    /// tokenizer compares each with all before it).
    pub fn attributes() -> String {
        let mut page = String::from("<html><body><p");
        for i in 0..700_000 {
            page.push_str(&format!(" a{i}"));
        }
        page.push_str(">x</p>");
        page
    }

    /// Bytes of the page `/big` sends.
    pub const BIG_BYTES: usize = 50 * 1024 * 1024;
}

impl Site {
    pub async fn start() -> Site {
        let state = SiteState::default();
        let record = {
            let seen = state.seen.clone();
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(Seen {
                        path: req.uri().path().to_owned(),
                        headers: req.headers().clone(),
                    });
                    next.run(req).await
                }
            }
        };
        let router = Router::new()
            .route("/ok", get(|| async { html(OK_PAGE.to_owned()) }))
            .route("/r/{index}", get(redirect))
            .route("/dots", get(|| async { html(pages::dots()) }))
            .route("/nest", get(|| async { html(pages::nest()) }))
            .route("/attributes", get(|| async { html(pages::attributes()) }))
            .route("/big", get(big))
            .layer(axum::middleware::from_fn(record))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind((SITE_IP, 0))
            .await
            .expect("a listener on 127.0.0.2 (Linux routes all of 127.0.0.0/8 to loopback)");
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Site { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A URL of this site that redirects to `target`.
    pub fn redirect_to(&self, target: &str) -> String {
        let mut redirects = self.state.redirects.lock().unwrap();
        redirects.push(target.to_owned());
        self.url(&format!("/r/{}", redirects.len() - 1))
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

const OK_PAGE: &str =
    "<html><head><title>Fine</title></head><body><p>An ordinary page.</p></body></html>";

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn redirect(State(state): State<SiteState>, Path(index): Path<usize>) -> Response {
    match state.redirects.lock().unwrap().get(index) {
        Some(target) => Redirect::temporary(target).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// 50 MiB of ordinary paragraphs, generated as they are sent.
async fn big() -> Response {
    const PARAGRAPH: &str = "<p>The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.</p>\n";
    let chunk = bytes::Bytes::from(PARAGRAPH.repeat(64 * 1024 / PARAGRAPH.len()));
    let chunks = pages::BIG_BYTES / chunk.len();
    let stream =
        futures::stream::iter(0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
    (
        [(header::CONTENT_TYPE, "text/html")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// A listener where the browser must never connect: on every address of
/// the machine at one port (`[::]`, which takes IPv4 too), counting the
/// connections it accepts.
pub struct Planted {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Planted {
    pub async fn start() -> Planted {
        let listener = match tokio::net::TcpListener::bind("[::]:0").await {
            Ok(listener) => listener,
            Err(_) => tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap(),
        };
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Planted { port, accepted }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Lines added to /etc/hosts for the time of a test (the browser resolves
/// names with the system resolver, which reads it on every lookup), taken
/// out again when dropped. The suite runs as root (the SSH tests need it too).
pub struct HostsEntries {
    marker: String,
}

const HOSTS: &str = "/etc/hosts";

impl HostsEntries {
    pub fn add(entries: &[(&str, &str)]) -> HostsEntries {
        let marker = format!("# autobot-hostile {}", std::process::id());
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(HOSTS)
            .expect("/etc/hosts is writable (the hostile suite runs as root)");
        let mut lines = String::new();
        for (name, address) in entries {
            lines.push_str(&format!("{address} {name} {marker}\n"));
        }
        file.write_all(lines.as_bytes()).unwrap();
        HostsEntries { marker }
    }
}

impl Drop for HostsEntries {
    fn drop(&mut self) {
        // In place, not renamed over: /etc/hosts may be a mount point.
        if let Ok(text) = std::fs::read_to_string(HOSTS) {
            let kept: String = text
                .lines()
                .filter(|l| !l.ends_with(&self.marker))
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = std::fs::write(HOSTS, kept);
        }
    }
}

/// The browser, allowed to read the site's address and nothing else
/// beyond the public internet; `env` on top.
pub fn start_browser(env: &[(&str, &str)]) -> Process {
    Launch::workspace_bin("autobot-browser")
        .env("AUTOBOT_JAEGER_ENDPOINT", NO_TRACES)
        .env("AUTOBOT_BROWSER_ALLOW", SITE_IP)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .start()
}

/// A client whose every request is bounded: a hang fails the test instead of blocking it.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A client whose connections come from `source` (a loopback address:
/// Linux routes all of 127.0.0.0/8 to the local host).
pub fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// CPU time the process has used so far (user + system), in clock ticks
/// (`/proc/PID/stat` fields 14 and 15).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name may hold spaces: the fields that follow come after its ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    // Field 14 of the whole line is the 12th after the name (state is the 3rd).
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
pub fn ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}
