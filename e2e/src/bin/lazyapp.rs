//! lazyapp: the simulated app that exports as client libraries do (see `trimtab_e2e::lazyapp`),
//! served on an address for a Prometheus to scrape, e.g. to try a recipe by hand:
//!
//! ```sh
//! lazyapp --listen 127.0.0.1:18081 &
//! curl -X PUT 127.0.0.1:18081/services/shop/checkout -H 'content-type: application/json' -d '{"rps": 100, "replicas": 4}'
//! trimtab check -f examples/recipes/istio.yaml --prometheus-url http://PROMETHEUS-SCRAPING-IT:9090
//! ```
//!
//! Scrape it with `honor_labels: true`: it writes the labels a Kubernetes scrape would add.

use std::net::SocketAddr;

use clap::Parser;
use trimtab_e2e::lazyapp::App;

#[derive(Parser)]
#[command(
    name = "lazyapp",
    about = "A simulated app whose series appear at their first observation, as client libraries export them"
)]
struct Args {
    /// Address to serve /metrics and PUT /services/{namespace}/{name} on.
    #[arg(long, default_value = "127.0.0.1:18081")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("lazyapp serving on {}", args.listen);
    axum::serve(listener, App::default().router())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
