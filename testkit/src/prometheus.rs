//! A real Prometheus owned by a test: the `prometheus` binary on PATH (Debian's), started in a temp
//! dir on a free port, stopped and its dir removed when dropped. Without the binary a test skips,
//! except in CI (CI=true), where a missing one is a failure. [`Exporter`] serves a test's own
//! exposition text for it to scrape.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The `prometheus` on PATH; none (the test skips, and says so) outside CI.
pub fn binary() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|dir| dir.join("prometheus")).find(|p| p.is_file()));
    if found.is_none() {
        // CI installs Prometheus before the tests (.ci/run): there, a missing one is a failure, never a pass.
        assert!(
            std::env::var_os("CI").is_none(),
            "no `prometheus` on PATH in CI (Debian: apt-get install prometheus, or `just tools`)"
        );
        eprintln!("SKIPPED: no `prometheus` on PATH (Debian: apt-get install prometheus, or `just tools`)");
    }
    found
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// What a [`Prometheus`] scrapes and evaluates.
pub struct Setup {
    /// The scrape job's name.
    pub job: String,
    /// `host:port` of each target serving /metrics.
    pub targets: Vec<String>,
    /// Scrape (and rule evaluation) interval, as Prometheus writes durations.
    pub interval: String,
    /// Keep the labels the targets write (e2e apps write what a Kubernetes scrape would have added).
    pub honor_labels: bool,
    /// A rules file's content, evaluated every interval.
    pub rules: Option<String>,
}

pub struct Prometheus {
    pub url: String,
    child: Child,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts `binary` as `setup` says; it answers at [`Self::url`] once it has started.
    pub fn start(binary: PathBuf, setup: &Setup) -> Prometheus {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("trimtab-prometheus-{}-{}-{nanos}", setup.job, std::process::id()));
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
        let port = free_port();
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
        Prometheus { url: format!("http://127.0.0.1:{port}"), child, dir }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The exposition text an [`Exporter`] serves, from the seconds since it started.
pub type MetricsText = fn(f64) -> String;

/// A /metrics endpoint on a free loopback port, serving `metrics_text` on a thread until dropped.
pub struct Exporter {
    /// `host:port`, a scrape target.
    pub address: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Exporter {
    pub fn start(metrics_text: MetricsText) -> Exporter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the exporter");
        let address = listener.local_addr().expect("exporter address").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let body = metrics_text(started.elapsed().as_secs_f64());
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(body.as_bytes()));
            }
        });
        Exporter { address, stop, thread: Some(thread) }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.address); // wakes the accept loop
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
