//! A TCP proxy in front of any address (the API server, say) that a test can cut and heal, and
//! that counts the connection attempts made while it is cut: how often clients retried.
//!
//! It forwards bytes, so TLS goes end to end: cutting connections is the honest way to make a TLS
//! server unreachable.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::net::{TcpListener, TcpStream};

pub struct TcpProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    forwarded: Arc<AtomicUsize>,
    refused: Arc<Mutex<Vec<Instant>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards each connection to `target`.
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let open = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let forwarded = Arc::new(AtomicUsize::new(0));
        let refused: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let task = tokio::spawn({
            let (open, connections, forwarded, refused) = (open.clone(), connections.clone(), forwarded.clone(), refused.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        refused.lock().unwrap_or_else(|e| e.into_inner()).push(Instant::now());
                        drop(inbound); // cut: the client sees the connection closed
                        continue;
                    }
                    forwarded.fetch_add(1, Ordering::SeqCst);
                    let connection = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    connections.lock().unwrap_or_else(|e| e.into_inner()).push(connection.abort_handle());
                }
            }
        });
        TcpProxy { addr, open, connections, forwarded, refused, task }
    }

    /// Open connections (watches, keep-alive) are dropped, and new ones are closed at once.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for connection in self.connections.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            connection.abort();
        }
    }

    /// Connections are forwarded again.
    pub fn heal(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// Connections forwarded so far.
    pub fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }

    /// When each connection attempt made while cut came.
    pub fn refused(&self) -> Vec<Instant> {
        self.refused.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}
