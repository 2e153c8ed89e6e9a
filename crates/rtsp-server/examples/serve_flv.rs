//! Serves an FLV file (looped in real time) as `rtsp://ADDR/live/test`, for manual interop checks
//! and load measurements:
//!
//! `cargo run --release -p rtsp-server --example serve_flv -- FILE.flv 127.0.0.1:8554`

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(file), Some(addr)) = (args.next(), args.next()) else {
        eprintln!("usage: serve_flv FILE.flv LISTEN_ADDR");
        std::process::exit(2);
    };
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let tags = common::fixture_tags(Path::new(&file));
    let bus = bus::Bus::default();
    let stop = CancellationToken::new();
    tokio::spawn(common::feed(bus.clone(), tags, stop.clone()));
    let listener = TcpListener::bind(&addr).await?;
    println!("serving rtsp://{}/{}", listener.local_addr()?, common::KEY);
    // Load runs open every session from one address.
    let opts = rtsp_server::Options {
        max_sessions_per_ip: usize::MAX,
        ..Default::default()
    };
    rtsp_server::run(listener, bus, opts, stop).await
}
