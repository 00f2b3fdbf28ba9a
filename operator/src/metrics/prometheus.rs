//! The Prometheus client: connection settings are the operator's (URL, timeout, credentials from
//! files mounted from a Secret, a CA), never a policy's.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use prometheus_http_query::response::Data;

use super::{BoxFuture, MetricsSource, QueryOutcome, RangeOutcome, freshness};
use crate::engine::{Absence, Sample};

#[derive(Debug, Clone)]
pub struct PrometheusSettings {
    pub url: String,
    pub timeout: Duration,
    /// A value whose query reads a series not written for longer than this is Stale.
    pub staleness: Duration,
    /// Re-read when it changes (see `credentials`).
    pub bearer_token_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    /// An answer with a longer body is not read past this: one number never needs a megabyte.
    pub max_response_bytes: usize,
    /// Queries in flight at once; more wait their turn.
    pub max_concurrency: usize,
    /// Sent with every request: a multi-tenant backend's tenant (`X-Scope-OrgID`), say.
    pub headers: Vec<(String, String)>,
}

/// The default of `--prometheus-max-concurrency`.
pub const DEFAULT_MAX_CONCURRENCY: usize = 16;

/// The default of `--prometheus-max-response-bytes`: 1 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1 << 20;

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
    #[error("invalid header name {0:?} in --prometheus-header")]
    HeaderName(String),
}

/// A range query and its length in minutes.
type RangeKey = (String, u32);
/// The minute a range ended at, and its values.
type MinuteAnswer = (i64, BTreeMap<i64, f64>);

pub struct PrometheusClient {
    client: prometheus_http_query::Client,
    in_flight: tokio::sync::Semaphore,
    settings: PrometheusSettings,
    /// The bearer token, when it is the credential sent.
    token: Option<super::credentials::TokenFile>,
    clock: fn() -> f64,
    /// Range answers of the current minute, by query and length: a range ends at the last whole
    /// minute, so every round of a minute (and every policy sharing a query) gets the same answer.
    ranges: std::sync::Mutex<HashMap<RangeKey, MinuteAnswer>>,
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
        for (name, value) in &settings.headers {
            let name: reqwest::header::HeaderName = name.parse().map_err(|_| SettingsError::HeaderName(name.clone()))?;
            headers.append(name, value.parse()?);
        }
        // Basic auth, when given, is the credential; else the token file, read again per request.
        let token = match (&settings.bearer_token_file, &settings.username) {
            (Some(path), None) => Some(super::credentials::TokenFile::open(path)?),
            _ => None,
        };
        if let Some(token) = &token {
            // As read now, for the requests that cannot take a header of their own (the targets API).
            headers.insert(reqwest::header::AUTHORIZATION, token.header());
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
        let in_flight = tokio::sync::Semaphore::new(settings.max_concurrency.max(1));
        Ok(PrometheusClient { client, in_flight, settings, token, clock: unix_now, ranges: Default::default() })
    }

    async fn run(&self, promql: &str) -> QueryOutcome {
        self.report(promql).await.outcome
    }

    /// One query, with the number of series and their labels beside the outcome: what `trimtab
    /// check` shows. The operator's rounds use only the outcome. A value whose series have stopped
    /// being written (see [`freshness`]) is Stale.
    pub async fn report(&self, promql: &str) -> QueryReport {
        let mut report = match self.fetch(promql).await {
            Ok((status, body)) => classify_report(status, &body),
            Err(absence) => {
                return QueryReport { outcome: QueryOutcome::Sample(Sample::Absent(absence)), series: None, labels: vec![] };
            }
        };
        if let QueryOutcome::Sample(Sample::Value(_)) = report.outcome
            && let Some(absence) = self.staleness(promql).await
        {
            report.outcome = QueryOutcome::Sample(Sample::Absent(absence));
        }
        report
    }

    /// Stale when a selector of the query has not been written for longer than the staleness
    /// bound; the age query's own absence when it got no answer (a value nobody can vouch for is
    /// not acted on). One more request per distinct query, only for a query that gave a value.
    async fn staleness(&self, promql: &str) -> Option<Absence> {
        let ages = freshness::age_query(promql)?;
        let (status, body) = match self.fetch(&ages).await {
            Ok(answer) => answer,
            Err(absence) => return Some(absence),
        };
        match success_data(status, &body) {
            Ok(data) => {
                let frozen = freshness::frozen(promql, &data, self.settings.staleness)?;
                tracing::info!(
                    query = promql,
                    selector = frozen.selector,
                    age_seconds = frozen.age,
                    bound_seconds = self.settings.staleness.as_secs_f64(),
                    "a series the query reads has not been written for longer than the staleness bound: Stale"
                );
                Some(Absence::Stale)
            }
            Err(QueryOutcome::Sample(Sample::Absent(absence))) => Some(absence),
            // Prometheus refusing the age query is Trimtab's fault, not the policy's: keep the value.
            Err(outcome) => {
                tracing::warn!(query = ages, ?outcome, "Prometheus refused the staleness query; the value is used unchecked");
                None
            }
        }
    }

    /// One instant query's status and body; an absence when there is no answer to read.
    async fn fetch(&self, promql: &str) -> Result<(reqwest::StatusCode, Vec<u8>), Absence> {
        // The semaphore is never closed, so acquiring fails never; were it to, query anyway.
        let _turn = self.in_flight.acquire().await.ok();
        let timeout_ms = i64::try_from(self.settings.timeout.as_millis()).unwrap_or(i64::MAX);
        let mut request = self.client.query(promql).timeout(timeout_ms);
        if let Some(token) = &self.token {
            request = request.header(reqwest::header::AUTHORIZATION, token.header());
        }
        let response = request.get_raw().await.map_err(|e| transport_absence(&e))?;
        let status = response.status();
        match read_capped(response, self.settings.max_response_bytes).await {
            Ok(body) => Ok((status, body)),
            Err(BodyError::TooLarge) => {
                tracing::warn!(
                    query = promql,
                    limit = self.settings.max_response_bytes,
                    "Prometheus answered with more than one number can need"
                );
                Err(Absence::MultipleSeries)
            }
            Err(BodyError::Read(error)) => Err(if error.is_timeout() { Absence::Timeout } else { Absence::Unreachable }),
        }
    }

    /// A range query at a one-minute step over the last `minutes`, ending at the last whole minute.
    /// Answers are kept for the rest of their minute; absences are not, so a recovered Prometheus
    /// is read again at once.
    pub async fn range(&self, promql: &str, minutes: u32) -> RangeOutcome {
        let end = ((self.clock)() / 60.0).floor() as i64 * 60;
        let key = (promql.to_owned(), minutes);
        if let Some((at, values)) = self.ranges.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && *at == end
        {
            return RangeOutcome::Minutes(values.clone());
        }
        let outcome = self.fetch_range(promql, minutes, end).await;
        if let RangeOutcome::Minutes(values) = &outcome {
            let mut ranges = self.ranges.lock().unwrap_or_else(|e| e.into_inner());
            ranges.retain(|_, (at, _)| *at >= end);
            ranges.insert(key, (end, values.clone()));
        }
        outcome
    }

    async fn fetch_range(&self, promql: &str, minutes: u32, end: i64) -> RangeOutcome {
        let _turn = self.in_flight.acquire().await.ok();
        let timeout_ms = i64::try_from(self.settings.timeout.as_millis()).unwrap_or(i64::MAX);
        let start = end - i64::from(minutes) * 60;
        let mut request = self.client.query_range(promql, start, end, 60.0).timeout(timeout_ms);
        if let Some(token) = &self.token {
            request = request.header(reqwest::header::AUTHORIZATION, token.header());
        }
        let response = match request.get_raw().await {
            Ok(response) => response,
            Err(error) => return RangeOutcome::Absent(transport_absence(&error)),
        };
        let status = response.status();
        match read_capped(response, self.settings.max_response_bytes).await {
            Ok(body) => parse_range(status, &body),
            Err(BodyError::TooLarge) => {
                tracing::warn!(
                    query = promql,
                    limit = self.settings.max_response_bytes,
                    "Prometheus answered a range with too much"
                );
                RangeOutcome::Absent(Absence::MultipleSeries)
            }
            Err(BodyError::Read(error)) => {
                RangeOutcome::Absent(if error.is_timeout() { Absence::Timeout } else { Absence::Unreachable })
            }
        }
    }

    /// The scrape interval of each job with an active target (the longest, when a job's targets
    /// differ), from the targets API.
    pub async fn scrape_intervals(&self) -> Result<BTreeMap<String, Duration>, prometheus_http_query::Error> {
        let targets = self.client.targets(Some(prometheus_http_query::TargetState::Active)).await?;
        let mut intervals: BTreeMap<String, Duration> = BTreeMap::new();
        for target in targets.active() {
            let Some(job) = target.labels().get("job") else { continue };
            let interval = Duration::from_millis(u64::try_from(target.scrape_interval().whole_milliseconds()).unwrap_or(0));
            let longest = intervals.entry(job.clone()).or_default();
            *longest = (*longest).max(interval);
        }
        Ok(intervals)
    }
}

/// What one query gave, and what it looked like: how many series (unknown when the answer was
/// not read) and each series' labels.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryReport {
    pub outcome: QueryOutcome,
    pub series: Option<usize>,
    pub labels: Vec<BTreeMap<String, String>>,
}

/// Why a request got no answer: a timeout, or anything else that kept Prometheus out of reach.
fn transport_absence(error: &prometheus_http_query::Error) -> Absence {
    let timed_out = match error {
        prometheus_http_query::Error::Client(e) => {
            std::error::Error::source(e).and_then(|s| s.downcast_ref::<reqwest::Error>()).is_some_and(reqwest::Error::is_timeout)
        }
        _ => false,
    };
    if timed_out { Absence::Timeout } else { Absence::Unreachable }
}

enum BodyError {
    TooLarge,
    Read(reqwest::Error),
}

/// The body, chunk by chunk, refusing more than `limit` bytes (whatever Content-Length claims), so
/// memory stays bounded whatever Prometheus, or something in front of it, sends.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The API's envelope: `{"status": "success", "data": ...}` or `{"status": "error", "errorType", "error"}`.
#[derive(serde::Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// An answer as the decision needs it. Only `bad_data` means the query itself is wrong (the policy
/// must be fixed); a timeout or cancel is Timeout; every other error (`execution`, `internal`,
/// `unavailable`, a 5xx without an API body, a body that is not the API's) is Unreachable, which
/// holds and then falls back, as the policy's missingData says. Whatever the body, never a panic.
pub fn classify(status: reqwest::StatusCode, body: &[u8]) -> QueryOutcome {
    classify_report(status, body).outcome
}

/// [`classify`], with the series the answer held.
fn classify_report(status: reqwest::StatusCode, body: &[u8]) -> QueryReport {
    match success_data(status, body) {
        Ok(data) => {
            let labels = series_labels(&data);
            QueryReport { outcome: QueryOutcome::Sample(parse(&data)), series: Some(labels.len()), labels }
        }
        Err(outcome) => QueryReport { outcome, series: None, labels: vec![] },
    }
}

/// The data of a successful answer, or what the answer means otherwise.
fn success_data(status: reqwest::StatusCode, body: &[u8]) -> Result<Data, QueryOutcome> {
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        return Err(QueryOutcome::Sample(Sample::Absent(Absence::Unreachable)));
    };
    match envelope {
        Envelope { status: ref s, data: Some(data), .. } if s == "success" && status.is_success() => Ok(data),
        envelope => Err(failure(envelope)),
    }
}

/// What an answer that is not a success means: only `bad_data` is the query's fault.
fn failure(envelope: Envelope) -> QueryOutcome {
    match envelope.status.as_str() {
        "error" => match envelope.error_type.as_deref() {
            Some("bad_data") => QueryOutcome::Rejected(envelope.error.unwrap_or_else(|| "bad_data".to_owned())),
            Some("timeout" | "canceled") => QueryOutcome::Sample(Sample::Absent(Absence::Timeout)),
            _ => QueryOutcome::Sample(Sample::Absent(Absence::Unreachable)),
        },
        _ => QueryOutcome::Sample(Sample::Absent(Absence::Unreachable)),
    }
}

/// The labels of each series of an answer (a scalar is one series without labels).
fn series_labels(data: &Data) -> Vec<BTreeMap<String, String>> {
    let labelled = |metric: &std::collections::HashMap<String, String>| metric.clone().into_iter().collect();
    match data {
        Data::Scalar(_) => vec![BTreeMap::new()],
        Data::Vector(series) => series.iter().map(|s| labelled(s.metric())).collect(),
        Data::Matrix(series) => series.iter().map(|s| labelled(s.metric())).collect(),
    }
}

impl MetricsSource for PrometheusClient {
    fn query<'a>(&'a self, promql: &'a str) -> BoxFuture<'a, QueryOutcome> {
        Box::pin(self.run(promql))
    }

    fn query_range<'a>(&'a self, promql: &'a str, minutes: u32) -> BoxFuture<'a, RangeOutcome> {
        Box::pin(self.range(promql, minutes))
    }
}

/// A range answer as the predictive law needs it: one series, its finite values by minute. Errors
/// are classified as for an instant query (only `bad_data` is the query's fault).
pub fn parse_range(status: reqwest::StatusCode, body: &[u8]) -> RangeOutcome {
    let Ok(envelope) = serde_json::from_slice::<Envelope>(body) else {
        return RangeOutcome::Absent(Absence::Unreachable);
    };
    if envelope.status != "success" || !status.is_success() {
        return match failure(envelope) {
            QueryOutcome::Rejected(message) => RangeOutcome::Rejected(message),
            QueryOutcome::Sample(Sample::Absent(absence)) => RangeOutcome::Absent(absence),
            QueryOutcome::Sample(_) => RangeOutcome::Absent(Absence::Unreachable),
        };
    }
    match envelope.data {
        Some(Data::Matrix(series)) => match series.as_slice() {
            [] => RangeOutcome::Absent(Absence::Empty),
            [one] => RangeOutcome::Minutes(
                one.samples()
                    .iter()
                    .filter(|s| s.value().is_finite())
                    .map(|s| (s.timestamp().round() as i64, s.value()))
                    .collect(),
            ),
            _ => RangeOutcome::Absent(Absence::MultipleSeries),
        },
        // A success without data is not the API's answer; a vector or scalar is not a range.
        None => RangeOutcome::Absent(Absence::Unreachable),
        Some(_) => RangeOutcome::Absent(Absence::MultipleSeries),
    }
}

/// Exactly one sample is a value; anything else is a typed absence. The sample's time is the
/// query's evaluation time, which says nothing of its age: see [`PrometheusClient::staleness`].
fn parse(data: &Data) -> Sample {
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
        assert_eq!(parse(&d), Sample::Value(0.412));
    }

    #[test]
    fn no_series_is_empty_not_zero() {
        assert_eq!(parse(&data(r#"{"resultType":"vector","result":[]}"#)), Sample::Absent(Absence::Empty));
    }

    #[test]
    fn two_series_are_ambiguous() {
        let d = data(
            r#"{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[1700000000,"1"]},{"metric":{"a":"2"},"value":[1700000000,"2"]}]}"#,
        );
        assert_eq!(parse(&d), Sample::Absent(Absence::MultipleSeries));
    }

    #[test]
    fn nan_and_infinity_are_absences() {
        for (v, absence) in [("NaN", Absence::NaN), ("+Inf", Absence::Infinite), ("-Inf", Absence::Infinite)] {
            let d = data(&format!(r#"{{"resultType":"scalar","result":[1700000000,"{v}"]}}"#));
            assert_eq!(parse(&d), Sample::Absent(absence), "{v}");
        }
    }

    fn answer(status: u16, body: &str) -> QueryOutcome {
        classify(reqwest::StatusCode::from_u16(status).expect("a status"), body.as_bytes())
    }

    #[test]
    fn only_bad_data_means_the_query_is_wrong() {
        let error = |kind: &str| format!(r#"{{"status":"error","errorType":"{kind}","error":"it went wrong"}}"#);
        assert_eq!(answer(400, &error("bad_data")), QueryOutcome::Rejected("it went wrong".into()));
        assert_eq!(answer(503, &error("timeout")), QueryOutcome::Sample(Sample::Absent(Absence::Timeout)));
        assert_eq!(answer(503, &error("canceled")), QueryOutcome::Sample(Sample::Absent(Absence::Timeout)));
        for kind in ["execution", "internal", "unavailable", "not_found", "something_new"] {
            assert_eq!(answer(422, &error(kind)), QueryOutcome::Sample(Sample::Absent(Absence::Unreachable)), "{kind}");
        }
    }

    #[test]
    fn a_body_that_is_not_the_apis_is_unreachable_not_a_crash() {
        for body in [
            "",
            "<html>502 Bad Gateway</html>",
            "{",
            r#"{"status":"success"}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"oops"]}]}}"#,
        ] {
            assert_eq!(answer(200, body), QueryOutcome::Sample(Sample::Absent(Absence::Unreachable)), "{body:?}");
        }
        let ok = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"2"]}]}}"#;
        assert_eq!(answer(502, ok), QueryOutcome::Sample(Sample::Absent(Absence::Unreachable)), "a success body under a 5xx");
        assert_eq!(answer(200, ok), QueryOutcome::Sample(Sample::Value(2.0)));
    }

    #[test]
    fn a_matrix_is_not_one_number() {
        let d = data(r#"{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"1"]]}]}"#);
        assert_eq!(parse(&d), Sample::Absent(Absence::MultipleSeries));
    }

    /// A server on 127.0.0.1 that answers every request with `head` and then `body_chunks` chunks of
    /// `chunk` (chunked encoding, no length), and counts how many chunks it got to send.
    async fn serve(
        status: &'static str,
        chunk: &'static [u8],
        body_chunks: usize,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = sent.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let head =
                        format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n");
                    if socket.write_all(head.as_bytes()).await.is_err() {
                        return;
                    }
                    for _ in 0..body_chunks {
                        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
                        if socket.write_all(&framed).await.is_err() {
                            return; // the client hung up: what we want to see
                        }
                        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    let _ = socket.write_all(b"0\r\n\r\n").await;
                });
            }
        });
        (url, sent)
    }

    fn client(url: String) -> PrometheusClient {
        let _ = rustls::crypto::ring::default_provider().install_default(); // as `trimtab run` does
        PrometheusClient::new(PrometheusSettings {
            url,
            timeout: Duration::from_secs(30),
            staleness: FRESH,
            bearer_token_file: None,
            username: None,
            password_file: None,
            ca_file: None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            headers: vec![],
        })
        .expect("a client")
    }

    #[tokio::test]
    async fn a_200_mb_answer_is_read_no_further_than_the_cap_and_is_an_absence() {
        static CHUNK: [u8; 64 * 1024] = [b' '; 64 * 1024];
        let chunks = 200 * 1024 * 1024 / CHUNK.len();
        let (url, sent) = serve("200 OK", &CHUNK, chunks).await;
        let outcome = client(url).run("up").await;
        assert_eq!(outcome, QueryOutcome::Sample(Sample::Absent(Absence::MultipleSeries)));
        // The client stopped after about 1 MiB; the socket buffers let the server get a little further.
        let sent_bytes = sent.load(std::sync::atomic::Ordering::Relaxed) * CHUNK.len();
        assert!(sent_bytes < 64 * 1024 * 1024, "{sent_bytes} bytes were sent before the client hung up");
    }

    #[tokio::test]
    async fn a_real_answer_under_the_cap_is_its_value() {
        let body: &'static [u8] = br#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"3.5"]}}"#;
        let (url, _) = serve("200 OK", body, 1).await;
        let mut prometheus = client(url);
        prometheus.clock = || NOW;
        assert_eq!(prometheus.run("3.5").await, QueryOutcome::Sample(Sample::Value(3.5)));
    }

    #[test]
    fn basic_auth_is_base64() {
        assert_eq!(base64_encode(b"user:pass"), "dXNlcjpwYXNz");
        assert_eq!(base64_encode(b"ab"), "YWI=");
    }

    static TEST_NOW: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_700_000_010);

    #[tokio::test]
    async fn a_range_is_asked_once_a_minute_however_many_rounds_and_policies_ask_for_it() {
        let body: &'static [u8] =
            br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"10"]]}]}}"#;
        let (url, sent) = serve("200 OK", body, 1).await;
        let mut prometheus = client(url);
        prometheus.clock = || TEST_NOW.load(std::sync::atomic::Ordering::Relaxed) as f64;
        let expected = RangeOutcome::Minutes(BTreeMap::from([(1_700_000_000, 10.0)]));
        for _ in 0..3 {
            assert_eq!(prometheus.range("sum(rate(x[1m]))", 120).await, expected);
        }
        assert_eq!(sent.load(std::sync::atomic::Ordering::Relaxed), 1, "three rounds of one minute, one request");
        TEST_NOW.store(1_700_000_070, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(prometheus.range("sum(rate(x[1m]))", 120).await, expected);
        assert_eq!(sent.load(std::sync::atomic::Ordering::Relaxed), 2, "the next minute asks again");
    }

    #[test]
    fn a_range_of_one_series_is_its_finite_values_by_minute() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000040,"10"],[1700000100,"NaN"],[1700000160,"12.5"]]}]}}"#;
        let expected = BTreeMap::from([(1_700_000_040, 10.0), (1_700_000_160, 12.5)]);
        assert_eq!(parse_range(reqwest::StatusCode::OK, body), RangeOutcome::Minutes(expected));
    }

    #[test]
    fn a_range_with_no_series_or_several_is_an_absence_and_a_bad_query_is_rejected() {
        let empty = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert_eq!(parse_range(reqwest::StatusCode::OK, empty), RangeOutcome::Absent(Absence::Empty));
        let two = br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"1"},"values":[[1,"1"]]},{"metric":{"a":"2"},"values":[[1,"2"]]}]}}"#;
        assert_eq!(parse_range(reqwest::StatusCode::OK, two), RangeOutcome::Absent(Absence::MultipleSeries));
        let bad = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert_eq!(parse_range(reqwest::StatusCode::BAD_REQUEST, bad), RangeOutcome::Rejected("parse error".into()));
        let down = br#"{"status":"error","errorType":"unavailable","error":"shutting down"}"#;
        assert_eq!(parse_range(reqwest::StatusCode::SERVICE_UNAVAILABLE, down), RangeOutcome::Absent(Absence::Unreachable));
        assert_eq!(parse_range(reqwest::StatusCode::OK, b"not json"), RangeOutcome::Absent(Absence::Unreachable));
    }
}
