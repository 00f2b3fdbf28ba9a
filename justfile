# The developer interface. `just --list` shows every recipe.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Everything CI checks: formatting, lints, unit and component tests, then the end-to-end suite.
test: fmt-check lint workflow-lint unit chart-lint e2e

# Unit, property and drift tests (no cluster needed).
unit:
    cargo test --workspace --all-targets --locked

# Wide random exploration, not part of `test`: every property test and the input fuzzers (situations,
# Prometheus answers, AdmissionReviews: tests/fuzz_inputs.rs) on a random seed (printed first;
# set PROPTEST_RNG_SEED to replay one) with many more cases. Failures are saved to the
# *.proptest-regressions files beside the tests: commit them, and `test` replays them forever.
fuzz cases="50000":
    seed="${PROPTEST_RNG_SEED:-$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}"; \
    echo "fuzz: PROPTEST_RNG_SEED=$seed PROPTEST_CASES={{cases}}"; \
    PROPTEST_RNG_SEED="$seed" PROPTEST_CASES={{cases}} cargo test --release --locked -p trimtab --test properties --test hpa_timelines --test fuzz_inputs

# Clippy on everything, warnings are errors; then the pure core built alone, on its own features:
# a workspace build unifies kube's features, which would let the core name kube's client.
lint:
    cargo clippy --workspace --all-targets --locked -- -D warnings
    cargo clippy -p trimtab-core --all-targets --locked -- -D warnings

fmt:
    cargo fmt --all

fmt-check:
    cargo fmt --all -- --check

# Regenerate the CRDs in crds/ and charts/trimtab/crds/ from the Rust types.
crds:
    cargo run --quiet --locked -p trimtab -- crd > crds/trimtab.dev.yaml
    mkdir -p charts/trimtab/crds && cp crds/trimtab.dev.yaml charts/trimtab/crds/trimtab.dev.yaml

# The simulator on a bundled trace: what Trimtab would have done on a day of NASA's web traffic
# (each logged request standing for 300), beside HPA and static provisioning.
demo out="target/demo":
    cargo run --quiet --release --locked -p trimtab -- simulate --policy examples/simulate/web-service.yaml --trace traces/nasa-1995-per-minute.csv --scale 300 --start 1440 --minutes 1440 --baseline hpa --baseline static --baseline oracle --out {{out}}
    @echo "report: {{out}}/report.svg  summary: {{out}}/summary.json  timeline: {{out}}/timeline.csv"

# Criterion benchmark of one decision.
bench:
    cargo bench --locked -p trimtab --bench decide

# Build (once, cached outside the repo) the Kubernetes, etcd, kwok, helm and kubeconform binaries.
tools:
    bash e2e/cluster/tools.sh

# The directory holding the cached tool binaries.
tools-path:
    @bash e2e/cluster/tools.sh --print-path

# A local control plane with six kwok nodes (three spot, three on-demand) and Prometheus.
cluster-up:
    bash e2e/cluster/up.sh

cluster-down:
    bash e2e/cluster/down.sh

kubeconfig:
    @bash e2e/cluster/kubeconfig.sh

prometheus-url:
    @bash e2e/cluster/prometheus-url.sh

# End-to-end scenarios against KUBECONFIG and PROMETHEUS_URL, or a local cluster brought up (and down) for them;
# arguments pick scenarios as cargo test does (`just e2e --test alerts`).
e2e *args:
    bash e2e/run.sh {{args}}

# The GitHub workflows (actionlint) and the release's version check (crate, chart, CHANGELOG agree).
workflow-lint:
    bash scripts/lint-workflows.sh

# The Helm chart: helm lint, kubeconform on every rendering (Kubernetes 1.36 schemas, our CRDs), the RBAC and Pod Security test.
chart-lint:
    bash e2e/chart/check.sh

# The chart installed, upgraded and uninstalled on the cluster in KUBECONFIG (or the local one).
chart-install-check:
    bash e2e/chart/install.sh lifecycle

# The soak (not part of `test`): policies created and deleted every few seconds for SOAK_MINUTES
# (30) on a cluster of its own; prints RSS and per-policy metric series over time.
soak:
    bash scripts/soak.sh

# The autoscaling-quality benchmark: the example policies over a busy week of WorldCup98 and NASA,
# held-out weeks and synthetic load shapes, against HPA, static provisioning and the oracle.
bench-quality out="target/bench-quality":
    bash scripts/bench-quality.sh {{out}}

# The settings sweeps of docs/simulate.md: web-service.yaml with fields changed, on the benchmark
# weeks, seed 1 (`--help` for the flags): `just bench-quality-sweep shipped noiseMargin=0.6`.
bench-quality-sweep +settings:
    bash scripts/bench-quality-sweep.sh {{settings}}

# How much of the oracle's lead is foresight: per quality week, the cheapest controller that sees
# only the past (fitted in hindsight, no churn limit) at HPA's and the policy's SLO minutes.
bench-causal-limit *args:
    bash scripts/bench-causal-limit.sh {{args}}

# The scale benchmark: N Deployments and ScalingPolicies over NAMESPACES on the local cluster,
# REPLICAS release operators with SHARDS shards; prints RSS, CPU, the share evaluated on time, API and Prometheus request rates.
bench-scale n="1000" namespaces="1" replicas="1" shards="1":
    bash scripts/bench-scale.sh {{n}} {{namespaces}} {{replicas}} {{shards}}
