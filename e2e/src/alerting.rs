//! A Prometheus of its own for a scenario: it scrapes the operator under test and evaluates the
//! chart's alert rules (charts/trimtab/files/prometheus-rules.yaml), so an alert is seen to fire on
//! the metrics a real operator exports. The rules' `for:` durations (5 m to 1 h) are shortened to a
//! few seconds, the one change made to them: `promtool test rules` (`just chart-lint`) covers the
//! durations; this covers the expressions against the real metric names and labels.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::placement::free_port;

/// A running Prometheus in a temp directory; killed and removed when dropped.
pub struct RulesPrometheus {
    child: Child,
    dir: PathBuf,
    pub url: String,
}

impl RulesPrometheus {
    /// Starts Prometheus scraping `target` (`host:port` serving /metrics) every second, with the
    /// chart's rules evaluated every second and each `for:` cut to `pending`.
    pub fn start(target: &str, pending: Duration) -> RulesPrometheus {
        let dir = std::env::temp_dir().join(format!("trimtab-e2e-rules-{}-{}", std::process::id(), free_port()));
        std::fs::create_dir_all(&dir).expect("create the Prometheus dir");
        let rules = std::fs::read_to_string(crate::repo_root().join("charts/trimtab/files/prometheus-rules.yaml"))
            .expect("read the chart's rules");
        let shortened: String = rules
            .lines()
            .map(|line| match line.split_once("for: ") {
                Some((indent, _)) if indent.trim().is_empty() => format!("{indent}for: {}s\n", pending.as_secs()),
                _ => format!("{line}\n"),
            })
            .collect();
        std::fs::write(dir.join("rules.yaml"), shortened).expect("write the rules");
        let config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: [{rules}]\n\
             scrape_configs:\n  - job_name: trimtab\n    static_configs: [{{targets: [\"{target}\"]}}]\n",
            rules = dir.join("rules.yaml").display()
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("write the config");
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("create the log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::from(log.try_clone().expect("clone the log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start prometheus (Debian: apt-get install prometheus, or `just tools`)");
        RulesPrometheus { child, dir, url: format!("http://127.0.0.1:{port}") }
    }

    /// The labels of each alert firing now, from Prometheus's `ALERTS` series.
    pub async fn firing(&self) -> Result<Vec<serde_json::Value>, String> {
        let result = self.query("ALERTS{alertstate=\"firing\"}").await?;
        Ok(result.iter().map(|series| series["metric"].clone()).collect())
    }

    /// The value of an instant query answering at most one series.
    pub async fn value(&self, query: &str) -> Result<Option<f64>, String> {
        match self.query(query).await?.as_slice() {
            [] => Ok(None),
            [one] => Ok(one["value"][1].as_str().and_then(|v| v.parse().ok())),
            several => Err(format!("{} series for {query}", several.len())),
        }
    }

    async fn query(&self, query: &str) -> Result<Vec<serde_json::Value>, String> {
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

    /// Its log, for failure dumps (a rule that does not load shows here).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for RulesPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("==== alerting Prometheus log ====\n{}", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
