//! Runs the RTMP shell alone on a bus, for load measurements and manual
//! testing with real clients.
//!
//! ```text
//! cargo run --release -p rtmp-server --example serve -- 127.0.0.1:1935
//! ```

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:1935".into());
    let listener = TcpListener::bind(&addr).await?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    rtmp_server::run(listener, bus::Bus::default(), Default::default(), shutdown).await
}
