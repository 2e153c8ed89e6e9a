//! A load target for `wrk`: publishes an FLV file on the bus in a real-time loop and serves
//! it over HLS.
//!
//! ```text
//! cargo run --release -p hls-server --example hls_load -- FILE.flv 127.0.0.1:8088 [always_on]
//! wrk -t2 -c100 -d20s http://127.0.0.1:8088/live/load/index.m3u8
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use bus::{Bus, BusOptions, Protocol, PublisherInfo, Tag, TagKind};
use bytes::Bytes;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .expect("usage: hls_load FILE.flv ADDR [always_on]");
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:8088".into())
        .parse()
        .expect("ADDR");
    let always_on = args.next().as_deref() == Some("always_on");
    let data = Bytes::from(std::fs::read(&file)?);
    let tags = flv::parse_file(&data).expect("a valid FLV").tags;
    let bus = Bus::new(BusOptions::default());
    let opts = hls_server::Options {
        always_on,
        ..Default::default()
    };
    let app = hls_server::router(bus.clone(), opts);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tokio::spawn(feed(bus, tags));
    println!("serving http://{addr}/live/load/index.m3u8");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

async fn feed(bus: Bus, tags: Vec<flv::FlvTag>) {
    let info = PublisherInfo {
        protocol: Protocol::Internal,
        peer: None,
        query: None,
    };
    let mut publisher = bus.publish("live/load", info).expect("free key");
    let period = tags
        .iter()
        .map(|t| u64::from(t.timestamp) + 40)
        .max()
        .unwrap_or(1000)
        .div_ceil(40)
        * 40;
    let start = tokio::time::Instant::now();
    for round in 0.. {
        for t in &tags {
            let kind = match t.tag_type {
                8 => TagKind::Audio,
                9 => TagKind::Video,
                _ => continue,
            };
            // Ingest's classification: the header parsed once, flags and media set from it.
            let tag = Tag::classify(
                kind,
                u64::from(t.timestamp) + round * period,
                t.body.clone(),
            );
            if round > 0 && tag.sequence_header {
                continue;
            }
            tokio::time::sleep_until(start + Duration::from_millis(tag.timestamp)).await;
            publisher.push(tag);
        }
    }
}
