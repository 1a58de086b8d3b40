//! Real TLS handshakes against `TlsListener` and through `client_config`,
//! with certificates from test CAs (autobot-testkit's pki).

use std::sync::Arc;
use std::time::Duration;

use autobot_testkit::pki::{TestCa, TestIdentity, client_without_certificate};
use autobot_tls::server::{ClientCertificates, ServerTls, TlsListener};
use autobot_tls::{PemFile, TlsFiles, TlsSource};
use axum::Router;
use axum::routing::get;

const QUICK: Duration = Duration::from_millis(50);

fn files(identity: &TestIdentity) -> TlsFiles {
    TlsFiles {
        ca: Some(PemFile::new("AUTOBOT_TLS_CA", &identity.ca)),
        identity: Some((
            PemFile::new("AUTOBOT_TLS_CERT", &identity.cert),
            PemFile::new("AUTOBOT_TLS_KEY", &identity.key),
        )),
        check_every: QUICK,
    }
}

/// An HTTPS server answering `ok` on `/`, stopped when the task is dropped.
async fn serve(identity: &TestIdentity, clients: ClientCertificates) -> String {
    let source = TlsSource::load(files(identity), true).expect("the server's files load");
    let tls = Arc::new(ServerTls::new(source, clients).expect("a server configuration"));
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listener = TlsListener::new(tcp, tls).unwrap();
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    let app = Router::new().route("/", get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("https://127.0.0.1:{}/", addr.port())
}

async fn get_text(client: &reqwest::Client, url: &str) -> Result<String, String> {
    match client.get(url).send().await {
        Ok(r) => Ok(r.text().await.map_err(|e| format!("{e:?}"))?),
        Err(e) => Err(format!("{e:?}")),
    }
}

#[tokio::test]
async fn a_required_client_certificate_must_chain_to_the_ca() {
    let ca = TestCa::new("project");
    let other = TestCa::new("other");
    let url = serve(&ca.issue_local("server"), ClientCertificates::Required).await;

    assert_eq!(
        get_text(&ca.issue_local("client").client(), &url).await,
        Ok("ok".into())
    );

    let none = get_text(&client_without_certificate(&ca.ca_file()), &url).await;
    assert!(none.is_err(), "no client certificate: {none:?}");

    // Trusts the server's CA, but its own certificate comes from another CA.
    let foreign = other.issue_local("intruder");
    let foreign = TestIdentity {
        ca: ca.ca_file(),
        ..foreign
    };
    let refused = get_text(&foreign.client(), &url).await;
    assert!(
        refused.is_err(),
        "a certificate from another CA: {refused:?}"
    );
}

#[tokio::test]
async fn an_optional_client_certificate_is_still_checked_when_sent() {
    let ca = TestCa::new("project");
    let other = TestCa::new("other");
    let url = serve(&ca.issue_local("backend"), ClientCertificates::Optional).await;

    let none = get_text(&client_without_certificate(&ca.ca_file()), &url).await;
    assert_eq!(
        none,
        Ok("ok".into()),
        "the public API takes callers without a certificate"
    );
    let foreign = TestIdentity {
        ca: ca.ca_file(),
        ..other.issue_local("intruder")
    };
    assert!(get_text(&foreign.client(), &url).await.is_err());
}

#[tokio::test]
async fn a_renewed_server_certificate_is_served_without_a_restart() {
    let ca = TestCa::new("project");
    let server = ca.issue_local("server");
    let url = serve(&server, ClientCertificates::Required).await;
    let client = ca.issue_local("client");
    let peer_certificate = || async {
        // A new connection each time: the pool would reuse the old handshake.
        let mut pem = std::fs::read(&client.cert).unwrap();
        pem.extend(std::fs::read(&client.key).unwrap());
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap()])
            .identity(reqwest::Identity::from_pem(&pem).unwrap())
            .tls_info(true)
            .build()
            .unwrap();
        let response = http.get(&url).send().await.expect("a handshake");
        let info = response
            .extensions()
            .get::<reqwest::tls::TlsInfo>()
            .expect("TLS info");
        info.peer_certificate().unwrap().to_vec()
    };
    let first = peer_certificate().await;
    // The agent installs a new certificate and key over the old ones.
    let renewed = ca.issue_local("server");
    assert_eq!(renewed.cert, server.cert);
    tokio::time::sleep(QUICK * 3).await;
    let second = peer_certificate().await;
    assert_ne!(first, second, "the renewed certificate is served");
}

#[tokio::test]
async fn a_client_follows_its_renewed_certificate_and_keeps_the_last_good_one() {
    let ca = TestCa::new("project");
    let other = TestCa::new("other");
    let url = serve(&ca.issue_local("server"), ClientCertificates::Required).await;
    let mine = ca.issue_local("client");
    // Without the chain check (as OTLP's files are read), so that a set
    // from another CA loads and the server's refusal shows it is in use.
    let source = TlsSource::load(files(&mine), false).unwrap();
    let mut config = autobot_tls::client::client_config(source, &[b"http/1.1"]);
    // A resumed session keeps the identity of its first handshake: none here.
    config.resumption = rustls::client::Resumption::disabled();
    // No pooling: every request makes a handshake with the files' current version.
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    assert_eq!(get_text(&http, &url).await, Ok("ok".into()));

    // Half an install: another certificate with the old key is refused as a
    // set; the previous certificate stays in use.
    let foreign = other.issue("client-foreign", &["127.0.0.1"]);
    std::fs::copy(&foreign.cert, &mine.cert).unwrap();
    tokio::time::sleep(QUICK * 3).await;
    assert_eq!(get_text(&http, &url).await, Ok("ok".into()));

    // The whole set from another CA loads, and the server refuses it.
    std::fs::copy(&foreign.key, &mine.key).unwrap();
    tokio::time::sleep(QUICK * 3).await;
    let refused = get_text(&http, &url).await;
    assert!(refused.is_err(), "the new files are presented: {refused:?}");

    // A renewal from the project's CA is taken at the next handshake.
    let renewed = ca.issue_local("client");
    assert_eq!(renewed.cert, mine.cert);
    tokio::time::sleep(QUICK * 3).await;
    assert_eq!(get_text(&http, &url).await, Ok("ok".into()));
}

#[test]
fn file_errors_name_the_variable_and_the_file() {
    let ca = TestCa::new("project");
    let other = TestCa::new("other");
    let a = ca.issue_local("a");
    let b = ca.issue_local("b");

    let mismatched = TlsFiles {
        identity: Some((
            PemFile::new("AUTOBOT_TLS_CERT", &a.cert),
            PemFile::new("AUTOBOT_TLS_KEY", &b.key),
        )),
        ..files(&a)
    };
    let e = TlsSource::load(mismatched, true).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "AUTOBOT_TLS_KEY={:?} is not valid: the key does not belong to the certificate in AUTOBOT_TLS_CERT",
            b.key.display().to_string()
        )
    );

    let missing = TlsFiles {
        ca: Some(PemFile::new("AUTOBOT_TLS_CA", "/nonexistent/ca.pem")),
        ..files(&a)
    };
    let e = TlsSource::load(missing, true).unwrap_err().to_string();
    assert!(
        e.starts_with("AUTOBOT_TLS_CA=\"/nonexistent/ca.pem\" is not valid: cannot read the file"),
        "{e}"
    );

    let foreign = TlsFiles {
        ca: Some(PemFile::new("AUTOBOT_TLS_CA", other.ca_file())),
        ..files(&a)
    };
    let e = TlsSource::load(foreign, true).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "AUTOBOT_TLS_CERT={:?} is not valid: not accepted by AUTOBOT_TLS_CA",
            a.cert.display().to_string()
        )),
        "{e}"
    );

    // A key file with garbage: the error never quotes it.
    std::fs::write(
        &b.key,
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let garbled = TlsFiles {
        identity: Some((
            PemFile::new("AUTOBOT_TLS_CERT", &b.cert),
            PemFile::new("AUTOBOT_TLS_KEY", &b.key),
        )),
        ..files(&b)
    };
    let e = TlsSource::load(garbled, true).unwrap_err().to_string();
    assert!(!e.contains("c2VjcmV0"), "{e}");
    assert!(e.starts_with("AUTOBOT_TLS_KEY="), "{e}");
}
