//! A real Prometheus for the tests (see `trimtab_testkit::prometheus`), scraping (job `app`) a small
//! exporter the test serves. Dropping it stops both and removes its dir.

#![allow(dead_code)]

use std::path::PathBuf;

use trimtab_testkit::prometheus::{Exporter, Setup};
#[allow(unused_imports)] // each test file uses some of them
pub use trimtab_testkit::prometheus::{MetricsText, binary as prometheus_binary, free_port};

pub struct Prometheus {
    pub url: String,
    process: trimtab_testkit::prometheus::Prometheus,
    _exporter: Exporter,
}

impl Prometheus {
    /// Prometheus scraping the exporter of `metrics_text` (job `app`) every `scrape_interval`.
    pub fn start(binary: PathBuf, metrics_text: MetricsText, scrape_interval: &str) -> Prometheus {
        let exporter = Exporter::start(metrics_text);
        let setup = Setup {
            job: "app".to_owned(),
            targets: vec![exporter.address.clone()],
            interval: scrape_interval.to_owned(),
            honor_labels: false,
            rules: None,
        };
        let process = trimtab_testkit::prometheus::Prometheus::start(binary, &setup);
        Prometheus { url: process.url.clone(), process, _exporter: exporter }
    }

    pub fn log(&self) -> String {
        self.process.log()
    }
}
