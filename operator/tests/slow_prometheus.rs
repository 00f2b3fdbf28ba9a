//! R5, one slow Prometheus endpoint: a real Prometheus behind a proxy that never answers the
//! queries reading `slow_endpoint`. The operator's query path (`PrometheusClient` through
//! `query_all`, as a round calls it) makes the hanging query `Timeout` once `--prometheus-timeout`
//! has passed, while the other queries of its batch, and another policy's round meanwhile, are
//! answered without waiting for it. Prints the figures: time to Timeout and the healthy latencies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use trimtab::engine::{Absence, Sample};
use trimtab::metrics::{MetricsSource, PrometheusClient, PrometheusSettings, QueryOutcome, query_all};

#[path = "common/prometheus.rs"]
mod prometheus_harness;
use prometheus_harness::{Prometheus, prometheus_binary};
#[path = "common/proxy.rs"]
mod proxy;
use proxy::Proxy;

/// `--prometheus-timeout`, as the e2e suite runs the operator.
const TIMEOUT: Duration = Duration::from_secs(2);
const READY_DEADLINE: Duration = Duration::from_secs(90);
/// What the proxy hangs on.
const SLOW: &str = "slow_endpoint";

fn metrics_text(_elapsed: f64) -> String {
    let mut text = String::from("# TYPE queue_depth gauge\n");
    for queue in 0..20 {
        text += &format!("queue_depth{{queue=\"q{queue}\"}} {queue}\n");
    }
    text + "# TYPE slow_endpoint gauge\nslow_endpoint 1\n"
}

fn client(url: &str) -> PrometheusClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    PrometheusClient::new(PrometheusSettings {
        url: url.to_owned(),
        timeout: TIMEOUT,
        staleness: Duration::from_secs(120),
        bearer_token_file: None,
        username: None,
        password_file: None,
        ca_file: None,
        max_response_bytes: trimtab::metrics::DEFAULT_MAX_RESPONSE_BYTES,
        max_concurrency: trimtab::metrics::DEFAULT_MAX_CONCURRENCY,
        headers: vec![],
    })
    .expect("a client")
}

fn healthy(queue: usize) -> String {
    format!(r#"queue_depth{{queue="q{queue}"}}"#)
}

/// Prometheus scraping the exporter, once every series reads (straight, not through the proxy).
async fn prometheus() -> Option<Prometheus> {
    let prometheus = Prometheus::start(prometheus_binary()?, metrics_text, "1s");
    let direct = client(&prometheus.url);
    let deadline = Instant::now() + READY_DEADLINE;
    loop {
        let outcomes = query_all(&direct, [healthy(19).as_str(), SLOW]).await;
        if outcomes.values().all(|o| matches!(o, QueryOutcome::Sample(Sample::Value(_)))) {
            return Some(prometheus);
        }
        assert!(Instant::now() < deadline, "Prometheus had no series in time; its log:\n{}", prometheus.log());
        tokio::time::sleep(Duration::from_millis(200)).await; // polling interval of the condition wait
    }
}

/// Each query's outcome and how long it took, all sent at once as `query_all` sends them.
async fn timed(source: &PrometheusClient, queries: &[String]) -> Vec<(String, QueryOutcome, Duration)> {
    futures::future::join_all(queries.iter().map(|query| async move {
        let started = Instant::now();
        let outcome = source.query(query).await;
        (query.clone(), outcome, started.elapsed())
    }))
    .await
}

fn value(outcome: &QueryOutcome) -> Option<f64> {
    match outcome {
        QueryOutcome::Sample(Sample::Value(v)) => Some(*v),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_query_is_a_timeout_after_the_prometheus_timeout_and_the_rest_of_its_batch_does_not_wait_for_it() {
    let Some(prometheus) = prometheus().await else { return };
    let proxy = Proxy::hanging(&prometheus.url, SLOW);
    let source = Arc::new(client(&proxy.url));

    // One policy's round: the hanging objective beside eight healthy ones.
    let mut batch = vec![format!("{SLOW} * 100")];
    batch.extend((0..8).map(healthy));
    let started = Instant::now();
    let round = tokio::spawn({
        let (source, batch) = (source.clone(), batch.clone());
        async move { timed(&source, &batch).await }
    });
    // Another policy's round, started while the hanging query is in flight.
    proxy.wait_until_holding(1, READY_DEADLINE).await; // the hanging query is in flight
    let other: Vec<String> = (8..16).map(healthy).collect();
    let neighbour = timed(&source, &other).await;
    let neighbour_done = started.elapsed();
    let round = round.await.expect("the round's task");
    let round_done = started.elapsed();

    let (_, hung, time_to_timeout) = &round[0];
    assert_eq!(*hung, QueryOutcome::Sample(Sample::Absent(Absence::Timeout)), "the hanging query is a Timeout");
    assert!(*time_to_timeout >= TIMEOUT, "a Timeout only once --prometheus-timeout has passed: {time_to_timeout:?}");
    for (query, outcome, took) in round[1..].iter().chain(&neighbour) {
        assert!(value(outcome).is_some(), "{query}: {outcome:?}");
        assert!(took < time_to_timeout, "{query} waited for the hanging query: {took:?}");
    }
    assert!(neighbour_done < *time_to_timeout, "another policy's round waited for the hanging query: {neighbour_done:?}");
    let slowest = |results: &[(String, QueryOutcome, Duration)]| results.iter().map(|r| r.2).max().unwrap_or_default();
    eprintln!(
        "R5: hanging query Timeout after {time_to_timeout:?} (--prometheus-timeout {TIMEOUT:?}); the 8 healthy queries of its \
         batch answered within {:?}; another policy's 8 queries, sent meanwhile, within {:?} (done {neighbour_done:?} after \
         the start, the hanging round at {round_done:?})",
        slowest(&round[1..]),
        slowest(&neighbour),
    );

    // The operator's query path on the same batch: every outcome, the hanging one a Timeout.
    let outcomes = query_all(source.as_ref(), batch.iter().map(String::as_str)).await;
    assert_eq!(outcomes[&batch[0]], QueryOutcome::Sample(Sample::Absent(Absence::Timeout)));
    assert_eq!(outcomes.values().filter(|o| value(o).is_some()).count(), 8, "{outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_slot_held_by_a_hanging_query_a_healthy_one_waits_for_a_slot_and_then_answers() {
    let Some(prometheus) = prometheus().await else { return };
    let proxy = Proxy::hanging(&prometheus.url, SLOW);
    let source = Arc::new(client(&proxy.url));
    let slots = trimtab::metrics::DEFAULT_MAX_CONCURRENCY;

    // As many distinct hanging queries as there are slots (16 policies reading the slow endpoint).
    let hanging: Vec<String> = (0..slots).map(|n| format!("{SLOW} * {n}")).collect();
    let started = Instant::now();
    let stuck = tokio::spawn({
        let source = source.clone();
        async move { timed(&source, &hanging).await }
    });
    proxy.wait_until_holding(slots, READY_DEADLINE).await; // every slot is taken
    let late = timed(&source, &[healthy(0)]).await;
    let answered = started.elapsed();
    let (_, outcome, took) = &late[0];
    let stuck = stuck.await.expect("the hanging queries' task");
    assert!(stuck.iter().all(|(_, o, _)| *o == QueryOutcome::Sample(Sample::Absent(Absence::Timeout))), "{stuck:?}");
    assert!(value(outcome).is_some(), "answered once a slot was free: {outcome:?}");
    let first_free = stuck.iter().map(|r| r.2).min().unwrap_or_default();
    assert!(answered >= first_free, "answered at {answered:?}, before any slot was free ({first_free:?})");
    eprintln!(
        "R5: {slots} hanging queries hold every slot; a healthy query sent once they were all in flight answered after {took:?} (the first \
         slot freed at {first_free:?})"
    );
}
