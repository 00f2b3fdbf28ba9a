//! What each stack a recipe reads exports for one pod's requests, with the label names, units and
//! bucket bounds the real exporter uses, and the target labels a standard Kubernetes scrape adds
//! (`namespace`, `pod`: the scraped pod's), as the series land in Prometheus.
//!
//! Every family here is a client-library family: a label set (a status code, an outcome, a failure
//! classification) exists only once a request has had it.

use trimtab::sim::service_model::ServiceState;

use super::registry::{Kind, Labels, Registry};

/// client_golang's `prometheus.DefBuckets` (seconds): promhttp and ingress-nginx use them.
const GO_DEFAULT_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Istio's default buckets for `istio_request_duration_milliseconds` (milliseconds).
const ISTIO_BUCKETS_MS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0, 300000.0, 600000.0,
    1800000.0, 3600000.0,
];
/// linkerd2-proxy's `response_latency_ms` buckets (milliseconds).
const LINKERD_BUCKETS_MS: [f64; 25] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0, 1000.0, 2000.0, 3000.0, 4000.0,
    5000.0, 10000.0, 20000.0, 30000.0, 40000.0, 50000.0,
];
/// The OpenTelemetry semantic conventions' advice for `http.server.request.duration` (seconds).
const OTEL_BUCKETS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/// Micrometer's percentile-histogram buckets for a timer, clipped to Spring Boot's defaults for
/// `http.server.requests` (1 ms to 30 s), in seconds: Micrometer's own generator (powers of 4 in
/// nanoseconds, each split in three).
fn micrometer_buckets() -> Vec<f64> {
    let mut nanos: Vec<u64> = vec![1, 2, 3];
    let mut exp = 2;
    while exp < 62 {
        let mut current = 1u64 << exp;
        let delta = current / 3;
        let next = (current << 2) - delta;
        while current < next {
            nanos.push(current);
            current += delta;
        }
        exp += 2;
    }
    nanos.into_iter().filter(|n| (1_000_000..=30_000_000_000).contains(n)).map(|n| n as f64 / 1e9).collect()
}

pub fn declare(registry: &mut Registry) {
    use Kind::*;
    let micrometer = micrometer_buckets();
    let families: [(&'static str, &'static str, Kind, &[f64]); 18] = [
        // The app itself, instrumented with client_golang's promhttp (the existing examples).
        ("http_requests_total", "Total number of HTTP requests by status code and method.", Counter, &[]),
        ("http_request_duration_seconds", "A histogram of latencies for requests.", Histogram, &GO_DEFAULT_BUCKETS),
        // ingress-nginx's controller (client_golang; note: no _total on the counter).
        ("nginx_ingress_controller_requests", "The total number of client requests", Counter, &[]),
        (
            "nginx_ingress_controller_request_duration_seconds",
            "The request processing time in seconds",
            Histogram,
            &GO_DEFAULT_BUCKETS,
        ),
        // Istio's sidecars (standard metrics, telemetry v2).
        ("istio_requests_total", "Total requests.", Counter, &[]),
        ("istio_request_duration_milliseconds", "Request duration.", Histogram, &ISTIO_BUCKETS_MS),
        // Linkerd's proxies.
        ("request_total", "Total count of HTTP requests.", Counter, &[]),
        ("response_total", "Total count of HTTP responses.", Counter, &[]),
        (
            "response_latency_ms",
            "Elapsed times between a request's headers being received and its response stream completing",
            Histogram,
            &LINKERD_BUCKETS_MS,
        ),
        // An OpenTelemetry SDK's http.server.request.duration, through the Prometheus translation.
        ("http_server_request_duration_seconds", "Duration of HTTP server requests.", Histogram, &OTEL_BUCKETS),
        // Spring Boot's Micrometer (percentiles-histogram enabled for http.server.requests).
        ("http_server_requests_seconds", "", Histogram, &micrometer),
        ("http_server_requests_seconds_max", "", Gauge, &[]),
        // A queue worker's own counter (the queue-worker example) and danielqsj/kafka-exporter.
        ("queue_messages_consumed_total", "Messages consumed.", Counter, &[]),
        ("kafka_topic_partition_current_offset", "Current Offset of a Broker at Topic/Partition", Gauge, &[]),
        ("kafka_consumergroup_current_offset", "Current Offset of a ConsumerGroup at Topic/Partition", Gauge, &[]),
        ("kafka_consumergroup_lag", "Current Approximate Lag of a ConsumerGroup at Topic/Partition", Gauge, &[]),
        ("kafka_consumergroup_lag_sum", "Current Approximate Lag of a ConsumerGroup at Topic for all partitions", Gauge, &[]),
        ("kafka_consumergroup_members", "Amount of members in a consumer group", Gauge, &[]),
    ];
    for (name, help, kind, bounds) in families {
        registry.declare(name, help, kind, bounds);
    }
}

/// One pod of a web service.
pub struct Pod<'a> {
    pub namespace: &'a str,
    pub app: &'a str,
    pub name: String,
    /// The pod's IP, for Linkerd's target_addr.
    pub ip: String,
}

fn owned(labels: &[(&'static str, &str)]) -> Labels {
    labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

/// `n` requests a pod answered with HTTP `status`, at latencies per `state`, as every HTTP stack
/// records them.
pub fn http(registry: &mut Registry, pod: &Pod<'_>, status: u16, n: u64, state: &ServiceState) {
    if n == 0 {
        return;
    }
    let seconds = |le: f64| state.latency_cdf(le);
    let millis = |le: f64| state.latency_cdf(le / 1000.0);
    let mean = state.mean_latency();
    let code = status.to_string();
    let failed = status >= 500;
    let (ns, app) = (pod.namespace, pod.app);

    // promhttp: lower-case method, status code as code.
    let promhttp = owned(&[("namespace", ns), ("pod", &pod.name), ("app", app), ("code", &code), ("method", "get")]);
    registry.inc("http_requests_total", promhttp.clone(), n);
    registry.observe("http_request_duration_seconds", promhttp, n, seconds, mean);

    // ingress-nginx: scraped from the controller's pod, so Prometheus renames the Ingress's
    // `namespace` to `exported_namespace` (the target's namespace wins); canary is empty (dropped).
    let host = format!("{app}.example.com");
    let controller_pod = "ingress-nginx-controller-5d88495688-xk2vq";
    let nginx = owned(&[
        ("namespace", "ingress-nginx"),
        ("pod", controller_pod),
        ("canary", ""),
        ("controller_class", "k8s.io/ingress-nginx"),
        ("controller_namespace", "ingress-nginx"),
        ("controller_pod", controller_pod),
        ("exported_namespace", ns),
        ("host", &host),
        ("ingress", app),
        ("method", "GET"),
        ("path", "/"),
        ("service", app),
        ("status", &code),
    ]);
    registry.inc("nginx_ingress_controller_requests", nginx.clone(), n);
    registry.observe("nginx_ingress_controller_request_duration_seconds", nginx, n, seconds, mean);

    // Istio: each request is reported by the client's proxy (here the ingress gateway,
    // reporter="source") and by the server's (reporter="destination").
    let service_host = format!("{app}.{ns}.svc.cluster.local");
    let destination_principal = format!("spiffe://cluster.local/ns/{ns}/sa/{app}");
    for (reporter, scraped_namespace, scraped_pod, security) in [
        ("destination", ns, pod.name.as_str(), "mutual_tls"),
        ("source", "istio-system", "istio-ingressgateway-7f9d8c6b5-2kq8j", "unknown"),
    ] {
        let istio = owned(&[
            ("namespace", scraped_namespace),
            ("pod", scraped_pod),
            ("connection_security_policy", security),
            ("destination_app", app),
            ("destination_canonical_revision", "latest"),
            ("destination_canonical_service", app),
            ("destination_cluster", "Kubernetes"),
            ("destination_principal", &destination_principal),
            ("destination_service", &service_host),
            ("destination_service_name", app),
            ("destination_service_namespace", ns),
            ("destination_version", "unknown"),
            ("destination_workload", app),
            ("destination_workload_namespace", ns),
            ("grpc_response_status", ""),
            ("reporter", reporter),
            ("request_protocol", "http"),
            ("response_code", &code),
            ("response_flags", "-"),
            ("source_app", "istio-ingressgateway"),
            ("source_canonical_revision", "latest"),
            ("source_canonical_service", "istio-ingressgateway"),
            ("source_cluster", "Kubernetes"),
            ("source_principal", "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"),
            ("source_version", "unknown"),
            ("source_workload", "istio-ingressgateway"),
            ("source_workload_namespace", "istio-system"),
        ]);
        registry.inc("istio_requests_total", istio.clone(), n);
        registry.observe("istio_request_duration_milliseconds", istio, n, millis, mean * 1000.0);
    }

    // Linkerd: the server's proxy, inbound; linkerd-viz's scrape config adds namespace, pod and
    // the owning deployment. A 5xx is classified as a failure.
    let authority = format!("{service_host}:8080");
    let target_addr = format!("{}:8080", pod.ip);
    let linkerd = |extra: &[(&'static str, &str)]| {
        let mut labels = owned(&[
            ("namespace", ns),
            ("pod", &pod.name),
            ("deployment", app),
            ("pod_template_hash", "6c9f7d5b8"),
            ("control_plane_ns", "linkerd"),
            ("direction", "inbound"),
            ("authority", &authority),
            ("target_addr", &target_addr),
            ("target_ip", &pod.ip),
            ("target_port", "8080"),
            ("tls", "true"),
            ("client_id", "default.ingress-nginx.serviceaccount.identity.linkerd.cluster.local"),
        ]);
        labels.extend(owned(extra));
        labels
    };
    registry.inc("request_total", linkerd(&[]), n);
    let classification = if failed { "failure" } else { "success" };
    registry.inc("response_total", linkerd(&[("status_code", &code), ("classification", classification)]), n);
    registry.observe("response_latency_ms", linkerd(&[("status_code", &code)]), n, millis, mean * 1000.0);

    // OpenTelemetry: semantic-convention attributes with dots as underscores; job and instance
    // from service.namespace/service.name and service.instance.id (Prometheus's OTLP receiver and
    // the Collector's prometheus exporter both map them so). error.type only on errors.
    let job = format!("{ns}/{app}");
    let route = format!("/{app}");
    let mut otel = owned(&[
        ("job", &job),
        ("instance", &pod.name),
        ("http_request_method", "GET"),
        ("http_response_status_code", &code),
        ("http_route", &route),
        ("network_protocol_version", "1.1"),
        ("otel_scope_name", "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"),
        ("url_scheme", "http"),
    ]);
    if failed {
        otel.push(("error_type", code.clone()));
    }
    registry.observe("http_server_request_duration_seconds", otel, n, seconds, mean);

    // Micrometer (Spring Boot 3): the `application` common tag, outcome from the status class, the
    // exception's simple name when one escaped the handler.
    let (outcome, exception) = if failed { ("SERVER_ERROR", "IllegalStateException") } else { ("SUCCESS", "none") };
    let micrometer = owned(&[
        ("namespace", ns),
        ("pod", &pod.name),
        ("application", app),
        ("error", exception),
        ("exception", exception),
        ("method", "GET"),
        ("outcome", outcome),
        ("status", &code),
        ("uri", &route),
    ]);
    registry.observe("http_server_requests_seconds", micrometer.clone(), n, seconds, mean);
    registry.set("http_server_requests_seconds_max", micrometer, state.latency_quantile(0.999));
}

/// A queue worker's pod consuming `n` messages from `queue`.
pub fn consumed(registry: &mut Registry, namespace: &str, pod: &str, queue: &str, n: u64) {
    registry.inc("queue_messages_consumed_total", owned(&[("namespace", namespace), ("pod", pod), ("queue", queue)]), n);
}

/// kafka-exporter's view of one partition of `topic` consumed by `group`: the log end offset, the
/// group's committed offset and their difference. Scraped from the exporter's pod.
pub fn partition(registry: &mut Registry, group: &str, topic: &str, partition: usize, end: u64, committed: u64) {
    let partition = partition.to_string();
    let exporter = [("namespace", "kafka"), ("pod", "kafka-exporter-7c9b6d4f8-p2m7x")];
    let mut topic_labels = owned(&exporter);
    topic_labels.extend(owned(&[("partition", &partition), ("topic", topic)]));
    registry.set("kafka_topic_partition_current_offset", topic_labels, end as f64);
    let mut group_labels = owned(&exporter);
    group_labels.extend(owned(&[("consumergroup", group), ("partition", &partition), ("topic", topic)]));
    registry.set("kafka_consumergroup_current_offset", group_labels.clone(), committed as f64);
    registry.set("kafka_consumergroup_lag", group_labels, end.saturating_sub(committed) as f64);
}

/// kafka-exporter's per-group totals.
pub fn group(registry: &mut Registry, group: &str, topic: &str, lag: u64, members: usize) {
    let mut labels = owned(&[("namespace", "kafka"), ("pod", "kafka-exporter-7c9b6d4f8-p2m7x"), ("consumergroup", group)]);
    registry.set("kafka_consumergroup_members", labels.clone(), members as f64);
    labels.push(("topic", topic.to_owned()));
    registry.set("kafka_consumergroup_lag_sum", labels, lag as f64);
}

#[cfg(test)]
mod tests {
    #[test]
    fn micrometer_buckets_run_from_one_millisecond_to_thirty_seconds_as_micrometer_generates_them() {
        let buckets = super::micrometer_buckets();
        assert_eq!(buckets[..3], [0.001048576, 0.001398101, 0.001747626], "4^10 ns, then thirds of it");
        assert!(buckets.windows(2).all(|w| w[0] < w[1]));
        assert!(*buckets.last().unwrap_or(&0.0) <= 30.0 && buckets.len() > 50, "{buckets:?}");
    }
}
