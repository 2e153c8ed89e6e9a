//! Serves one FLV file as a live stream, looped in real time, on the HTTP shell alone: for
//! trying the web page and for load measurements without the rest of the gateway.
//!
//! `cargo run --release -p http-server --example serve_file -- FILE.flv [ADDR] [KEY] [WEB_ROOT]`
//! (defaults `127.0.0.1:8080`, `live/test`, `web`).

use std::net::SocketAddr;
use std::time::Duration;

use bus::{Bus, Protocol, PublisherInfo, Tag, TagKind};
use bytes::Bytes;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let file = args
        .next()
        .ok_or("usage: serve_file FILE.flv [ADDR] [KEY] [WEB_ROOT]")?;
    let addr: SocketAddr = args.next().as_deref().unwrap_or("127.0.0.1:8080").parse()?;
    let key = args.next().unwrap_or_else(|| "live/test".into());
    let web_root = args.next().unwrap_or_else(|| "web".into());

    let data = Bytes::from(std::fs::read(&file)?);
    let tags = flv::parse_file(&data)?.tags;
    let bus = Bus::default();
    tokio::spawn(feed(bus.clone(), key.clone(), tags));

    let opts = http_server::Options {
        web_root: web_root.into(),
        ..Default::default()
    };
    let app = http_server::router(bus, opts).into_make_service_with_connect_info::<SocketAddr>();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "serving {file} as http://{}/{key}.flv (pid {})",
        listener.local_addr()?,
        std::process::id()
    );
    axum::serve(listener, app).await?;
    Ok(())
}

/// Publishes the file's tags in real time, looping with continuing timestamps.
async fn feed(bus: Bus, key: String, tags: Vec<flv::FlvTag>) {
    let info = PublisherInfo {
        protocol: Protocol::Rtmp,
        peer: None,
        query: None,
    };
    let Ok(mut publisher) = bus.publish(&key, info) else {
        return;
    };
    let span = u64::from(tags.iter().map(|t| t.timestamp).max().unwrap_or(0)) + 40;
    let start = tokio::time::Instant::now();
    for lap in 0u64.. {
        for t in &tags {
            let flags = t.flags();
            if lap > 0 && (flags.sequence_header || t.tag_type == 18) {
                continue;
            }
            let ts = lap * span + u64::from(t.timestamp);
            tokio::time::sleep_until(start + Duration::from_millis(ts)).await;
            let kind = match t.tag_type {
                8 => TagKind::Audio,
                9 => TagKind::Video,
                _ => TagKind::Script,
            };
            // Ingest's classification: the header parsed once, flags and media set from it.
            publisher.push(Tag::classify(kind, ts, t.body.clone()));
        }
    }
}
