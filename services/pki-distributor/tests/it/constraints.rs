//! The CA's name constraints, checked the way peers check them: by a real
//! TLS handshake (rustls-webpki on both sides, as the services use it).

use std::path::Path;
use std::sync::Arc;

use autobot_pki_distributor::ca::{CA_CERT_FILE, CA_KEY_FILE, CertificateAuthority};
use autobot_pki_distributor::constraints::Permitted;
use autobot_tls::server::{ClientCertificates, ServerTls, TlsListener};
use autobot_tls::{PemFile, TlsFiles, TlsSource};
use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, Issuer, KeyPair, SanType};

use crate::support::target;

/// Writes the CA, a certificate and a key as the agent installs them.
fn install(dir: &Path, ca_pem: &str, cert_pem: &str, key_pem: &str) -> TlsFiles {
    std::fs::create_dir_all(dir).unwrap();
    for (name, text) in [
        ("ca.pem", ca_pem),
        ("cert.pem", cert_pem),
        ("key.pem", key_pem),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    TlsFiles {
        ca: Some(PemFile::new("AUTOBOT_TLS_CA", dir.join("ca.pem"))),
        identity: Some((
            PemFile::new("AUTOBOT_TLS_CERT", dir.join("cert.pem")),
            PemFile::new("AUTOBOT_TLS_KEY", dir.join("key.pem")),
        )),
        check_every: std::time::Duration::from_secs(60),
    }
}

/// Serves `files` over TLS on 127.0.0.1 and makes one request presenting
/// `client`, trusting only the CA: Ok when both handshakes pass.
async fn handshake(server: TlsFiles, client: TlsFiles) -> Result<(), String> {
    // The server's own certificate is not checked against the CA here: the
    // point is what the client does with it.
    let source = TlsSource::load(server, false).map_err(|e| e.to_string())?;
    let tls = Arc::new(ServerTls::new(source, ClientCertificates::Required)?);
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let server = tokio::spawn(axum::serve(TlsListener::new(tcp, tls).unwrap(), app).into_future());
    let config = autobot_tls::client::client_config(
        TlsSource::load(client, true).map_err(|e| e.to_string())?,
        &[b"http/1.1"],
    );
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap();
    let outcome = http
        .get(format!("https://127.0.0.1:{port}/"))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:?}"));
    server.abort();
    outcome
}

#[tokio::test]
async fn peers_refuse_a_certificate_for_a_name_outside_the_cas_constraints() {
    let root = tempfile::tempdir().unwrap();
    let pki = root.path().join("pki");
    let permitted = Permitted::parse("127.0.0.1/32,vm2").unwrap();
    let ca = CertificateAuthority::load_or_create(&pki, &permitted).unwrap();
    assert_eq!(
        ca.permitted(),
        Some(&permitted),
        "read back from the CA certificate"
    );
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(pki.join("ca").join(CA_CERT_FILE))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("X509v3 Name Constraints: critical"), "{text}");

    // What the CA issues for a target inside the constraints passes a real handshake.
    let client = ca.issue(&target("vm2", "127.0.0.1"), 1).unwrap();
    let client = install(
        &root.path().join("client"),
        ca.cert_pem(),
        &client.cert_pem,
        client.key_pem.expose(),
    );
    let server = ca.issue(&target("vm2", "127.0.0.1"), 1).unwrap();
    let good = install(
        &root.path().join("good"),
        ca.cert_pem(),
        &server.cert_pem,
        server.key_pem.expose(),
    );
    assert_eq!(handshake(good, client.clone()).await, Ok(()));

    // The CA refuses to issue for a target outside them.
    let e = ca
        .issue(&target("intruder", "10.9.9.9"), 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("10.9.9.9 is outside the CA's name constraints (127.0.0.1/32,vm2)"),
        "{e}"
    );

    // A certificate signed with the CA key anyway, as a thief of the key
    // would (IP 127.0.0.1 is permitted, the extra name is not): refused.
    let key_pem = std::fs::read_to_string(pki.join("ca").join(CA_KEY_FILE)).unwrap();
    let issuer =
        Issuer::from_ca_cert_pem(ca.cert_pem(), KeyPair::from_pem(&key_pem).unwrap()).unwrap();
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![
        SanType::IpAddress("127.0.0.1".parse().unwrap()),
        SanType::DnsName("www.example.com".try_into().unwrap()),
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let forged = params.signed_by(&key, &issuer).unwrap();
    let forged = install(
        &root.path().join("forged"),
        ca.cert_pem(),
        &forged.pem(),
        &key.serialize_pem(),
    );
    let refused = handshake(forged, client).await.unwrap_err();
    assert!(refused.contains("NameConstraintViolation"), "{refused}");
}
