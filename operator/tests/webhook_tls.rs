//! The placement webhook's real TLS server on a free port, serving the certificate files
//! cert-manager would mount: rewriting them with a certificate from another CA is presented from
//! the next handshake on, with no restart, and admissions go on being answered.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trimtab::controller::caches::Caches;
use trimtab::placement::certs::{self, ServingCert};
use trimtab::placement::{tls, webhook};

const RELOAD_DEADLINE: Duration = Duration::from_secs(20);

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> TempDir {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("trimtab-webhook-tls-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the temp dir");
    TempDir(dir)
}

/// Writes the files as the kubelet updates a Secret volume: each one whole, by rename.
fn write_cert_dir(dir: &Path, cert: &ServingCert) {
    for (name, text) in [("ca.crt", &cert.ca_pem), ("tls.key", &cert.key_pem), ("tls.crt", &cert.cert_pem)] {
        let staged = dir.join(format!(".{name}.new"));
        std::fs::write(&staged, text).expect("write a certificate file");
        std::fs::rename(&staged, dir.join(name)).expect("rename a certificate file");
    }
}

/// A TLS connection to the webhook that trusts only `ca_pem`, or the handshake's error.
async fn connect(port: u16, ca_pem: &str) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, std::io::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(ca.expect("a CA certificate")).expect("a usable CA");
    }
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    connector.connect(ServerName::try_from("localhost").expect("a name"), tcp).await
}

/// One AdmissionReview for a new pod that no policy places, POSTed over a connection trusting `ca_pem`.
async fn admit(port: u16, ca_pem: &str) -> Result<Value, std::io::Error> {
    let mut tls = connect(port, ca_pem).await?;
    let review = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "3f1d", "operation": "CREATE", "namespace": "shop", "userInfo": {},
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1"}}
        }
    })
    .to_string();
    let request = format!(
        "POST /mutate-pods HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{review}",
        review.len()
    );
    tls.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    // The server closes a `Connection: close` exchange; a TLS close without notify is fine here.
    let _ = tls.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "the webhook answered {head}");
    Ok(serde_json::from_str(body).unwrap_or_else(|e| panic!("a JSON review ({e}): {body}")))
}

#[tokio::test]
async fn a_rotated_certificate_is_presented_to_new_handshakes_and_admissions_go_on_without_a_restart() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = temp_dir();
    let now = jiff::Timestamp::now();
    let names = ["localhost".to_owned()];
    let (first, _) = certs::generate(&names, now).expect("the first certificate");
    // Another CA, and a certificate that expires two days later than the first.
    let (second, _) = certs::generate(&names, now + jiff::SignedDuration::from_hours(48)).expect("the second certificate");
    write_cert_dir(&dir.0, &first);

    let expiry = Gauge::default();
    let keys = tls::ServingKeys::new(&certs::from_dir(&dir.0).expect("the files"), expiry.clone()).expect("usable keys");
    let first_expiry = expiry.get();
    assert!(first_expiry > now.as_second(), "the expiry metric is set: {first_expiry}");
    let watcher = tls::watch_dir(dir.0.clone(), keys.clone(), Duration::from_millis(50));
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let telemetry = Arc::new(trimtab::controller::Telemetry::default());
    let state = Arc::new(webhook::WebhookState::new(Caches::empty(), telemetry.clone()));
    let server =
        webhook::serve(format!("127.0.0.1:{port}").parse().expect("an address"), keys.clone(), state).await.expect("serving");

    let review = admit(port, &first.ca_pem).await.expect("an admission over the first certificate");
    assert_eq!((review["response"]["uid"].clone(), review["response"]["allowed"].clone()), (json!("3f1d"), json!(true)));
    assert!(connect(port, &second.ca_pem).await.is_err(), "the second CA did not sign what is served yet");

    write_cert_dir(&dir.0, &second);
    let deadline = Instant::now() + RELOAD_DEADLINE;
    while connect(port, &second.ca_pem).await.is_err() {
        assert!(Instant::now() < deadline, "the rotated certificate was not presented within {RELOAD_DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await; // polling interval of the condition wait
    }
    assert!(connect(port, &first.ca_pem).await.is_err(), "new handshakes no longer present the first certificate");
    let review = admit(port, &second.ca_pem).await.expect("an admission over the rotated certificate");
    assert_eq!(review["response"]["allowed"], json!(true));
    assert_eq!(expiry.get() - first_expiry, 2 * 86_400, "the expiry metric follows the rotation");
    assert_eq!(keys.not_after(), expiry.get());

    // A half-written rotation (a new certificate beside the old key) is refused: the served one stays.
    let (third, _) = certs::generate(&names, now).expect("a third certificate");
    let half = ServingCert { cert_pem: third.cert_pem, ..second.clone() };
    assert!(keys.replace(&half).is_err(), "a certificate with another's key is not presented");
    assert!(admit(port, &second.ca_pem).await.is_ok(), "still serving the second certificate");
    // Three admissions, none placed (no policy places the pod): counted, with their latency.
    let scrape = telemetry.encode();
    assert!(scrape.contains("trimtab_webhook_admissions_total{outcome=\"admitted\"} 3"), "{scrape}");
    assert!(scrape.contains("trimtab_webhook_admission_duration_seconds_count 3"), "{scrape}");

    server.abort();
    watcher.abort();
}
