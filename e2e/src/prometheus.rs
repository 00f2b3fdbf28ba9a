//! A real Prometheus (the `prometheus` binary on PATH) owned by a test: started in a temp dir on a
//! free port, scraping the given targets every [`SCRAPE_INTERVAL`] with honor_labels (the targets write the
//! labels a Kubernetes scrape would have added), stopped and removed when dropped. Without the
//! binary the test is skipped, except under CI=true, where that is a failure.

use std::net::SocketAddr;

pub use trimtab_testkit::prometheus::Setup;

/// Every 2s: a [2m] window holds 60 scrapes, and a scrape of several megabytes has time to finish.
pub const SCRAPE_INTERVAL: &str = "2s";

/// A `trimtab_testkit` Prometheus, with the queries the scenarios read it by.
pub struct LocalPrometheus {
    pub url: String,
    process: trimtab_testkit::prometheus::Prometheus,
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
        let process = trimtab_testkit::prometheus::Prometheus::start(trimtab_testkit::prometheus::binary()?, &setup);
        Some(LocalPrometheus { url: process.url.clone(), process })
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
        self.process.log()
    }

    /// The value of an instant query that returns one series, if it does (and Prometheus answers).
    pub async fn value(&self, query: &str) -> Option<f64> {
        match self.query(query).await.ok()?.as_slice() {
            [one] => one["value"][1].as_str()?.parse().ok().filter(|v: &f64| v.is_finite()),
            _ => None,
        }
    }
}
