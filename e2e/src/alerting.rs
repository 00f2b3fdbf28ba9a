//! A Prometheus of its own for a scenario: it scrapes the operator under test and evaluates the
//! chart's alert rules (charts/trimtab/files/prometheus-rules.yaml), so an alert is seen to fire on
//! the metrics a real operator exports. The rules' `for:` durations (5 m to 1 h) are shortened to a
//! few seconds, the one change made to them: `promtool test rules` (`just chart-lint`) covers the
//! durations; this covers the expressions against the real metric names and labels.

use std::time::Duration;

use crate::prometheus::{LocalPrometheus, Setup};

/// A [`LocalPrometheus`] evaluating the chart's alerts.
pub struct RulesPrometheus {
    prometheus: LocalPrometheus,
}

impl RulesPrometheus {
    /// Starts Prometheus scraping `target` (`host:port` serving /metrics) every second, with the
    /// chart's rules evaluated every second and each `for:` cut to `pending`. None when there is
    /// no `prometheus` to run (outside CI: the caller skips).
    pub fn start(target: &str, pending: Duration) -> Option<RulesPrometheus> {
        let rules = std::fs::read_to_string(crate::repo_root().join("charts/trimtab/files/prometheus-rules.yaml"))
            .expect("read the chart's rules");
        let shortened: String = rules
            .lines()
            .map(|line| match line.split_once("for: ") {
                Some((indent, _)) if indent.trim().is_empty() => format!("{indent}for: {}s\n", pending.as_secs()),
                _ => format!("{line}\n"),
            })
            .collect();
        let prometheus = LocalPrometheus::start_with(Setup {
            job: "trimtab".to_owned(),
            targets: vec![target.to_owned()],
            interval: "1s".to_owned(),
            honor_labels: false,
            rules: Some(shortened),
        })?;
        Some(RulesPrometheus { prometheus })
    }

    /// The labels of each alert firing now, from Prometheus's `ALERTS` series.
    pub async fn firing(&self) -> Result<Vec<serde_json::Value>, String> {
        let result = self.prometheus.query("ALERTS{alertstate=\"firing\"}").await?;
        Ok(result.iter().map(|series| series["metric"].clone()).collect())
    }

    /// The value of an instant query answering at most one series.
    pub async fn value(&self, query: &str) -> Result<Option<f64>, String> {
        match self.prometheus.query(query).await?.as_slice() {
            [] => Ok(None),
            [one] => Ok(one["value"][1].as_str().and_then(|v| v.parse().ok())),
            several => Err(format!("{} series for {query}", several.len())),
        }
    }
}

impl Drop for RulesPrometheus {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("==== alerting Prometheus log ====\n{}", self.prometheus.log());
        }
    }
}
