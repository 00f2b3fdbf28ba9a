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

impl LocalPrometheus {
    /// None when there is no `prometheus` to run (outside CI: the caller skips).
    pub fn start(name: &str, targets: &[SocketAddr]) -> Option<LocalPrometheus> {
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
        let dir = std::env::temp_dir().join(format!("trimtab-e2e-prometheus-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the temp dir");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let config = format!(
            "global:\n  scrape_interval: {SCRAPE_INTERVAL}\n  scrape_timeout: {SCRAPE_INTERVAL}\nscrape_configs:\n  - job_name: {name}\n    honor_labels: true\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
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

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// The value of an instant query that returns one series, if it does (and Prometheus answers).
    pub async fn value(&self, query: &str) -> Option<f64> {
        let url = format!("{}/api/v1/query", self.url);
        let body: serde_json::Value =
            reqwest::Client::new().get(url).query(&[("query", query)]).send().await.ok()?.json().await.ok()?;
        match body["data"]["result"].as_array()?.as_slice() {
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
