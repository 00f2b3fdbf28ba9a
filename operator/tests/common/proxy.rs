//! An HTTP proxy in front of a real Prometheus that logs every request it forwards (path, `query`
//! parameter, headers, answer) and can hang the requests whose query contains a given text: one
//! slow endpoint behind an otherwise healthy Prometheus. Dropping it releases the hung requests
//! and stops it.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

/// One request the proxy forwarded: its path, its `query` parameter, its headers, and the answer.
#[derive(Debug, Clone)]
pub struct Forwarded {
    pub path: String,
    pub query: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub answer: String,
}

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    log: Mutex<Vec<Forwarded>>,
    /// A request whose query contains this is never answered (until the proxy is dropped).
    hang: Option<String>,
    /// Set when the proxy is dropped: the hung requests end.
    released: tokio::sync::watch::Sender<bool>,
    /// How many requests are being held now.
    held: tokio::sync::watch::Sender<usize>,
}

pub struct Proxy {
    pub url: String,
    state: Arc<ProxyState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Forwards every request to `upstream`.
    pub fn start(upstream: &str) -> Proxy {
        Self::start_full(upstream, None)
    }

    /// Forwards every request to `upstream`, except those whose `query` contains `text`: they
    /// are held open and never answered.
    pub fn hanging(upstream: &str, text: &str) -> Proxy {
        Self::start_full(upstream, Some(text.to_owned()))
    }

    fn start_full(upstream: &str, hang: Option<String>) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let client = reqwest::Client::builder().build().expect("a client");
        let released = tokio::sync::watch::channel(false).0;
        let held = tokio::sync::watch::channel(0).0;
        let state =
            Arc::new(ProxyState { upstream: upstream.to_owned(), client, log: Mutex::new(Vec::new()), hang, released, held });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = state.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                let router = axum::Router::new().fallback(forward).with_state(serving);
                let _ = axum::serve(listener, router)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Proxy { url, state, stop: Some(stop), thread: Some(thread) }
    }

    /// Waits until at least `count` requests are being held, so a test knows they are in flight
    /// (and hold their client's slots); panics after `within`.
    pub async fn wait_until_holding(&self, count: usize, within: std::time::Duration) {
        let mut held = self.state.held.subscribe();
        let reached = tokio::time::timeout(within, held.wait_for(|held| *held >= count)).await;
        assert!(reached.is_ok(), "the proxy held {} requests after {within:?}, not {count}", *self.state.held.borrow());
    }

    /// Everything forwarded since the last call.
    pub fn take(&self) -> Vec<Forwarded> {
        std::mem::take(&mut *self.state.log.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.released.send_replace(true);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn forward(
    axum::extract::State(state): axum::extract::State<Arc<ProxyState>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let path_and_query = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let url = reqwest::Url::parse(&format!("{}{path_and_query}", state.upstream)).expect("an upstream URL");
    let query = url.query_pairs().find(|(k, _)| k == "query").map(|(_, v)| v.into_owned());
    if let (Some(hang), Some(query)) = (&state.hang, &query)
        && query.contains(hang.as_str())
    {
        state.held.send_modify(|held| *held += 1);
        let _ = state.released.subscribe().wait_for(|released| *released).await;
        state.held.send_modify(|held| *held -= 1);
        return axum::response::Response::builder()
            .status(reqwest::StatusCode::SERVICE_UNAVAILABLE)
            .body(axum::body::Body::empty())
            .expect("a response");
    }
    let (method, headers) = (request.method().clone(), request.headers().clone());
    let body = axum::body::to_bytes(request.into_body(), 1 << 20).await.unwrap_or_default();
    let (status, answer) = match state.client.request(method, url.clone()).body(body).send().await {
        Ok(response) => (response.status(), response.text().await.unwrap_or_default()),
        Err(error) => (reqwest::StatusCode::BAD_GATEWAY, error.to_string()),
    };
    let path = url.path().to_owned();
    state.log.lock().unwrap_or_else(|e| e.into_inner()).push(Forwarded { path, query, headers, answer: answer.clone() });
    axum::response::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(answer))
        .expect("a response")
}
