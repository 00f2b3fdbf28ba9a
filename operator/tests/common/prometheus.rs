//! A real Prometheus for the tests: the Debian `prometheus` binary, started in a temp dir on a free
//! port, scraping a small exporter the test serves. Dropping it stops both and removes the dir.
//! Without the binary a test skips, except in CI (CI=true), where a missing one is a failure.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The exposition text the exporter serves, from the seconds since it started.
pub type MetricsText = fn(f64) -> String;

struct Exporter {
    address: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Exporter {
    fn start(metrics_text: MetricsText) -> Exporter {
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

pub struct Prometheus {
    pub url: String,
    child: Child,
    dir: PathBuf,
    _exporter: Exporter,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// The `prometheus` on PATH; none (the test skips) outside CI.
pub fn prometheus_binary() -> Option<PathBuf> {
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

impl Prometheus {
    /// Prometheus scraping the exporter (job `app`) every `scrape_interval`.
    pub fn start(binary: PathBuf, metrics_text: MetricsText, scrape_interval: &str) -> Prometheus {
        let exporter = Exporter::start(metrics_text);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("trimtab-prometheus-test-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the temp dir");
        let config = format!(
            "global:\n  scrape_interval: {scrape_interval}\n  scrape_timeout: {scrape_interval}\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{}']\n",
            exporter.address
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
        Prometheus { url: format!("http://127.0.0.1:{port}"), child, dir, _exporter: exporter }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }
}
