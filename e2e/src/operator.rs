//! The operator under test, as a process beside the cluster, watching one test namespace.
//!
//! When `just e2e` installed the Helm chart (OPERATOR_KUBECONFIG holds a token of the chart's
//! ServiceAccount), the operator runs with exactly the chart's RBAC and holds its Lease in the
//! chart's namespace (E2E_OPERATOR_NAMESPACE). Placement scenarios, which bring their own webhook
//! configuration, run it as the cluster admin.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running `trimtab run`; killed when dropped.
pub struct Operator {
    child: Child,
    pub log: PathBuf,
    /// Where it serves /metrics.
    metrics_port: u16,
    /// The kubeconfig pointing at its API proxy, removed when it is dropped.
    proxied_kubeconfig: Option<PathBuf>,
}

impl Operator {
    /// Starts `trimtab run` for `namespace`, reading objectives from `prometheus_url`, without the
    /// placement webhook.
    pub fn start(namespace: &str, prometheus_url: &str) -> Operator {
        Self::start_with(namespace, prometheus_url, &[])
    }

    /// Where the operator for `namespace` holds its Lease (`trimtab-leader-<namespace>`).
    pub fn lease_namespace(namespace: &str) -> String {
        match (std::env::var("OPERATOR_KUBECONFIG"), std::env::var("E2E_OPERATOR_NAMESPACE")) {
            (Ok(_), Ok(chart_namespace)) => chart_namespace,
            _ => namespace.to_owned(),
        }
    }

    /// Starts `trimtab run` with extra flags; the webhook is served when they give `--webhook-addr`.
    pub fn start_with(namespace: &str, prometheus_url: &str, extra: &[&str]) -> Operator {
        Self::start_full(namespace, prometheus_url, extra, None, None, &[])
    }

    /// Starts `trimtab run` reaching the API server through `api_proxy` (a loopback address, see
    /// [`crate::proxy::CuttableProxy::start_tcp`]) instead of directly.
    pub fn start_through(namespace: &str, prometheus_url: &str, extra: &[&str], api_proxy: &str) -> Operator {
        Self::start_full(namespace, prometheus_url, extra, Some(api_proxy), None, &[])
    }

    /// The kubeconfig the operator runs with: the chart's ServiceAccount's, or the admin's.
    pub fn kubeconfig() -> PathBuf {
        std::env::var("OPERATOR_KUBECONFIG")
            .or_else(|_| std::env::var("KUBECONFIG"))
            .map(PathBuf::from)
            .expect("KUBECONFIG is set")
    }

    /// The API server's `host:port`, from [`Operator::kubeconfig`].
    pub fn api_server() -> std::net::SocketAddr {
        let text = std::fs::read_to_string(Self::kubeconfig()).expect("read the kubeconfig");
        let server = text.lines().find_map(|l| l.trim().strip_prefix("server:")).expect("a server in the kubeconfig");
        server.trim().trim_matches('"').trim_start_matches("https://").parse().expect("the server is https://IP:PORT")
    }

    /// Starts `trimtab run` reaching the API server as `kubeconfig` says (through a proxy, say)
    /// instead of the test's own KUBECONFIG or the chart's identity.
    pub fn start_via(namespace: &str, prometheus_url: &str, kubeconfig: Option<&std::path::Path>, extra: &[&str]) -> Operator {
        Self::start_full(namespace, prometheus_url, extra, None, kubeconfig, &[])
    }

    /// Starts `trimtab run` with extra flags and environment variables (a failpoint, say).
    pub fn start_with_env(namespace: &str, prometheus_url: &str, extra: &[&str], env: &[(&str, &str)]) -> Operator {
        Self::start_full(namespace, prometheus_url, extra, None, None, env)
    }

    fn start_full(
        namespace: &str,
        prometheus_url: &str,
        extra: &[&str],
        api_proxy: Option<&str>,
        kubeconfig: Option<&std::path::Path>,
        env: &[(&str, &str)],
    ) -> Operator {
        let webhook = extra.contains(&"--webhook-addr");
        let chart_identity = match kubeconfig {
            Some(path) => Some(path.display().to_string()),
            None => std::env::var("OPERATOR_KUBECONFIG").ok().filter(|_| !webhook),
        };
        let lease_namespace = if kubeconfig.is_none() && chart_identity.is_some() {
            Self::lease_namespace(namespace)
        } else {
            namespace.to_owned()
        };
        let binary =
            std::env::var("TRIMTAB_BIN").map(PathBuf::from).unwrap_or_else(|_| crate::repo_root().join("target/debug/trimtab"));
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = std::env::temp_dir().join(format!("trimtab-e2e-operator-{namespace}-{n}.log"));
        let log_file = std::fs::File::create(&log).expect("create the operator log");
        let mut command = Command::new(&binary);
        if let Some(kubeconfig) = &chart_identity {
            command.env("KUBECONFIG", kubeconfig);
        }
        let mut proxied_kubeconfig = None;
        if let Some(proxy) = api_proxy {
            // The same credentials, another address: the certificate is for 127.0.0.1, any port.
            let text = std::fs::read_to_string(Self::kubeconfig()).expect("read the kubeconfig");
            let text = text.replace(&Self::api_server().to_string(), proxy.trim_start_matches("http://"));
            let path = std::env::temp_dir().join(format!("trimtab-e2e-kubeconfig-{namespace}-{n}"));
            std::fs::write(&path, text).expect("write the proxied kubeconfig");
            command.env("KUBECONFIG", &path);
            proxied_kubeconfig = Some(path);
        }
        let metrics_port = crate::placement::free_port();
        let metrics_addr = format!("127.0.0.1:{metrics_port}");
        let child = command
            .args(["run", "--namespace", namespace, "--prometheus-url", prometheus_url, "--metrics-addr", &metrics_addr])
            .args(["--prometheus-timeout", "2s", "--leader-election-namespace", &lease_namespace])
            .args(["--webhook", if webhook { "true" } else { "false" }])
            .args(extra)
            .env("RUST_LOG", "info,kube=warn")
            .envs(env.iter().copied())
            .stdout(Stdio::from(log_file.try_clone().expect("clone the log handle")))
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} (build it with cargo build -p trimtab): {e}", binary.display()));
        Operator { child, log, metrics_port, proxied_kubeconfig }
    }

    /// Its /metrics, or `None` while it does not answer.
    pub async fn scrape(&self) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.metrics_port)).await.ok()?;
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").await.ok()?;
        let mut body = String::new();
        stream.read_to_string(&mut body).await.ok()?;
        Some(body)
    }

    /// The value of one series (`name{labels}` exactly as exposed), if exposed.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let body = self.scrape().await?;
        body.lines()
            .find_map(|line| line.strip_prefix(series).filter(|rest| rest.starts_with(' ')))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Whether it holds shard `shard` (`trimtab_shard_owned`).
    pub async fn owns_shard(&self, shard: u32) -> bool {
        self.metric(&format!("trimtab_shard_owned{{shard=\"{shard}\"}}")).await == Some(1.0)
    }

    /// Stops it as Kubernetes does (SIGTERM), and waits for it to exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }

    /// Where it serves /metrics, as `host:port`.
    pub fn metrics_addr(&self) -> String {
        format!("127.0.0.1:{}", self.metrics_port)
    }

    /// When this operator's newest round for policy `namespace/name` decided (Unix seconds), from
    /// its `trimtab_last_decision_timestamp_seconds`; none before its first round. A quiet round
    /// writes no status, so this, not status, says that rounds go on.
    pub async fn last_decision(&self, namespace: &str, name: &str) -> Option<i64> {
        let series = format!("trimtab_last_decision_timestamp_seconds{{namespace=\"{namespace}\",policy=\"{name}\"}}");
        self.metric(&series).await.map(|v| v as i64)
    }

    /// Waits up to `timeout` for the process to exit by itself; whether it did.
    pub async fn exited_within(&mut self, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        false
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the process at once (SIGKILL): no graceful shutdown, no lease release.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The operator's log so far, for failure dumps.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("==== operator log ({}) ====\n{}", self.log.display(), self.log_text());
        }
        let _ = std::fs::remove_file(&self.log);
        if let Some(path) = &self.proxied_kubeconfig {
            let _ = std::fs::remove_file(path);
        }
    }
}
