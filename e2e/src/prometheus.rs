//! A real Prometheus (the `prometheus` binary on PATH) owned by a test: started in a temp dir on a
//! free port, scraping the given targets every [`SCRAPE_INTERVAL`] with honor_labels (the targets write the
//! labels a Kubernetes scrape would have added), stopped and removed when dropped. Without the
//! binary the test is skipped, except under CI=true, where that is a failure.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Every 2s: a [2m] window holds 60 scrapes, and a scrape of several megabytes has time to finish.
pub const SCRAPE_INTERVAL: &str = "2s";

pub struct LocalPrometheus {
    pub url: String,
    child: Child,
    dir: PathBuf,
}

fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("prometheus")).find(|p| p.is_file())
}

/// What a [`LocalPrometheus`] scrapes and evaluates.
pub struct Setup {
    /// The scrape job's name.
    pub job: String,
    /// `host:port` of each target serving /metrics.
    pub targets: Vec<String>,
    /// Scrape (and rule evaluation) interval, as Prometheus writes durations.
    pub interval: String,
    /// Keep the labels the targets write (they write what a Kubernetes scrape would have added).
    pub honor_labels: bool,
    /// A rules file's content, evaluated every interval.
    pub rules: Option<String>,
}

impl LocalPrometheus {
    /// Scrapes `targets` every [`SCRAPE_INTERVAL`] with honor_labels. None when there is no
    /// `prometheus` to run (outside CI: the caller skips).
    pub fn start(name: &str, targets: &[SocketAddr]) -> Option<LocalPrometheus> {
        Self::start_with(Setup {
            job: name.to_owned(),
            targets: targets.iter().map(SocketAddr::to_string).collect(),
            interval: SCRAPE_INTERVAL.to_owned(),
            honor_labels: true,
            rules: None,
        })
    }

    /// Starts Prometheus as `setup` says. None when there is no `prometheus` to run (outside CI).
    pub fn start_with(setup: Setup) -> Option<LocalPrometheus> {
        let _ = rustls::crypto::ring::default_provider().install_default(); // for the queries' client
        let Some(binary) = binary() else {
            // CI installs Prometheus before the tests (.ci/run): there, a missing one is a failure, never a pass.
            assert!(
                std::env::var_os("CI").is_none(),
                "no `prometheus` on PATH in CI (Debian: apt-get install prometheus, or `just tools`)"
            );
            eprintln!("SKIPPED: no `prometheus` on PATH (Debian: apt-get install prometheus, or `just tools`)");
            return None;
        };
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("trimtab-e2e-prometheus-{}-{}-{nanos}", setup.job, std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the temp dir");
        let rule_files = match &setup.rules {
            Some(rules) => {
                std::fs::write(dir.join("rules.yaml"), rules).expect("write the rules");
                format!("rule_files: ['{}']\n", dir.join("rules.yaml").display())
            }
            None => String::new(),
        };
        let targets: Vec<String> = setup.targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: {interval}\n  scrape_timeout: {interval}\n  evaluation_interval: {interval}\n{rule_files}scrape_configs:\n  - job_name: {job}\n    honor_labels: {honor}\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", "),
            interval = setup.interval,
            job = setup.job,
            honor = setup.honor_labels,
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("write the config");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("create the log");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Some(LocalPrometheus { url: format!("http://127.0.0.1:{port}"), child, dir })
    }

    /// The series an instant query answers (each `{"metric": ..., "value": ...}`).
    pub async fn query(&self, query: &str) -> Result<Vec<serde_json::Value>, String> {
        let url = format!("{}/api/v1/query", self.url);
        let body: serde_json::Value = reqwest::Client::new()
            .get(url)
            .query(&[("query", query)])
            .send()
            .await
            .map_err(|e| format!("query: {e}"))?
            .json()
            .await
            .map_err(|e| format!("answer: {e}"))?;
        body["data"]["result"].as_array().cloned().ok_or_else(|| format!("no result in {body}"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// The value of an instant query that returns one series, if it does (and Prometheus answers).
    pub async fn value(&self, query: &str) -> Option<f64> {
        match self.query(query).await.ok()?.as_slice() {
            [one] => one["value"][1].as_str()?.parse().ok().filter(|v: &f64| v.is_finite()),
            _ => None,
        }
    }
}

impl Drop for LocalPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
