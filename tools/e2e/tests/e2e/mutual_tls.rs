//! Mutual TLS between the services, as deployed with certificates
//! (docs/security.md): every service serves TLS with a certificate of its
//! own from one CA, the backend calls its peers over https with its own;
//! the research and distribution traces are as whole as over plain HTTP
//! (the same checks), and an internal service refuses, at the TLS
//! handshake, a caller without a certificate or with one from another CA.

use autobot_e2e::system::{Options, System, error_chain};
use autobot_testkit::pki::{TestCa, TestIdentity, client_without_certificate};

use crate::distribution::distribution_is_one_whole_trace;
use crate::research::research_is_one_whole_trace;

fn with_mutual_tls() -> Options {
    Options {
        mutual_tls: true,
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn research_over_mutual_tls_is_one_whole_trace() {
    let system = System::start(with_mutual_tls()).await;
    for peer in [&system.ai_stack, &system.browser, &system.npu, &system.pki] {
        assert!(peer.url("").starts_with("https://"), "{}", peer.name());
    }
    research_is_one_whole_trace(&system).await;
}

/// Redis over TLS as the option docs/security.md describes (`rediss://`,
/// `tls-auth-clients yes`): the research request's embedding job crosses
/// Redis on its TLS port, the trace stays whole, and every connection of
/// the services to Redis is on that port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn research_over_mutual_tls_and_rediss_is_one_whole_trace() {
    let system = System::start(Options {
        redis_tls: true,
        ..with_mutual_tls()
    })
    .await;
    research_is_one_whole_trace(&system).await;
    let tls_port = system.redis.tls_port().unwrap();
    let plain_port = system.redis.port();
    // CLIENT LIST over the plain port: that command's own connection is the
    // only one there (laddr=127.0.0.1:<port>).
    let clients = system.redis.command("CLIENT LIST").unwrap();
    let services: Vec<&str> = clients
        .lines()
        .filter(|l| l.contains("laddr="))
        .filter(|l| !l.contains("cmd=client|list"))
        .collect();
    assert!(
        !services.is_empty(),
        "no service connected to Redis:\n{clients}"
    );
    for line in &services {
        assert!(
            line.contains(&format!("laddr=127.0.0.1:{tls_port} ")),
            "a connection not on the TLS port {tls_port} (plain {plain_port}): {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distribution_over_mutual_tls_is_one_whole_trace() {
    let system = System::start(with_mutual_tls()).await;
    distribution_is_one_whole_trace(&system).await;
}

/// `GET url` fails in the TLS handshake, with the server's `alert` (the
/// client's side of a TLS 1.3 handshake ends before the server has checked
/// its certificate, so the refusal arrives as an alert on the first read).
/// On a loaded machine the server's close can win the race with that read
/// (the client then sees "connection was not ready", no alert): such an
/// attempt proves nothing either way and is made again, up to five times;
/// any answer fails at once.
async fn assert_refused_in_the_handshake(
    client: &reqwest::Client,
    url: &str,
    alert: &str,
    what: &str,
) {
    let mut seen = Vec::new();
    for _ in 0..5 {
        match client.get(url).send().await {
            Ok(r) => panic!("{what}: {url} answered {}", r.status()),
            Err(e) => {
                let text = error_chain(&e);
                if text.contains(&format!("received fatal alert: {alert}")) {
                    return;
                }
                seen.push(text);
            }
        }
    }
    panic!("{what}: {url} failed, but never with the TLS alert {alert}: {seen:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_services_take_only_callers_with_a_certificate_of_the_ca() {
    let system = System::start(with_mutual_tls()).await;
    let pki = system.pki_files.as_ref().unwrap();
    let ca_file = pki.ca.ca_file();
    let no_certificate = client_without_certificate(&ca_file);
    // It trusts the services' CA, but its own certificate comes from another CA.
    let other = TestCa::new("intruder");
    let foreign = TestIdentity {
        ca: ca_file.clone(),
        ..other.issue("intruder", &["127.0.0.1"])
    }
    .client();

    for service in [&system.ai_stack, &system.browser, &system.npu, &system.pki] {
        let url = service.url("/health");
        let ok = system.http.get(&url).send().await.unwrap();
        assert_eq!(ok.status(), 200, "{url} with the CA's certificate");
        assert_refused_in_the_handshake(
            &no_certificate,
            &url,
            "CertificateRequired",
            &format!("{} without a certificate", service.name()),
        )
        .await;
        assert_refused_in_the_handshake(
            &foreign,
            &url,
            "UnknownCA",
            &format!("{} with another CA's certificate", service.name()),
        )
        .await;
    }

    // The backend's public API takes callers without a certificate (they
    // bring operator keys), and refuses one from another CA.
    let health = system.backend.url("/api/health");
    let ok = no_certificate.get(&health).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_refused_in_the_handshake(
        &foreign,
        &health,
        "UnknownCA",
        "the backend, another CA's certificate",
    )
    .await;
}
