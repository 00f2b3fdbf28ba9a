//! The webhook's serving certificate, swapped under a running TLS server: each handshake asks
//! [`ServingKeys`] for the current certificate, so a rotated one is presented from the next
//! handshake on, with no restart. Two sources rotate it: files cert-manager rewrites (polled: they
//! are a mounted Secret, not the API server), and the self-managed Secret renewed before expiry.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::{self, ServingCert};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("the webhook certificate is not PEM: {0}")]
    Pem(String),
    #[error("the webhook certificate file holds no certificate")]
    NoCertificate,
    #[error("the webhook certificate cannot be parsed: {0}")]
    X509(String),
    #[error("the webhook key is not usable with its certificate: {0}")]
    Key(#[from] rustls::Error),
}

/// The certificate every new handshake presents, and the time it expires.
#[derive(Debug)]
pub struct ServingKeys {
    current: RwLock<Loaded>,
    /// `trimtab_webhook_certificate_expiry_timestamp_seconds`.
    expiry: Gauge,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    /// The PEM it was loaded from: a reload of the same files changes nothing.
    cert_pem: String,
    key_pem: String,
}

impl ServingKeys {
    /// Keys serving `cert`; `expiry` is set to its expiry now and at every rotation.
    pub fn new(cert: &ServingCert, expiry: Gauge) -> Result<Arc<Self>, TlsError> {
        let (key, not_after) = certified_key(cert)?;
        expiry.set(not_after);
        let loaded = Loaded { key, cert_pem: cert.cert_pem.clone(), key_pem: cert.key_pem.clone() };
        Ok(Arc::new(ServingKeys { current: RwLock::new(loaded), expiry }))
    }

    /// Presents `cert` from the next handshake on. Unchanged material is a no-op (false); material
    /// that does not parse, or whose key is not the certificate's (files caught mid-rotation), is
    /// an error and the current certificate stays.
    pub fn replace(&self, cert: &ServingCert) -> Result<bool, TlsError> {
        {
            let current = self.current.read().unwrap_or_else(|e| e.into_inner());
            if current.cert_pem == cert.cert_pem && current.key_pem == cert.key_pem {
                return Ok(false);
            }
        }
        let (key, not_after) = certified_key(cert)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) =
            Loaded { key, cert_pem: cert.cert_pem.clone(), key_pem: cert.key_pem.clone() };
        self.expiry.set(not_after);
        tracing::info!(not_after, "webhook serving certificate rotated");
        Ok(true)
    }

    /// Unix seconds at which the presented certificate expires.
    pub fn not_after(&self) -> i64 {
        self.expiry.get()
    }
}

impl ResolvesServerCert for ServingKeys {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).key.clone())
    }
}

/// The rustls key for `cert` (checked to match), and the leaf's expiry in Unix seconds.
fn certified_key(cert: &ServingCert) -> Result<(Arc<CertifiedKey>, i64), TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem(e.to_string()))?;
    let leaf = chain.first().ok_or(TlsError::NoCertificate)?;
    let not_after =
        x509_parser::parse_x509_certificate(leaf).map_err(|e| TlsError::X509(e.to_string()))?.1.validity().not_after.timestamp();
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).map_err(|e| TlsError::Pem(e.to_string()))?;
    let provider = rustls::crypto::ring::default_provider();
    Ok((Arc::new(CertifiedKey::from_der(chain, key, &provider)?), not_after))
}

/// How often the mounted certificate files are read for a change. cert-manager renews well ahead
/// of expiry and the kubelet takes up to a minute to update the mount, so seconds do not matter.
pub const FILE_POLL: Duration = Duration::from_secs(10);

/// Reads `tls.crt` and `tls.key` in `dir` every `period` and presents them once they change. The
/// kubelet swaps a Secret mount atomically, but a half-rotated pair (a new certificate, the old
/// key) is refused and read again next time.
pub fn watch_dir(dir: PathBuf, keys: Arc<ServingKeys>, period: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_error = None;
        loop {
            ticks.tick().await;
            let outcome =
                certs::from_dir(&dir).map_err(|e| e.to_string()).and_then(|cert| keys.replace(&cert).map_err(|e| e.to_string()));
            match outcome {
                Ok(_) => last_error = None,
                // Once per distinct error, not every period.
                Err(error) if last_error.as_ref() != Some(&error) => {
                    tracing::warn!(dir = %dir.display(), %error, "webhook certificate files not reloaded; still serving the previous one");
                    last_error = Some(error);
                }
                Err(_) => {}
            }
        }
    })
}

/// What the self-managed renewal needs: where the Secret is, the names, the webhook configuration.
pub struct SelfManaged {
    pub client: kube::Client,
    pub namespace: String,
    pub secret_name: String,
    pub names: Vec<String>,
    pub configuration: String,
}

/// How often the self-managed Secret is read for a renewal (by this replica or another).
const RENEWAL_CHECK: Duration = Duration::from_secs(3600);

/// [`RENEWAL_CHECK`], or a twentieth of the validity a debug build's failpoint shortened it to
/// (see [`certs::validity`]).
pub fn renewal_check() -> Duration {
    let short = certs::validity().unsigned_abs() / 20;
    RENEWAL_CHECK.min(short.max(Duration::from_secs(1)))
}

/// Every `period`: renews the Secret's certificate once a third of its validity is left (or takes
/// the one another replica renewed), publishes the CA bundle (the new CA and the previous one, so
/// replicas still serving the previous certificate are trusted meanwhile), then presents it.
pub fn renew_self_managed(managed: SelfManaged, keys: Arc<ServingKeys>, period: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is now: startup has just ensured the certificate
        loop {
            ticks.tick().await;
            let renewed = async {
                let cert = certs::ensure(
                    &managed.client,
                    &managed.namespace,
                    &managed.secret_name,
                    &managed.names,
                    jiff::Timestamp::now(),
                )
                .await?;
                certs::publish_ca_bundle(&managed.client, &managed.configuration, &cert.ca_pem).await?;
                Ok::<_, certs::CertError>(cert)
            };
            match renewed.await {
                Ok(cert) => {
                    if let Err(error) = keys.replace(&cert) {
                        tracing::warn!(%error, "the renewed webhook certificate is not usable; still serving the previous one");
                    }
                }
                Err(error) => tracing::warn!(%error, "webhook certificate renewal failed; retrying later"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_ends_at_the_second_its_secret_says() {
        let now: jiff::Timestamp = "2026-11-24T18:07:09Z".parse().expect("timestamp");
        let (cert, expires) = certs::generate(&["a.svc".to_owned()], now).expect("generated");
        let (_, not_after) = certified_key(&cert).expect("a usable certificate");
        assert_eq!(not_after, expires.as_second(), "the certificate ends when trimtab.dev/not-after says");
    }
}
