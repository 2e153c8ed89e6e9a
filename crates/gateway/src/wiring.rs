//! Turns config sections into each shell's options and spawns the shells.
//!
//! This is the only place that knows every shell; the shells themselves meet only at the bus.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use access::Access;
use arc_swap::ArcSwap;
use bus::{Bus, BusOptions};
use gateway_config::{
    AuthSection, BusSection, Config, HlsSection, HttpSection, ListenerCaps, MmsSection, Network,
    PolicySection, RecordFormat, RecordSection, RtmpSection, RtspSection,
};
use netutil::{Admission, ConnLimits};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::api::Limits;
use crate::health::Readiness;
use crate::http_listener::HttpLimits;
use crate::reload::Reloader;

/// The bound listeners; `None` is a listener that is off. A TLS listener (`rtmps`, `https`,
/// `rtsps`) is only bound when the certificate loaded (the config requires one for it).
pub(crate) struct Listeners {
    pub rtmp: Option<TcpListener>,
    pub rtmps: Option<TcpListener>,
    pub http: Option<TcpListener>,
    pub https: Option<TcpListener>,
    pub rtsp: Option<TcpListener>,
    pub rtsps: Option<TcpListener>,
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
        backup_suffix: Some(s.backup_suffix.clone()).filter(|x| !x.is_empty()),
        failover: Duration::from_millis(s.failover_ms),
        max_streams: s.max_streams,
        max_streams_per_app: s.max_streams_per_app,
    }
}

/// One listener's admission from its section's keys; `name` names it in logs and the API.
fn conn_limits(name: &'static str, c: ListenerCaps) -> ConnLimits {
    ConnLimits::new(
        name,
        Admission {
            max_connections: c.max_connections,
            max_connections_per_ip: c.max_connections_per_ip,
            connection_rate_per_ip: c.connection_rate_per_ip,
            connection_burst_per_ip: c.connection_burst_per_ip,
        },
    )
}

fn rtmp_options(
    s: &RtmpSection,
    bus: &BusSection,
    access: &Arc<Access>,
    conn_limits: &ConnLimits,
) -> rtmp_server::Options {
    rtmp_server::Options {
        chunk_size: s.chunk_size,
        max_message_size: s.max_message_size,
        ack_window: s.ack_window,
        wait_for_publisher: match s.wait_for_publisher {
            true => Duration::from_secs(bus.wait_for_publisher_secs),
            false => Duration::ZERO,
        },
        handshake_timeout: Duration::from_secs(s.handshake_timeout_secs),
        idle_timeout: Duration::from_secs(s.idle_timeout_secs),
        send_timeout: Duration::from_secs(s.send_timeout_secs),
        send_buffer: (s.send_buffer_bytes > 0).then_some(s.send_buffer_bytes),
        write_delay: Duration::from_millis(s.write_delay_ms),
        conn_limits: conn_limits.clone(),
        access: Arc::clone(access),
        ..rtmp_server::Options::default()
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.trim().is_empty()).then(|| s.trim().to_owned())
}

/// The ports the web page and the API advertise are the ones actually bound (they differ from
/// the configured ones when a port of 0 lets the kernel choose, or after a reload moved one).
fn http_options(config: &Config, ports: &Ports, access: &Arc<Access>) -> http_server::Options {
    let s = &config.http;
    http_server::Options {
        web_root: PathBuf::from(&s.web_root),
        public_http_base: non_empty(&s.public_url).map(|u| u.trim_end_matches('/').to_owned()),
        public_host: non_empty(&s.public_host),
        rtmp_port: ports.rtmp,
        rtsp_port: ports.rtsp,
        mms_port: ports.mms,
        rtmps_port: ports.rtmps,
        rtsps_port: ports.rtsps,
        hls: config.hls.enabled,
        flv_write_delay: Duration::from_millis(s.flv_write_delay_ms),
        access: Arc::clone(access),
    }
}

fn hls_options(s: &HlsSection, access: &Arc<Access>) -> hls_server::Options {
    hls_server::Options {
        target_duration: Duration::from_millis(s.target_duration_ms),
        window: s.window,
        retain_after_window: s.retain_after_window,
        always_on: s.always_on,
        idle_timeout: Duration::from_secs(s.idle_timeout_secs),
        playlist_wait: Duration::from_millis(s.playlist_wait_ms),
        encrypt_apps: s.encrypt_apps.clone(),
        key_rotation: s.key_rotation_segments,
        access: Arc::clone(access),
        ..hls_server::Options::default()
    }
}

/// `conn_limits` and `setup_refusals` are the listener's for its life: a reload rebuilds the
/// options around the same handles.
fn rtsp_options(
    s: &RtspSection,
    access: &Arc<Access>,
    conn_limits: &ConnLimits,
    setup_refusals: &Arc<rtsp_server::SetupRefusals>,
) -> rtsp_server::Options {
    rtsp_server::Options {
        mtu: s.mtu,
        session_timeout: Duration::from_secs(s.session_timeout_secs),
        udp_port_min: s.rtp_port_min,
        udp_port_max: s.rtp_port_max,
        sender_report_interval: Duration::from_secs(s.sender_report_interval_secs),
        queue_units: s.queue_units,
        tcp_write_delay: Duration::from_millis(s.tcp_write_delay_ms),
        write_timeout: Duration::from_secs(s.send_timeout_secs),
        tcp_send_buffer: (s.send_buffer_bytes > 0).then_some(s.send_buffer_bytes),
        max_sessions_per_ip: s.max_sessions_per_ip,
        request_timeout: Duration::from_secs(s.request_timeout_secs),
        conn_limits: conn_limits.clone(),
        setup_refusals: Arc::clone(setup_refusals),
        access: Arc::clone(access),
        server_name: format!("media-gateway/{}", env!("CARGO_PKG_VERSION")),
        ..rtsp_server::Options::default()
    }
}

fn mms_options(
    s: &MmsSection,
    http: &HttpSection,
    mmst_port: Option<u16>,
    access: &Arc<Access>,
    conn_limits: &ConnLimits,
) -> mms_server::Options {
    mms_server::Options {
        publishing_points: s
            .publishing_points
            .iter()
            .map(|p| mms_server::PublishingPoint {
                name: p.name.clone(),
                stream: p.stream.clone(),
            })
            .collect(),
        packet_size: s.packet_size,
        preroll_ms: s.preroll_ms,
        max_packet_delay_ms: s.max_packet_delay_ms,
        command_timeout: Duration::from_secs(s.idle_timeout_secs),
        write_timeout: Duration::from_secs(s.send_timeout_secs),
        public_host: non_empty(&http.public_host),
        mmst_port: mmst_port.unwrap_or(1755),
        conn_limits: conn_limits.clone(),
        access: Arc::clone(access),
        ..mms_server::Options::default()
    }
}

#[derive(Default)]
struct Ports {
    rtmp: Option<u16>,
    rtmps: Option<u16>,
    rtsp: Option<u16>,
    rtsps: Option<u16>,
    mms: Option<u16>,
}

impl Ports {
    /// Where the listeners are now.
    fn now(reloader: &Reloader) -> Ports {
        Ports {
            rtmp: reloader.port_of("rtmp"),
            rtmps: reloader.port_of("rtmps"),
            rtsp: reloader.port_of("rtsp"),
            rtsps: reloader.port_of("rtsps"),
            mms: reloader.port_of("mms"),
        }
    }
}

/// Options a reload replaces: `build` makes them from a configuration, now and after every
/// reload.
fn live<T, F>(reloader: &Reloader, config: &Config, build: F) -> Arc<ArcSwap<T>>
where
    T: Send + Sync + 'static,
    F: Fn(&Config) -> T + Send + Sync + 'static,
{
    let live = Arc::new(ArcSwap::from_pointee(build(config)));
    let target = Arc::clone(&live);
    reloader.on_apply(move |c| target.store(Arc::new(build(c))));
    live
}

/// `[auth]` as the access crate's options. `http_loopback`: whether the HTTP listener is bound
/// to a loopback address, where the API may stay open without a token; on any other address an
/// empty `api_token` gets a random one, logged once.
pub(crate) fn access_options(a: &AuthSection, http_loopback: bool) -> access::Options {
    let policy = |p: &PolicySection| access::Policy {
        tokens: p.tokens.clone(),
        users: p
            .user_pairs()
            .into_iter()
            .map(|(name, password)| access::User { name, password })
            .collect(),
        signed: p.signed,
        allow_ips: p.allow_networks().iter().filter_map(net).collect(),
        deny_ips: p.deny_networks().iter().filter_map(net).collect(),
    };
    let hook = |u: &str| non_empty(u);
    let api_token = match non_empty(&a.api_token) {
        Some(t) => Some(t),
        None if http_loopback => None,
        None => {
            let token = format!("{:032x}", rand::random::<u128>());
            tracing::warn!(
                token,
                "the API and web page need a token on this HTTP listener: open the page as http://HOST:PORT/?token=<token>, send Authorization: Bearer <token> to the API, or set auth.api_token to choose it"
            );
            Some(token)
        }
    };
    access::Options {
        rules: a
            .rule
            .iter()
            .map(|r| access::Rule {
                app: r.app.clone(),
                stream: r.stream.clone(),
                publish: policy(&r.publish),
                play: policy(&r.play),
            })
            .collect(),
        sign_secret: non_empty(&a.sign_secret).map(String::into_bytes),
        realm: a.realm.clone(),
        nonce_lifetime: Duration::from_secs(a.nonce_lifetime_secs),
        hooks: access::Hooks {
            on_publish: hook(&a.hooks.on_publish),
            on_play: hook(&a.hooks.on_play),
            on_unpublish: hook(&a.hooks.on_unpublish),
            on_stop: hook(&a.hooks.on_stop),
            timeout: Duration::from_millis(a.hooks.timeout_ms),
        },
        api_token,
    }
}

/// `[record]` as the recorder's options (built once: every `record.*` key needs a restart).
fn record_options(s: &RecordSection, access: &Arc<Access>) -> record::Options {
    let secs = |n: u64| (n > 0).then(|| Duration::from_secs(n));
    record::Options {
        dir: PathBuf::from(&s.dir),
        rules: s
            .rule
            .iter()
            .map(|r| record::Rule {
                app: r.app.clone(),
                stream: r.stream.clone(),
                format: match r.format {
                    RecordFormat::Mp4 => record::Format::Mp4,
                    RecordFormat::Flv => record::Format::Flv,
                    RecordFormat::Ts => record::Format::Ts,
                },
                segment: Duration::from_secs(r.segment_secs),
                segment_bytes: r.segment_bytes,
                path: r.path.clone(),
                on_record: non_empty(&r.on_record),
            })
            .collect(),
        max_age: secs(s.max_age_secs),
        max_total_bytes: (s.max_total_bytes > 0).then_some(s.max_total_bytes),
        queue_tags: s.queue_tags,
        access: Arc::clone(access),
    }
}

fn net(n: &Network) -> Option<access::IpNet> {
    access::IpNet::new(n.addr, n.prefix).ok()
}

/// Spawns every shell that has a listener; returns the TLS listeners' acceptors (for their
/// handshake-failure counts). Each listener is marked ready once its shell is spawned on it,
/// and not ready when that shell stops.
#[allow(clippy::too_many_arguments)]
pub(crate) fn spawn_all(
    tasks: &mut JoinSet<()>,
    config: &Config,
    bus: &Bus,
    access: &Arc<Access>,
    listeners: Listeners,
    certs: Option<&Arc<tls::CertStore>>,
    readiness: &Arc<Readiness>,
    reloader: &Arc<Reloader>,
    shutdown: &CancellationToken,
) -> Vec<tls::Acceptor> {
    // Every shell is handed the one `access` in its options and asks it before it accepts.
    let mut acceptors = Vec::new();
    // Every listener can be moved by a reload: the reloader keeps its handle under the key.
    // `shown` names it in log lines, `name` in the API and `/readyz`.
    let movable = |l: Option<TcpListener>, key, (shown, name): (&'static str, &'static str)| {
        let (listener, rebind) = netutil::Listener::new(shown, l?);
        reloader.add_rebind(key, name, rebind);
        Some(listener)
    };
    let rtmp_plain = movable(listeners.rtmp, "rtmp.listen", ("RTMP", "rtmp"));
    let rtmps = movable(listeners.rtmps, "rtmp.tls_listen", ("RTMPS", "rtmps"));
    let http_plain = movable(listeners.http, "http.listen", ("HTTP", "http"));
    let https = movable(listeners.https, "http.tls_listen", ("HTTPS", "https"));
    let rtsp_plain = movable(listeners.rtsp, "rtsp.listen", ("RTSP", "rtsp"));
    let rtsps = movable(listeners.rtsps, "rtsp.tls_listen", ("RTSPS", "rtsps"));
    let mms = movable(listeners.mms, "mms.listen", ("MMST", "mms"));
    // RTMPS and RTSPS have no registered ALPN id; HTTPS offers HTTP/1.1, all hyper serves here.
    let mut with_acceptor = |l: Option<netutil::Listener>, name: &'static str, alpn: &[&str]| {
        let pair = l
            .zip(certs)
            .map(|(l, c)| (l, tls::Acceptor::new(name, c, alpn)));
        acceptors.extend(pair.as_ref().map(|(_, a)| a.clone()));
        pair
    };
    let rtmp = rtmp_server::Listeners {
        plain: rtmp_plain,
        tls: with_acceptor(rtmps, "RTMPS", &[]),
    };
    let rtsp = rtsp_server::Listeners {
        plain: rtsp_plain,
        tls: with_acceptor(rtsps, "RTSPS", &[]),
    };
    let https = with_acceptor(https, "HTTPS", &["http/1.1"]);

    // Each listener's admission is one handle for its life: a reload changes it in place.
    let http_caps = conn_limits("HTTP", config.http.caps());
    let mut limits = Limits::new(bus.clone());
    limits.listeners.push(http_caps.clone());
    reloader.add_listener("http", &http_caps);
    let http_limits = live(reloader, config, move |c| http_limits(&c.http, &http_caps));

    // A TLS listener shares its section's options, so its connections count with the plain ones.
    let rtmp_caps = conn_limits("RTMP", config.rtmp.caps());
    limits.listeners.push(rtmp_caps.clone());
    reloader.add_listener("rtmp", &rtmp_caps);
    let rtmp_access = Arc::clone(access);
    let rtmp_opts = live(reloader, config, move |c| {
        rtmp_options(&c.rtmp, &c.bus, &rtmp_access, &rtmp_caps)
    });
    if rtmp.plain.is_some() || rtmp.tls.is_some() {
        let names = served(&[
            ("rtmp", rtmp.plain.is_some()),
            ("rtmps", rtmp.tls.is_some()),
        ]);
        let run = rtmp_server::serve(rtmp, bus.clone(), rtmp_opts, shutdown.clone());
        spawn_shell(tasks, "RTMP", names, readiness, run);
    }

    if rtsp.plain.is_some() || rtsp.tls.is_some() {
        let rtsp_caps = conn_limits("RTSP", config.rtsp.caps());
        limits.listeners.push(rtsp_caps.clone());
        reloader.add_listener("rtsp", &rtsp_caps);
        let (refusals, rtsp_access) = (Arc::default(), Arc::clone(access));
        let opts = live(reloader, config, move |c| {
            rtsp_options(&c.rtsp, &rtsp_access, &rtsp_caps, &refusals)
        });
        limits.rtsp = Some(Arc::clone(&opts));
        let names = served(&[
            ("rtsp", rtsp.plain.is_some()),
            ("rtsps", rtsp.tls.is_some()),
        ]);
        let run = rtsp_server::serve(rtsp, bus.clone(), opts, shutdown.clone());
        spawn_shell(tasks, "RTSP", names, readiness, run);
    }

    // MMST and MMSH share one handle on the options. The MMST port the .asx files name is the
    // one bound now. Weak: the reloader keeps this closure, which must not keep the reloader.
    let mms_caps = conn_limits("MMST", config.mms.caps());
    let (mms_reloader, mms_access) = (Arc::downgrade(reloader), Arc::clone(access));
    let mms_limits = mms_caps.clone();
    let mms_opts = live(reloader, config, move |c| {
        let port = mms_reloader.upgrade().and_then(|r| r.port_of("mms"));
        mms_options(&c.mms, &c.http, port, &mms_access, &mms_limits)
    });
    if let Some(listener) = mms {
        limits.listeners.push(mms_caps.clone());
        reloader.add_listener("mms", &mms_caps);
        let run = mms_server::serve(
            listener,
            bus.clone(),
            Arc::clone(&mms_opts),
            shutdown.clone(),
        );
        spawn_shell(tasks, "MMST", vec!["mms"], readiness, run);
    }

    let recorder = record::Recorder::new(record_options(&config.record, access));
    tasks.spawn(recorder.clone().run(bus.clone(), shutdown.clone()));

    let bus_target = bus.clone();
    reloader.on_apply(move |c| bus_target.set_options(bus_options(&c.bus)));
    let health_counts = Arc::new(crate::monitor::Counts::default());
    tasks.spawn(crate::monitor::run(
        bus.clone(),
        Arc::clone(reloader.health()),
        Arc::clone(access),
        Arc::clone(&health_counts),
        shutdown.clone(),
    ));
    // Weak: the reloader keeps this closure, which must not keep the reloader.
    let (http_reloader, http_access) = (Arc::downgrade(reloader), Arc::clone(access));
    let http_opts = live(reloader, config, move |c| {
        let ports = http_reloader.upgrade().map(|r| Ports::now(&r));
        http_options(c, &ports.unwrap_or_default(), &http_access)
    });
    let mut app = http_server::router_live(bus.clone(), http_opts);
    if config.metrics.enabled {
        let sources = crate::metrics::Sources {
            limits: limits.clone(),
            acceptors: acceptors.clone(),
            health: health_counts,
            recorder: recorder.clone(),
        };
        app = app.merge(crate::metrics::routes(
            sources,
            config.metrics.public,
            access,
        ));
    }
    app = app.merge(crate::api::routes(
        bus.clone(),
        config.rtsp.enabled,
        limits.clone(),
        access,
        reloader,
    ));
    app = app.merge(crate::control::routes(
        bus.clone(),
        limits,
        access,
        reloader,
    ));
    app = app.merge(crate::recordings::routes(recorder, access));
    if config.hls.enabled {
        let hls_access = Arc::clone(access);
        let hls_opts = live(reloader, config, move |c| hls_options(&c.hls, &hls_access));
        app = app.merge(hls_server::router_live(bus.clone(), hls_opts));
    }
    // The probes need no token: they sit beside the API's routes, not behind its layer.
    app = app.merge(crate::health::routes(Arc::clone(readiness)));
    // Every error answer under /api/ is JSON, the router's own 404 and 405 included.
    app = app.layer(axum::middleware::from_fn(http_server::json_errors));
    if config.mms.enabled {
        // MMSH shares the HTTP port: Windows Media clients are recognised by their headers
        // before any other route sees the request.
        app = mms_server::mmsh_layer_or_router(app, bus.clone(), mms_opts);
    }
    // Served by `crate::http_listener`, not `axum::serve`, for its timeouts and connection caps.
    if http_plain.is_some() || https.is_some() {
        let names = served(&[("http", http_plain.is_some()), ("https", https.is_some())]);
        let serve =
            crate::http_listener::serve(http_plain, https, app, http_limits, shutdown.clone());
        spawn_shell(tasks, "HTTP", names, readiness, async move {
            serve.await;
            Ok(())
        });
    }
    acceptors
}

/// The names of the listeners a shell serves, of `(name, on)`.
fn served(named: &[(&'static str, bool)]) -> Vec<&'static str> {
    named
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect()
}

/// Runs one protocol shell on the listeners `names`, which are ready from now until it stops;
/// if it fails (its listener broke), the error is logged and the rest of the gateway keeps
/// serving.
fn spawn_shell(
    tasks: &mut JoinSet<()>,
    shell: &'static str,
    names: Vec<&'static str>,
    readiness: &Arc<Readiness>,
    run: impl Future<Output = std::io::Result<()>> + Send + 'static,
) {
    for name in &names {
        readiness.set(name, true);
    }
    let readiness = Arc::clone(readiness);
    tasks.spawn(async move {
        if let Err(err) = run.await {
            tracing::error!("{shell} server stopped: {err}");
        }
        for name in &names {
            readiness.set(name, false);
        }
    });
}

fn http_limits(s: &HttpSection, conn_limits: &ConnLimits) -> HttpLimits {
    HttpLimits {
        header_timeout: Duration::from_secs(s.header_timeout_secs),
        idle_timeout: Duration::from_secs(s.idle_timeout_secs),
        conn_limits: conn_limits.clone(),
        send_timeout: Duration::from_secs(s.send_timeout_secs),
        send_buffer: (s.send_buffer_bytes > 0).then_some(s.send_buffer_bytes),
    }
}
