//! A TCP proxy that a test can cut or turn into a black hole: in front of Prometheus, to simulate
//! Prometheus going away without stopping the one every other test shares; in front of the API
//! server, to cut one operator off it (the bytes are TLS, passed through untouched: cutting
//! connections is the honest way to make a TLS server unreachable). It records when each
//! connection attempt made while cut came: how often clients retried.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream};

pub struct CuttableProxy {
    /// `http://` and [`Self::addr`].
    pub url: String,
    /// Where clients connect.
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    /// While set, traffic is dropped without closing anything: the client's requests hang.
    black_hole: Arc<tokio::sync::watch::Sender<bool>>,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    refused: Arc<Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl CuttableProxy {
    /// Listens on a free loopback port and forwards to `upstream` (a `http://host:port` URL).
    pub async fn start(upstream: &str) -> CuttableProxy {
        let upstream: SocketAddr =
            upstream.trim_start_matches("http://").trim_end_matches('/').parse().expect("PROMETHEUS_URL is http://HOST:PORT");
        Self::start_tcp(upstream).await
    }

    /// Listens on a free loopback port and forwards to `upstream`, whatever the protocol.
    pub async fn start_tcp(upstream: SocketAddr) -> CuttableProxy {
        let black_hole = Arc::new(tokio::sync::watch::channel(false).0);
        let holes = black_hole.clone();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let open = Arc::new(AtomicBool::new(true));
        let gate = open.clone();
        let connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let live = connections.clone();
        let refused: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let refusals = refused.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !gate.load(Ordering::SeqCst) {
                    refusals.lock().unwrap_or_else(|e| e.into_inner()).push(Instant::now());
                    drop(inbound); // cut: the client sees the connection closed
                    continue;
                }
                let mut hole = holes.subscribe();
                let connection = tokio::spawn(async move {
                    let swallowed = *hole.borrow();
                    if swallowed {
                        // Swallowed: held open, never answered, until restored.
                        let _ = hole.wait_for(|on| !*on).await;
                        return;
                    }
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            // Dropped mid-stream: what was sent is lost, and nothing is closed.
                            _ = async { hole.wait_for(|on| *on).await.is_ok() } => {
                                let _ = hole.wait_for(|on| !*on).await.is_ok();
                            }
                        }
                    }
                });
                live.lock().unwrap_or_else(|e| e.into_inner()).push(connection.abort_handle());
            }
        });
        CuttableProxy { url: format!("http://{addr}"), addr, open, black_hole, connections, refused, task }
    }

    /// Every byte either way is dropped from now on, and no connection is closed: like a network
    /// partition, the client only notices by its own timeouts.
    pub fn black_hole(&self) {
        self.black_hole.send_replace(true);
    }

    /// Ends the black hole: the connections it swallowed are closed (what was sent into it is
    /// lost), new ones are forwarded again.
    pub fn heal(&self) {
        self.black_hole.send_replace(false);
    }

    /// New connections are closed at once, and open (keep-alive) ones are dropped.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for connection in self.connections.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            connection.abort();
        }
    }

    /// Ends the cut: new connections are forwarded again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// When each connection attempt made while cut came.
    pub fn refused(&self) -> Vec<Instant> {
        self.refused.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}
