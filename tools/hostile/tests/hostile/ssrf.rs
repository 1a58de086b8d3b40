//! SSRF: the browser refuses (403) every address that is not the public
//! internet, in every spelling, given literally, through a DNS name
//! (entries this test adds to /etc/hosts) and through a redirect from an
//! allowed site; and a listener planted on every address of this machine
//! sees no connection. `/navigate` and the backend's `/api/browse` take
//! only JSON bodies.

use std::time::{Duration, Instant};

use autobot_testkit::process::Launch;
use serde_json::{Value, json};

use crate::web::{HostsEntries, NO_TRACES, Planted, Site, client, start_browser};

/// The machine's own addresses (`hostname -I`): a planted listener on
/// `[::]` answers on each of them.
fn own_addresses() -> Vec<String> {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .expect("hostname -I");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|a| {
            if a.contains(':') {
                format!("[{a}]")
            } else {
                a.to_owned()
            }
        })
        .collect()
}

/// Hosts (as they go in a URL) that must all be refused, with what they are.
fn denied_hosts() -> Vec<(String, &'static str)> {
    let mut hosts: Vec<(String, &'static str)> = [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback, the far end"),
        ("0.0.0.0", "this network (reaches the local host)"),
        ("[::]", "unspecified IPv6 (reaches the local host)"),
        ("[::1]", "IPv6 loopback"),
        ("10.0.0.1", "RFC 1918"),
        ("172.16.168.20", "RFC 1918, the deployment's subnet"),
        ("192.168.1.1", "RFC 1918"),
        ("100.64.0.1", "shared address space"),
        ("100.100.100.200", "Alibaba Cloud metadata"),
        ("169.254.169.254", "cloud metadata (link-local)"),
        ("169.254.170.2", "ECS task metadata"),
        ("168.63.129.16", "Azure WireServer"),
        ("192.0.0.192", "Oracle Cloud metadata"),
        ("[fd00:ec2::254]", "AWS metadata over IPv6"),
        ("[fc00::1]", "unique local"),
        ("[fe80::1]", "IPv6 link-local"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("192.0.2.10", "documentation"),
        // Other spellings of 127.0.0.1, which the URL parser reads as IPv4.
        ("2130706433", "decimal"),
        ("017700000001", "octal, one number"),
        ("0177.0.0.1", "octal"),
        ("0x7f000001", "hexadecimal"),
        ("0x7f.0.0.1", "hexadecimal, dotted"),
        ("127.1", "short form"),
        ("0", "0.0.0.0 as one number"),
        ("127.0.0.1.", "with the final dot"),
        ("[::ffff:127.0.0.1]", "IPv4-mapped IPv6"),
        ("[::ffff:7f00:1]", "IPv4-mapped IPv6, hexadecimal"),
        ("[::127.0.0.1]", "IPv4-compatible IPv6"),
        ("[64:ff9b::7f00:1]", "NAT64"),
        ("[64:ff9b::a9fe:a9fe]", "NAT64 of the metadata address"),
        ("[2002:7f00:1::]", "6to4"),
        // Names, resolved through /etc/hosts.
        ("localhost", "a name for loopback"),
        ("loopback.hostile.test", "a name for 127.0.0.1"),
        ("metadata.hostile.test", "a name for the metadata address"),
        ("private.hostile.test", "a name for an RFC 1918 address"),
        ("v6.hostile.test", "a name for ::1"),
        (
            "mixed.hostile.test",
            "a name with one public and one loopback address",
        ),
        ("LoopBack.Hostile.Test", "the same name in capitals"),
    ]
    .into_iter()
    .map(|(h, what)| (h.to_owned(), what))
    .collect();
    for own in own_addresses() {
        hosts.push((own, "this machine's own address"));
    }
    hosts
}

async fn navigate(browser: &autobot_testkit::process::Process, url: &str) -> (u16, Value) {
    let r = client()
        .post(browser.url("/navigate"))
        .json(&json!({ "url": url, "timeout_ms": 5000 }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_address_that_is_not_the_public_internet_is_a_403_and_no_connection() {
    let _hosts = HostsEntries::add(&[
        ("loopback.hostile.test", "127.0.0.1"),
        ("metadata.hostile.test", "169.254.169.254"),
        ("private.hostile.test", "10.1.2.3"),
        ("v6.hostile.test", "::1"),
        ("mixed.hostile.test", "93.184.215.14"),
        ("mixed.hostile.test", "127.0.0.1"),
    ]);
    let site = Site::start().await;
    let planted = Planted::start().await;
    let port = planted.port;
    // The planted listener does answer on loopback: a connection counts.
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the planted listener takes connections on 127.0.0.1");
    let deadline = Instant::now() + Duration::from_secs(5);
    while planted.accepted() == 0 {
        assert!(
            Instant::now() < deadline,
            "the planted listener saw nothing"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = planted.accepted();

    let browser = start_browser(&[]);
    // The allowed site is read: the browser refuses what it must, not all.
    let (status, page) = navigate(&browser, &site.url("/ok")).await;
    assert_eq!(status, 200, "{page}");

    let mut refused = 0;
    for (host, what) in denied_hosts() {
        let url = format!("http://{host}:{port}/latest/meta-data/");
        for (how, asked) in [
            ("literal", url.clone()),
            ("redirect", site.redirect_to(&url)),
        ] {
            let started = Instant::now();
            let (status, answer) = navigate(&browser, &asked).await;
            let error = answer["error"].as_str().unwrap_or_default();
            assert_eq!(
                status, 403,
                "{host} ({what}, {how}) must be refused: {answer}"
            );
            assert!(
                error.contains("refused before connecting")
                    && error.contains("AUTOBOT_BROWSER_ALLOW lifts it"),
                "{host} ({what}, {how}): {error}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{host} ({what}, {how}) was refused only after {:?}",
                started.elapsed()
            );
            refused += 1;
        }
    }
    // A name that resolves to a denied address says so.
    let (_, answer) = navigate(&browser, &format!("http://metadata.hostile.test:{port}/")).await;
    let error = answer["error"].as_str().unwrap();
    assert!(
        error.contains("metadata.hostile.test resolves to 169.254.169.254"),
        "{error}"
    );

    assert_eq!(
        planted.accepted(),
        before,
        "the browser connected to a planted listener"
    );
    let status: Value = client()
        .get(browser.url("/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["errors"]["denied_address"], refused + 1, "{status}");
    println!(
        "ssrf: {refused} navigations refused (403), {} hosts literally and through a redirect; \
         the planted listener on port {port} saw no connection",
        refused / 2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn navigate_and_api_browse_take_json_only() {
    let site = Site::start().await;
    let browser = start_browser(&[]);
    let backend = Launch::workspace_bin("autobot-backend")
        .env("AUTOBOT_JAEGER_ENDPOINT", NO_TRACES)
        .env("AUTOBOT_BROWSER_URL", browser.url(""))
        .env("AUTOBOT_AUTH", "off")
        .start();
    let body = json!({ "url": site.url("/ok") }).to_string();
    for (url, what) in [
        (browser.url("/navigate"), "the browser"),
        (backend.url("/api/browse"), "the backend"),
    ] {
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let mut request = client().post(&url).body(body.clone());
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), 415, "{what}, {content_type:?}");
        }
    }
    assert!(
        site.seen().is_empty(),
        "nothing was fetched: {:?}",
        site.seen()
    );

    // Through the backend, the browser's refusal is the caller's answer.
    let r = client()
        .post(backend.url("/api/browse"))
        .json(&json!({ "url": "http://169.254.169.254/latest/meta-data/" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client()
        .post(backend.url("/api/browse"))
        .json(&json!({ "url": site.url("/ok") }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
