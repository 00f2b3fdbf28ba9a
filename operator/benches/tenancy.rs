//! What confining tenants' queries costs a round: 1,000 policies, each with a latency and a rate
//! query of its own, confined to its namespace (`--enforce-namespace-label namespace`). Parsed and
//! re-printed every round (`confine`), against the text kept from the round before
//! (`Tenancy::query`). `cargo bench -p trimtab --bench tenancy`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use trimtab::metrics::tenancy::{Tenancy, confine};

fn queries() -> Vec<(String, String)> {
    (0..1_000)
        .flat_map(|i| {
            let namespace = format!("team-{}", i % 100);
            [
                format!(
                    r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{app="svc-{i}"}}[2m])))"#
                ),
                format!(r#"sum(rate(http_requests_total{{app="svc-{i}",code!~"5.."}}[2m]))"#),
            ]
            .map(|query| (query, namespace.clone()))
        })
        .collect()
}

fn bench_tenancy(c: &mut Criterion) {
    let queries = queries();
    let tenancy = Tenancy::new(Some("namespace".into()));
    let mut group = c.benchmark_group("confine 2,000 queries (one round of 1,000 policies)");
    group.bench_function("parsed and re-printed", |b| {
        b.iter(|| {
            for (query, namespace) in &queries {
                black_box(confine(query, "namespace", namespace).ok());
            }
        })
    });
    group.bench_function("kept from the round before", |b| {
        b.iter(|| {
            for (query, namespace) in &queries {
                black_box(tenancy.query(query, namespace).ok());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_tenancy);
criterion_main!(benches);
