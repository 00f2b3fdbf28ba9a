//! The write gate: a client whose writes are refused unless this replica owns a shard now.
//!
//! Every write a round makes (status, scale, pod evictions, Events) goes through its policy's
//! shard's gated client, so a replica that could not renew in time stops writing at its renew
//! deadline even in the middle of a round, and the next holder is the only writer.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use kube::client::Body;

use super::Ownership;

/// Writes refused by the gate fail with this error.
#[derive(Debug, thiserror::Error)]
#[error(
    "shard {shard} is not held by this replica (its renew deadline passed or its Lease was handed over): the write was not sent"
)]
pub struct NotOwner {
    pub shard: u32,
}

/// `client`, whose writes pass only while `ownership` owns `shard`. Reads always pass.
pub fn gated(client: kube::Client, ownership: Arc<Ownership>, shard: u32) -> kube::Client {
    let namespace = client.default_namespace().to_owned();
    kube::Client::new(Gate { client, ownership, shard }, namespace)
}

#[derive(Clone)]
struct Gate {
    client: kube::Client,
    ownership: Arc<Ownership>,
    shard: u32,
}

impl tower::Service<http::Request<Body>> for Gate {
    type Response = http::Response<Body>;
    type Error = tower::BoxError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let reads = matches!(*request.method(), http::Method::GET | http::Method::HEAD | http::Method::OPTIONS);
        // Checked when the request is sent, not when the round began: the deadline can pass mid-round.
        if !reads && !self.ownership.owns(self.shard) {
            let refused = NotOwner { shard: self.shard };
            return Box::pin(async move { Err(refused.into()) });
        }
        let client = self.client.clone();
        Box::pin(async move { client.send(request).await.map_err(Into::into) })
    }
}
