//! `trimtab run`: the operator. Flags (and environment variables) are the admin's settings: where
//! Prometheus is and how to authenticate to it, the metrics address, leader election.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::controller::caches::Caches;
use crate::controller::{self, Context, Telemetry};
use crate::leases::{Elector, Ownership, lease_name};
use crate::metrics::{PrometheusClient, PrometheusSettings};

/// Where Prometheus is and how to reach it: the admin's settings, shared by `run` and `check`.
#[derive(clap::Args, Debug, Clone)]
pub struct PrometheusArgs {
    /// The Prometheus the objectives are read from.
    #[arg(long, env = "PROMETHEUS_URL")]
    pub prometheus_url: String,
    /// How long one Prometheus query may take.
    #[arg(long, env = "PROMETHEUS_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub prometheus_timeout: Duration,
    /// A value whose query reads a series not written for longer than this is Stale. Keep it above
    /// the longest scrape interval or relay delay and below Prometheus's lookback delta (5m).
    #[arg(long, env = "PROMETHEUS_STALENESS", default_value = "2m", value_parser = parse_duration)]
    pub prometheus_staleness: Duration,
    /// A file holding a bearer token (mounted from a Secret).
    #[arg(long, env = "PROMETHEUS_BEARER_TOKEN_FILE")]
    pub prometheus_bearer_token_file: Option<PathBuf>,
    /// The basic-auth username.
    #[arg(long, env = "PROMETHEUS_USERNAME")]
    pub prometheus_username: Option<String>,
    /// A file holding the basic-auth password (mounted from a Secret).
    #[arg(long, env = "PROMETHEUS_PASSWORD_FILE")]
    pub prometheus_password_file: Option<PathBuf>,
    /// A PEM file with the CA that signed Prometheus's certificate.
    #[arg(long, env = "PROMETHEUS_CA_FILE")]
    pub prometheus_ca_file: Option<PathBuf>,
    /// An answer longer than this many bytes is not read (the objective has no value this round).
    #[arg(long, env = "PROMETHEUS_MAX_RESPONSE_BYTES", default_value_t = crate::metrics::DEFAULT_MAX_RESPONSE_BYTES)]
    pub prometheus_max_response_bytes: usize,
    /// Prometheus queries in flight at once, over all policies.
    #[arg(long, env = "PROMETHEUS_MAX_CONCURRENCY", default_value_t = crate::metrics::DEFAULT_MAX_CONCURRENCY)]
    pub prometheus_max_concurrency: usize,
    /// A header sent with every request, as NAME=VALUE (repeatable): the tenant of Mimir, Cortex
    /// or Thanos (X-Scope-OrgID=team-a), say.
    #[arg(long = "prometheus-header", value_name = "NAME=VALUE", value_parser = parse_header)]
    pub prometheus_headers: Vec<(String, String)>,
}

/// Which series a policy's queries may read: the admin's setting, shared by `run` and `check`.
#[derive(clap::Args, Debug, Clone)]
pub struct TenancyArgs {
    /// Confine every query a policy writes to the policy's namespace: each selector gets
    /// LABEL="<namespace>", and a policy whose query selects another value of LABEL (or !=, or a
    /// regex) is PolicyInvalid. Off when not given. The label is usually `namespace`.
    #[arg(long, env = "TRIMTAB_ENFORCE_NAMESPACE_LABEL", value_name = "LABEL", value_parser = parse_label)]
    pub enforce_namespace_label: Option<String>,
}

impl TenancyArgs {
    pub fn tenancy(&self) -> crate::metrics::tenancy::Tenancy {
        crate::metrics::tenancy::Tenancy::new(self.enforce_namespace_label.clone())
    }
}

/// `NAME=VALUE`, a valid HTTP header.
fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text.split_once('=').ok_or("write NAME=VALUE, such as X-Scope-OrgID=team-a")?;
    let name = name.trim();
    reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("{name:?} is not an HTTP header name"))?;
    reqwest::header::HeaderValue::from_str(value).map_err(|_| format!("the value of {name} is not a valid HTTP header value"))?;
    Ok((name.to_owned(), value.to_owned()))
}

/// A Prometheus label name (`namespace`, `kubernetes_namespace`).
fn parse_label(text: &str) -> Result<String, String> {
    let mut chars = text.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !text.starts_with("__");
    if valid { Ok(text.to_owned()) } else { Err(format!("{text:?} is not a label name (such as namespace)")) }
}

impl PrometheusArgs {
    pub fn settings(&self) -> PrometheusSettings {
        PrometheusSettings {
            url: self.prometheus_url.clone(),
            timeout: self.prometheus_timeout,
            staleness: self.prometheus_staleness,
            bearer_token_file: self.prometheus_bearer_token_file.clone(),
            username: self.prometheus_username.clone(),
            password_file: self.prometheus_password_file.clone(),
            ca_file: self.prometheus_ca_file.clone(),
            max_response_bytes: self.prometheus_max_response_bytes,
            max_concurrency: self.prometheus_max_concurrency,
            headers: self.prometheus_headers.clone(),
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub prometheus: PrometheusArgs,
    #[command(flatten)]
    pub tenancy: TenancyArgs,
    /// Logs as JSON lines (for log pipelines) or as text (for people).
    #[arg(long, env = "TRIMTAB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Reconcile ScalingPolicies in this namespace only (the chart's namespaced mode); all when empty.
    #[arg(long, env = "WATCH_NAMESPACE", default_value = "")]
    pub namespace: String,
    /// Where /metrics, /healthz and /readyz are served.
    #[arg(long, env = "TRIMTAB_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Also serve /healthz and /readyz here, for probes on a port of their own (they stay on the
    /// metrics address too).
    #[arg(long, env = "TRIMTAB_HEALTH_ADDR")]
    pub health_addr: Option<SocketAddr>,
    /// Run only while holding a Lease, so that two replicas never both act.
    #[arg(long, env = "TRIMTAB_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Policies are split into this many shards, each with its own Lease (`trimtab-shard-<i>`):
    /// every replica reconciles the shards it holds. 1: one leader for all (`trimtab-leader`).
    #[arg(long, env = "TRIMTAB_SHARDS", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub shards: u32,
    /// The namespace of the leader-election Lease (the release namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub leader_election_namespace: String,
    /// Serve the placement webhook (on every replica, leader or not).
    #[arg(long, env = "TRIMTAB_WEBHOOK", default_value_t = true, action = clap::ArgAction::Set)]
    pub webhook: bool,
    /// Where the placement webhook listens (HTTPS, path /mutate-pods).
    #[arg(long, env = "TRIMTAB_WEBHOOK_ADDR", default_value = "0.0.0.0:9443")]
    pub webhook_addr: SocketAddr,
    /// A directory with tls.crt and tls.key (cert-manager). Without it, Trimtab keeps its own CA and
    /// certificate in --webhook-secret-name and publishes the CA to --webhook-configuration-name.
    #[arg(long, env = "TRIMTAB_WEBHOOK_CERT_DIR")]
    pub webhook_cert_dir: Option<PathBuf>,
    /// The Secret (in the leader-election namespace) holding the self-managed webhook certificate.
    #[arg(long, env = "TRIMTAB_WEBHOOK_SECRET", default_value = "trimtab-webhook-tls")]
    pub webhook_secret_name: String,
    /// The webhook Service's name: the certificate is for <name>.<namespace>.svc.
    #[arg(long, env = "TRIMTAB_WEBHOOK_SERVICE", default_value = "trimtab-webhook")]
    pub webhook_service_name: String,
    /// Extra names (DNS or IP) for the self-managed webhook certificate, for an API server that
    /// reaches the webhook by another address (a URL clientConfig).
    #[arg(long = "webhook-cert-san", env = "TRIMTAB_WEBHOOK_CERT_SANS", value_delimiter = ',')]
    pub webhook_cert_sans: Vec<String>,
    /// The MutatingWebhookConfiguration whose caBundle Trimtab keeps current.
    #[arg(long, env = "TRIMTAB_WEBHOOK_CONFIGURATION", default_value = "trimtab")]
    pub webhook_configuration_name: String,
    /// This replica's identity (the pod name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("Prometheus settings: {0}")]
    Settings(#[from] crate::metrics::SettingsError),
    #[error("cannot connect to Kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("--shards {0} needs --leader-elect=true: without Leases every replica would reconcile every shard")]
    ShardsWithoutElection(u32),
    #[error("cannot serve metrics on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("webhook certificate: {0}")]
    Certificate(#[from] crate::placement::certs::CertError),
    #[error("webhook: {0}")]
    Webhook(#[from] crate::placement::webhook::WebhookError),
    #[error("webhook certificate: {0}")]
    Tls(#[from] crate::placement::tls::TlsError),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("caches: {0}")]
    Caches(#[from] crate::controller::caches::CacheError),
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bounds = crate::api::DurationBounds { min: Duration::from_millis(1), max: Duration::from_secs(86_400) };
    crate::api::parse_duration(text, bounds).map_err(|e| e.to_string())
}

pub fn run(args: RunArgs) -> Result<(), RunError> {
    // One rustls crypto provider for kube and reqwest; a second install is a no-op.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,kube=warn".into());
    match args.log_format {
        LogFormat::Json => tracing_subscriber::fmt().json().with_env_filter(filter).init(),
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(RunError::Runtime)?;
    runtime.block_on(serve(args))
}

async fn serve(args: RunArgs) -> Result<(), RunError> {
    if args.shards > 1 && !args.leader_elect {
        return Err(RunError::ShardsWithoutElection(args.shards));
    }
    let metrics = PrometheusClient::new(args.prometheus.settings())?;
    let client = kube::Client::try_default().await?;
    let telemetry = Arc::new(Telemetry::default());

    serve_http(args.metrics_addr, controller::telemetry::router(telemetry.clone()), "metrics").await?;
    if let Some(addr) = args.health_addr {
        serve_http(addr, controller::telemetry::health_router(telemetry.clone()), "health").await?;
    }
    tracing::info!(
        addr = %args.metrics_addr,
        prometheus = %args.prometheus.prometheus_url,
        enforce_namespace_label = args.tenancy.enforce_namespace_label.as_deref().unwrap_or(""),
        "trimtab started"
    );

    // One watch per kind for the whole process: the webhook (every replica) and the controller (the
    // leader) read the same caches, and a standby takes over with them warm.
    let watched = (!args.namespace.is_empty()).then(|| args.namespace.clone());
    let caches = Caches::start(&client, watched.as_deref()).await?;
    if args.webhook {
        start_webhook(&args, &client, &caches, telemetry.clone()).await?;
    }

    let _ = telemetry.policies.set(caches.policies.clone());

    let identity = args.identity.clone().unwrap_or_else(|| format!("trimtab-{}", std::process::id()));
    let ownership = Arc::new(if args.leader_elect { Ownership::elected(args.shards) } else { Ownership::unelected() });
    let mut ctx = Context::new(
        client.clone(),
        Arc::new(metrics),
        telemetry.clone(),
        Some(identity.clone()),
        watched.clone(),
        caches,
        ownership.clone(),
    );
    ctx.tenancy = args.tenancy.tenancy();
    let ctx = Arc::new(ctx);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut stop_rx = stop_rx.clone();
        async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        }
    };

    // The controller runs on every replica and reconciles the shards the elector grants. On a
    // signal the elector stops the writes and releases the Leases first, so that the next holder
    // takes over at once, while the controller finishes its rounds (their writes refused).
    let elector = args.leader_elect.then(|| {
        let names = (0..args.shards).map(|shard| lease_name(args.shards, shard, watched.as_deref())).collect();
        tracing::info!(identity, shards = args.shards, lease_namespace = %args.leader_election_namespace, "electing");
        let leases = kube::Api::namespaced(client.clone(), &args.leader_election_namespace);
        tokio::spawn(Elector::new(leases, identity.clone(), names, ownership).run(stopped()))
    });
    controller::run(ctx, stopped()).await;
    if let Some(elector) = elector {
        let _ = tokio::time::timeout(Duration::from_secs(5), elector).await;
    }
    Ok(())
}

/// Binds `addr` now (so a taken port fails the start), then serves `router` in the background.
async fn serve_http(addr: SocketAddr, router: axum::Router, what: &'static str) -> Result<(), RunError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| RunError::Listen { addr, source })?;
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, server = what, "HTTP server stopped");
        }
    });
    Ok(())
}

/// Caches of policies, placed pods and pools for the webhook, and its TLS server, whose certificate
/// is reloaded when cert-manager rewrites the files, or renewed before it expires when self-managed.
async fn start_webhook(
    args: &RunArgs,
    client: &kube::Client,
    caches: &Caches,
    telemetry: Arc<Telemetry>,
) -> Result<(), RunError> {
    use crate::placement::{certs, tls, webhook};

    let namespace = &args.leader_election_namespace;
    let expiry = telemetry.webhook_certificate_expiry.clone();
    let keys = match &args.webhook_cert_dir {
        Some(dir) => {
            let keys = tls::ServingKeys::new(&certs::from_dir(dir)?, expiry)?;
            tls::watch_dir(dir.clone(), keys.clone(), tls::FILE_POLL);
            keys
        }
        None => {
            let service = &args.webhook_service_name;
            let names = vec![
                format!("{service}.{namespace}.svc"),
                format!("{service}.{namespace}.svc.cluster.local"),
                "localhost".to_owned(),
            ];
            let cert = certs::ensure(client, namespace, &args.webhook_secret_name, &names, jiff::Timestamp::now()).await?;
            certs::publish_ca_bundle(client, &args.webhook_configuration_name, &cert.ca_pem).await?;
            let keys = tls::ServingKeys::new(&cert, expiry)?;
            let managed = tls::SelfManaged {
                client: client.clone(),
                namespace: namespace.clone(),
                secret_name: args.webhook_secret_name.clone(),
                names,
                configuration: args.webhook_configuration_name.clone(),
            };
            tls::renew_self_managed(managed, keys.clone(), tls::renewal_check());
            keys
        }
    };
    let state = Arc::new(webhook::WebhookState::new(caches.clone(), telemetry));
    webhook::serve(args.webhook_addr, keys, state).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_flag_is_a_name_and_a_value() {
        assert_eq!(parse_header("X-Scope-OrgID=team-a"), Ok(("X-Scope-OrgID".into(), "team-a".into())));
        assert_eq!(parse_header("X-Token=a=b"), Ok(("X-Token".into(), "a=b".into())), "the value may hold =");
        assert!(parse_header("X-Scope-OrgID").is_err());
        assert!(parse_header("Bad Name=v").is_err());
        assert!(parse_header("X-A=line\nbreak").is_err());
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn run_takes_repeated_headers_and_the_enforced_label() {
        use clap::Parser;
        let cli = Cli::try_parse_from([
            "trimtab",
            "--prometheus-url=http://p:9090",
            "--prometheus-header",
            "X-Scope-OrgID=team-a",
            "--prometheus-header=X-Extra=1",
            "--enforce-namespace-label",
            "namespace",
        ])
        .expect("parses");
        let headers = cli.run.prometheus.settings().headers;
        assert_eq!(headers, [("X-Scope-OrgID".to_owned(), "team-a".to_owned()), ("X-Extra".to_owned(), "1".to_owned())]);
        assert_eq!(cli.run.tenancy.tenancy().namespace_label.as_deref(), Some("namespace"));
        let off = Cli::try_parse_from(["trimtab", "--prometheus-url=http://p:9090"]).expect("parses");
        assert_eq!(off.run.tenancy.tenancy(), crate::metrics::tenancy::Tenancy::default(), "off by default");
    }

    #[test]
    fn the_enforced_label_is_a_label_name() {
        assert_eq!(parse_label("namespace"), Ok("namespace".into()));
        assert_eq!(parse_label("kubernetes_namespace"), Ok("kubernetes_namespace".into()));
        for bad in ["", "name-space", "1ns", "__name__"] {
            assert!(parse_label(bad).is_err(), "{bad:?}");
        }
    }
}
