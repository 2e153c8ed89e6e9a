//! Turns config sections into each shell's options and spawns the shells.
//!
//! This is the only place that knows every shell; the shells themselves meet only at the bus.

use std::time::Duration;

use bus::{Bus, BusOptions};
use gateway_config::{BusSection, Config};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub(crate) struct Listeners {
    pub rtmp: TcpListener,
    pub http: TcpListener,
    pub rtsp: Option<TcpListener>,
    pub mms: Option<TcpListener>,
}

pub(crate) fn bus_options(s: &BusSection) -> BusOptions {
    BusOptions {
        queue_tags: s.queue_tags,
        gop_max_tags: s.gop_max_tags,
        gop_max_bytes: s.gop_max_bytes,
        audio_only_cache_ms: s.audio_only_cache_ms,
        timestamp_jump_ms: s.timestamp_jump_ms,
        unpublish_grace: Duration::from_secs(s.unpublish_grace_secs),
        wait_for_publisher: Duration::from_secs(s.wait_for_publisher_secs),
    }
}

pub(crate) fn spawn_all(
    tasks: &mut JoinSet<()>,
    config: &Config,
    bus: &Bus,
    listeners: Listeners,
    shutdown: &CancellationToken,
) {
    let _ = (
        config,
        bus,
        &listeners.rtmp,
        &listeners.rtsp,
        &listeners.mms,
    );
    let router = axum::Router::new();
    spawn_http(tasks, listeners.http, router, shutdown.clone());
}

fn spawn_http(
    tasks: &mut JoinSet<()>,
    listener: TcpListener,
    router: axum::Router,
    shutdown: CancellationToken,
) {
    tasks.spawn(async move {
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(listener, service)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(err) = served {
            tracing::error!("HTTP server stopped: {err}");
        }
    });
}
