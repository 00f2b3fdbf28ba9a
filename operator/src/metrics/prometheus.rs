//! The Prometheus client: connection settings are the operator's (URL, timeout, credentials from
//! files mounted from a Secret, a CA), never a policy's.

use std::path::PathBuf;
use std::time::Duration;

use prometheus_http_query::response::Data;

use super::{BoxFuture, MetricsSource, QueryOutcome};
use crate::engine::{Absence, Sample};

#[derive(Debug, Clone)]
pub struct PrometheusSettings {
    pub url: String,
    pub timeout: Duration,
    /// A sample older than this is Stale.
    pub staleness: Duration,
    pub bearer_token_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {what} from {path}: {source}")]
    ReadFile { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("the Prometheus CA in {path} is not a PEM certificate: {source}")]
    Ca { path: PathBuf, source: reqwest::Error },
    #[error("the Prometheus password needs a username (--prometheus-username)")]
    PasswordWithoutUser,
    #[error("cannot build the Prometheus HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("invalid Prometheus URL {url:?}: {message}")]
    Url { url: String, message: String },
    #[error("invalid credential header: {0}")]
    Header(#[from] reqwest::header::InvalidHeaderValue),
}

pub struct PrometheusClient {
    client: prometheus_http_query::Client,
    settings: PrometheusSettings,
    clock: fn() -> f64,
}

fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl PrometheusClient {
    pub fn new(settings: PrometheusSettings) -> Result<Self, SettingsError> {
        let read = |what: &'static str, path: &PathBuf| {
            std::fs::read_to_string(path).map(|s| s.trim().to_owned()).map_err(|source| SettingsError::ReadFile {
                what,
                path: path.clone(),
                source,
            })
        };
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(path) = &settings.bearer_token_file {
            let token = read("the bearer token", path)?;
            headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
        }
        match (&settings.username, &settings.password_file) {
            (Some(user), password) => {
                let password = password.as_ref().map(|p| read("the password", p)).transpose()?.unwrap_or_default();
                let encoded = base64_encode(format!("{user}:{password}").as_bytes());
                headers.insert(reqwest::header::AUTHORIZATION, format!("Basic {encoded}").parse()?);
            }
            (None, Some(_)) => return Err(SettingsError::PasswordWithoutUser),
            (None, None) => {}
        }
        let mut builder = reqwest::Client::builder().timeout(settings.timeout).default_headers(headers);
        if let Some(path) = &settings.ca_file {
            let pem =
                std::fs::read(path).map_err(|source| SettingsError::ReadFile { what: "the CA", path: path.clone(), source })?;
            let certificate =
                reqwest::Certificate::from_pem(&pem).map_err(|source| SettingsError::Ca { path: path.clone(), source })?;
            builder = builder.add_root_certificate(certificate);
        }
        let client = prometheus_http_query::Client::from(builder.build()?, &settings.url)
            .map_err(|e| SettingsError::Url { url: settings.url.clone(), message: e.to_string() })?;
        Ok(PrometheusClient { client, settings, clock: unix_now })
    }

    async fn run(&self, promql: &str) -> QueryOutcome {
        let timeout_ms = i64::try_from(self.settings.timeout.as_millis()).unwrap_or(i64::MAX);
        match self.client.query(promql).timeout(timeout_ms).get().await {
            Ok(result) => QueryOutcome::Sample(parse(result.data(), (self.clock)(), self.settings.staleness)),
            Err(prometheus_http_query::Error::Prometheus(e)) if e.is_timeout() => {
                QueryOutcome::Sample(Sample::Absent(Absence::Timeout))
            }
            Err(prometheus_http_query::Error::Prometheus(e)) => QueryOutcome::Rejected(e.message().to_owned()),
            Err(prometheus_http_query::Error::Client(e)) => {
                let timed_out = std::error::Error::source(&e)
                    .and_then(|s| s.downcast_ref::<reqwest::Error>())
                    .is_some_and(reqwest::Error::is_timeout);
                QueryOutcome::Sample(Sample::Absent(if timed_out { Absence::Timeout } else { Absence::Unreachable }))
            }
            Err(_) => QueryOutcome::Sample(Sample::Absent(Absence::Unreachable)),
        }
    }
}

impl MetricsSource for PrometheusClient {
    fn query<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, QueryOutcome> {
        Box::pin(self.run(promql))
    }
}

/// Exactly one sample is a value; anything else is a typed absence.
fn parse(data: &Data, now: f64, staleness: Duration) -> Sample {
    let sample = match data {
        Data::Scalar(sample) => sample,
        Data::Vector(series) => match series.as_slice() {
            [] => return Sample::Absent(Absence::Empty),
            [one] => one.sample(),
            _ => return Sample::Absent(Absence::MultipleSeries),
        },
        // A range vector is many samples, not one number.
        Data::Matrix(_) => return Sample::Absent(Absence::MultipleSeries),
    };
    if now - sample.timestamp() > staleness.as_secs_f64() {
        return Sample::Absent(Absence::Stale);
    }
    Sample::from_value(sample.value())
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n =
            (u32::from(chunk[0]) << 16) | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8) | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(json: &str) -> Data {
        serde_json::from_str(json).expect("test data parses")
    }

    const NOW: f64 = 1_700_000_000.0;
    const FRESH: Duration = Duration::from_secs(120);

    #[test]
    fn one_series_is_its_value() {
        let d = data(r#"{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"0.412"]}]}"#);
        assert_eq!(parse(&d, NOW, FRESH), Sample::Value(0.412));
    }

    #[test]
    fn no_series_is_empty_not_zero() {
        assert_eq!(parse(&data(r#"{"resultType":"vector","result":[]}"#), NOW, FRESH), Sample::Absent(Absence::Empty));
    }

    #[test]
    fn two_series_are_ambiguous() {
        let d = data(
            r#"{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1700000000,"1"]},{"metric":{"a":"2"},"value":[1700000000,"2"]}]}"#,
        );
        assert_eq!(parse(&d, NOW, FRESH), Sample::Absent(Absence::MultipleSeries));
    }

    #[test]
    fn nan_and_infinity_are_absences() {
        for v in ["NaN", "+Inf", "-Inf"] {
            let d = data(&format!(r#"{{"resultType":"scalar","result":[1700000000,"{v}"]}}"#));
            assert_eq!(parse(&d, NOW, FRESH), Sample::Absent(Absence::NaN), "{v}");
        }
    }

    #[test]
    fn an_old_sample_is_stale() {
        let d = data(r#"{"resultType":"vector","result":[{"metric":{},"value":[1699999000,"5"]}]}"#);
        assert_eq!(parse(&d, NOW, FRESH), Sample::Absent(Absence::Stale));
    }

    #[test]
    fn basic_auth_is_base64() {
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64_encode(b"ab"), "YWI=");
    }
}
