//! `trimtab run`: the operator. Flags (and environment variables) are the admin's settings: where
//! Prometheus is and how to authenticate to it, the metrics address, leader election.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube_lease_manager::LeaseManagerBuilder;

use crate::controller::caches::Caches;
use crate::controller::{self, Context, Telemetry};
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
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub prometheus: PrometheusArgs,
    /// Logs as JSON lines (for log pipelines) or as text (for people).
    #[arg(long, env = "TRIMTAB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Reconcile ScalingPolicies in this namespace only (the chart's namespaced mode); all when empty.
    #[arg(long, env = "WATCH_NAMESPACE", default_value = "")]
    pub namespace: String,
    /// Where /metrics, /healthz and /readyz are served.
    #[arg(long, env = "TRIMTAB_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Run only while holding a Lease, so that two replicas never both act.
    #[arg(long, env = "TRIMTAB_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
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
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
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
    let metrics = PrometheusClient::new(args.prometheus.settings())?;
    let client = kube::Client::try_default().await?;
    let telemetry = Arc::new(Telemetry::default());

    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .map_err(|source| RunError::Listen { addr: args.metrics_addr, source })?;
    let router = controller::telemetry::router(telemetry.clone());
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "metrics server stopped");
        }
    });
    tracing::info!(addr = %args.metrics_addr, prometheus = %args.prometheus.prometheus_url, "trimtab started");

    // One watch per kind for the whole process: the webhook (every replica) and the controller (the
    // leader) read the same caches, and a standby takes over with them warm.
    let watched = (!args.namespace.is_empty()).then(|| args.namespace.clone());
    let caches = Caches::start(&client, watched.as_deref()).await?;
    if args.webhook {
        start_webhook(&args, &client, &caches, &telemetry).await?;
    }

    let _ = telemetry.policies.set(caches.policies.clone());

    let identity = args.identity.clone().unwrap_or_else(|| format!("trimtab-{}", std::process::id()));
    let ctx =
        Arc::new(Context::new(client.clone(), Arc::new(metrics), telemetry.clone(), Some(identity.clone()), watched, caches));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
    });
    let stopped = {
        let mut stop_rx = stop_rx.clone();
        async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        }
    };

    if !args.leader_elect {
        controller::run(ctx, stopped).await;
        return Ok(());
    }
    let lease =
        if args.namespace.is_empty() { "trimtab-leader".to_owned() } else { format!("trimtab-leader-{}", args.namespace) };
    let manager = LeaseManagerBuilder::new(client, lease)
        .with_namespace(&args.leader_election_namespace)
        .with_identity(&identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await?;
    let (mut leader, lease_task) = manager.watch().await;
    tracing::info!(identity, "waiting for the leader lease");
    let mut stop_wait = stop_rx.clone();
    tokio::select! {
        _ = leader.wait_for(|is_leader| *is_leader) => {}
        _ = stop_wait.wait_for(|stop| *stop) => return Ok(()),
    }
    tracing::info!(identity, "became the leader");
    // Stop on a signal, or as soon as the lease is lost: another replica takes over.
    let mut lost = leader.clone();
    let shutdown = async move {
        tokio::select! {
            _ = stopped => {}
            _ = lost.wait_for(|is_leader| !*is_leader) => tracing::warn!("lost the leader lease"),
        }
    };
    controller::run(ctx, shutdown).await;
    drop(leader); // closing the channel releases the lease
    let _ = tokio::time::timeout(Duration::from_secs(5), lease_task).await;
    Ok(())
}

/// Caches of policies, placed pods and pools for the webhook, and its TLS server, whose certificate
/// is reloaded when cert-manager rewrites the files, or renewed before it expires when self-managed.
async fn start_webhook(args: &RunArgs, client: &kube::Client, caches: &Caches, telemetry: &Telemetry) -> Result<(), RunError> {
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
            tls::renew_self_managed(managed, keys.clone(), tls::RENEWAL_CHECK);
            keys
        }
    };
    let state = std::sync::Arc::new(webhook::WebhookState::new(caches.clone()));
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
