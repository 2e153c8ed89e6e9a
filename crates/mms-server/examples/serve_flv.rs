//! Serves an FLV file in a loop as `LiveEvents` (and `live/test`) over MMST and MMSH, for trying
//! real players by hand: `cargo run -p mms-server --example serve_flv -- FILE.flv [MMST_PORT] [HTTP_PORT]`.

use std::net::SocketAddr;
use std::time::Duration;

use bus::{Bus, Protocol, PublisherInfo, Tag, TagKind};
use bytes::Bytes;
use mms_server::{Options, PublishingPoint};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .expect("usage: serve_flv FILE.flv [MMST_PORT] [HTTP_PORT]");
    let mmst_port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(1755);
    let http_port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(8080);
    let opts = Options {
        publishing_points: vec![PublishingPoint {
            name: "LiveEvents".into(),
            stream: "live/test".into(),
        }],
        mmst_port,
        ..Options::default()
    };
    let bus = Bus::default();
    let shutdown = CancellationToken::new();
    tokio::spawn(publish(bus.clone(), Bytes::from(std::fs::read(file)?)));
    let mmst = TcpListener::bind(("0.0.0.0", mmst_port)).await?;
    tokio::spawn(mms_server::run(
        mmst,
        bus.clone(),
        opts.clone(),
        shutdown.clone(),
    ));
    let http = TcpListener::bind(("0.0.0.0", http_port)).await?;
    let app = mms_server::router(bus, opts).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(http, app).await
}

async fn publish(bus: Bus, data: Bytes) {
    let file = flv::parse_file(&data).expect("the file is FLV");
    let info = PublisherInfo {
        protocol: Protocol::Internal,
        peer: None,
        query: None,
    };
    let mut publisher = bus.publish("live/test", info).expect("publish");
    let start = tokio::time::Instant::now();
    let span = file
        .tags
        .iter()
        .map(|t| u64::from(t.timestamp))
        .max()
        .unwrap_or(0)
        + 40;
    for round in 0u64.. {
        for t in &file.tags {
            let kind = match t.tag_type {
                8 => TagKind::Audio,
                9 => TagKind::Video,
                _ => TagKind::Script,
            };
            // Ingest's classification: the header parsed once, flags and media set from it.
            let ts = u64::from(t.timestamp) + round * span;
            let tag = Tag::classify(kind, ts, t.body.clone());
            if tag.sequence_header && round > 0 {
                continue;
            }
            tokio::time::sleep_until(start + Duration::from_millis(ts)).await;
            publisher.push(tag);
        }
    }
}
