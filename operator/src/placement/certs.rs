//! The webhook's serving certificate, when cert-manager does not supply one: a CA and a serving
//! certificate kept in a Secret (shared by every replica), renewed once a third of their validity is
//! left, and the CA written into the MutatingWebhookConfiguration's caBundle.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::{Api, Client};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType, date_time_ymd};

const NOT_AFTER: &str = "trimtab.dev/not-after";
const NAMES: &str = "trimtab.dev/names";
/// How long a generated CA and certificate are valid.
const VALIDITY: SignedDuration = SignedDuration::from_hours(365 * 24);

/// The failpoint of the renewal scenario: set to a number of seconds, a debug build generates
/// certificates valid for that long, and checks for a renewal every twentieth of it.
#[cfg(debug_assertions)]
pub const SHORT_VALIDITY: &str = "TRIMTAB_FAILPOINT_WEBHOOK_CERT_SECONDS";

/// How long a generated certificate is valid: [`VALIDITY`], or a debug build's [`SHORT_VALIDITY`].
pub fn validity() -> SignedDuration {
    #[cfg(debug_assertions)]
    if let Some(seconds) = std::env::var(SHORT_VALIDITY).ok().and_then(|s| s.parse::<u32>().ok()).filter(|s| *s > 0) {
        return SignedDuration::from_secs(i64::from(seconds));
    }
    VALIDITY
}

/// A certificate with less than this left is renewed: a third of its validity, as cert-manager does.
fn renew_before() -> SignedDuration {
    validity() / 3
}

/// PEM-encoded serving material.
#[derive(Clone)]
pub struct ServingCert {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot generate the webhook certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot read or write the webhook certificate Secret or caBundle: {0}")]
    Kube(#[from] kube::Error),
    #[error("cannot read the webhook certificate files: {0}")]
    Files(#[from] std::io::Error),
}

/// Reads `tls.crt`, `tls.key` (and `ca.crt`, if present) from a directory, as cert-manager mounts them.
pub fn from_dir(dir: &std::path::Path) -> Result<ServingCert, CertError> {
    Ok(ServingCert {
        cert_pem: std::fs::read_to_string(dir.join("tls.crt"))?,
        key_pem: std::fs::read_to_string(dir.join("tls.key"))?,
        ca_pem: std::fs::read_to_string(dir.join("ca.crt")).unwrap_or_default(),
    })
}

/// The certificate from the Secret, created or renewed when missing, expiring or for other names.
pub async fn ensure(
    client: &Client,
    namespace: &str,
    secret_name: &str,
    dns_names: &[String],
    now: Timestamp,
) -> Result<ServingCert, CertError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let names = dns_names.join(",");
    let existing = secrets.get_opt(secret_name).await?;
    if let Some(cert) = existing.as_ref().and_then(|secret| usable(secret, &names, now)) {
        return Ok(cert);
    }
    let (mut cert, not_after) = generate(dns_names, now)?;
    // Replicas still serving the previous certificate must stay trusted until they take this one.
    if let Some(previous) = previous_ca(existing.as_ref()) {
        cert.ca_pem = format!("{}{previous}", cert.ca_pem);
    }
    let annotations = [(NOT_AFTER.to_owned(), not_after.to_string()), (NAMES.to_owned(), names.clone())];
    let data = BTreeMap::from([
        ("ca.crt".to_owned(), ByteString(cert.ca_pem.clone().into_bytes())),
        ("tls.crt".to_owned(), ByteString(cert.cert_pem.clone().into_bytes())),
        ("tls.key".to_owned(), ByteString(cert.key_pem.clone().into_bytes())),
    ]);
    let written = match existing {
        None => {
            let mut secret = Secret::default();
            secret.metadata.name = Some(secret_name.to_owned());
            secret.metadata.annotations = Some(annotations.into_iter().collect());
            secret.type_ = Some("kubernetes.io/tls".to_owned());
            secret.data = Some(data);
            secrets.create(&PostParams::default(), &secret).await
        }
        // Keep what else the Secret carries (the chart's labels), and its resourceVersion as a
        // precondition: if another replica renewed it meanwhile, we use theirs.
        Some(mut current) => {
            current.metadata.annotations.get_or_insert_with(BTreeMap::new).extend(annotations);
            current.data = Some(data);
            secrets.replace(secret_name, &PostParams::default(), &current).await
        }
    };
    match written {
        Ok(_) => Ok(cert),
        // Another replica wrote it first: use theirs, so every replica serves the same CA.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let theirs = secrets.get(secret_name).await?;
            Ok(usable(&theirs, &names, now).unwrap_or(cert))
        }
        Err(e) => Err(e.into()),
    }
}

fn usable(secret: &Secret, names: &str, now: Timestamp) -> Option<ServingCert> {
    let annotations = secret.metadata.annotations.as_ref()?;
    let not_after: Timestamp = annotations.get(NOT_AFTER)?.parse().ok()?;
    if annotations.get(NAMES)? != names || not_after.duration_since(now) < renew_before() {
        return None;
    }
    let data = secret.data.as_ref()?;
    let text = |key: &str| data.get(key).and_then(|b| String::from_utf8(b.0.clone()).ok());
    Some(ServingCert { ca_pem: text("ca.crt")?, cert_pem: text("tls.crt")?, key_pem: text("tls.key")? })
}

/// The first CA of the Secret's bundle (the one its certificate was signed by), in PEM.
fn previous_ca(secret: Option<&Secret>) -> Option<String> {
    const END: &str = "-----END CERTIFICATE-----";
    let text = std::str::from_utf8(&secret?.data.as_ref()?.get("ca.crt")?.0).ok()?;
    let end = text.find(END)? + END.len();
    Some(format!("{}\n", text[..end].trim_start()))
}

/// A new CA and a serving certificate for `dns_names` (DNS names or IPs, and 127.0.0.1), valid for
/// [`validity`] (a year).
pub fn generate(dns_names: &[String], now: Timestamp) -> Result<(ServingCert, Timestamp), CertError> {
    let expires = now + validity();
    // To the second: the certificate ends when the Secret's annotation says it does.
    let zoned = expires.to_zoned(jiff::tz::TimeZone::UTC);
    let (date, time) = (zoned.date(), zoned.time());
    let into_day = std::time::Duration::from_secs(
        u64::from(time.hour().unsigned_abs()) * 3600
            + u64::from(time.minute().unsigned_abs()) * 60
            + u64::from(time.second().unsigned_abs()),
    );
    let not_after = date_time_ymd(i32::from(date.year()), date.month() as u8, date.day() as u8) + into_day;

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "trimtab webhook CA");
    ca.not_after = not_after;
    let ca_cert = ca.self_signed(&ca_key)?;

    let key = KeyPair::generate()?;
    // Names that parse as IP addresses are IP SANs; the rest DNS names. 127.0.0.1 always.
    let (ips, dns): (Vec<&String>, Vec<&String>) = dns_names.iter().partition(|n| n.parse::<std::net::IpAddr>().is_ok());
    let mut serving = CertificateParams::new(dns.into_iter().cloned().collect::<Vec<_>>())?;
    serving.subject_alt_names.push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    for ip in ips.into_iter().filter_map(|ip| ip.parse().ok()) {
        serving.subject_alt_names.push(SanType::IpAddress(ip));
    }
    serving.distinguished_name.push(DnType::CommonName, dns_names.first().map(String::as_str).unwrap_or("trimtab-webhook"));
    serving.not_after = not_after;
    let issuer = Issuer::new(ca, ca_key);
    let cert = serving.signed_by(&key, &issuer)?;
    Ok((ServingCert { ca_pem: ca_cert.pem(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }, expires))
}

/// Writes the CA into every webhook of the configuration, if it is not there already.
pub async fn publish_ca_bundle(client: &Client, configuration: &str, ca_pem: &str) -> Result<(), CertError> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let Some(mut current) = api.get_opt(configuration).await? else {
        tracing::warn!(configuration, "no MutatingWebhookConfiguration to publish the CA to");
        return Ok(());
    };
    let bundle = ByteString(ca_pem.as_bytes().to_vec());
    let mut changed = false;
    for webhook in current.webhooks.iter_mut().flatten() {
        if webhook.client_config.ca_bundle.as_ref() != Some(&bundle) {
            webhook.client_config.ca_bundle = Some(bundle.clone());
            changed = true;
        }
    }
    if changed {
        api.replace(configuration, &PostParams::default(), &current).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_is_valid_for_a_year() {
        let now: Timestamp = "2026-11-24T18:00:00Z".parse().expect("timestamp");
        let (cert, expires) =
            generate(&["trimtab-webhook.trimtab-system.svc".to_owned(), "10.0.0.1".to_owned()], now).expect("generated");
        assert_eq!(expires, "2027-11-24T18:00:00Z".parse::<Timestamp>().expect("timestamp"));
        assert!(cert.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    }

    fn secret(ca_pem: &str, not_after: &str) -> Secret {
        let mut secret = Secret::default();
        secret.metadata.annotations =
            Some(BTreeMap::from([(NOT_AFTER.to_owned(), not_after.to_owned()), (NAMES.to_owned(), "a.svc".to_owned())]));
        secret.data = Some(
            [("ca.crt", ca_pem), ("tls.crt", "crt"), ("tls.key", "key")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        );
        secret
    }

    #[test]
    fn a_certificate_is_renewed_once_less_than_a_third_of_its_year_is_left() {
        let now: Timestamp = "2026-11-24T18:00:00Z".parse().expect("timestamp");
        assert!(usable(&secret("ca", "2027-06-01T00:00:00Z"), "a.svc", now).is_some(), "six months left");
        assert!(usable(&secret("ca", "2027-03-01T00:00:00Z"), "a.svc", now).is_none(), "three months left");
        assert!(usable(&secret("ca", "2027-06-01T00:00:00Z"), "b.svc", now).is_none(), "other names");
    }

    #[test]
    fn a_renewal_trusts_the_ca_the_previous_certificate_was_signed_by() {
        let now: Timestamp = "2026-11-24T18:00:00Z".parse().expect("timestamp");
        let (old, _) = generate(&["a.svc".to_owned()], now).expect("generated");
        let (older, _) = generate(&["a.svc".to_owned()], now).expect("generated");
        let bundle = format!("{}{}", old.ca_pem, older.ca_pem);
        let previous = previous_ca(Some(&secret(&bundle, "2027-01-01T00:00:00Z"))).expect("a previous CA");
        assert_eq!(previous.trim(), old.ca_pem.trim(), "the first of the bundle, the older one dropped");
        assert_eq!(previous_ca(None), None);
    }
}
