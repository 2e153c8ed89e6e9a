//! One struct per `[section]` of the file. Defaults here must match config/gateway.toml (a test
//! checks that the shipped file parses to exactly these defaults).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub log: LogSection,
    pub bus: BusSection,
    pub rtmp: RtmpSection,
    pub http: HttpSection,
    pub hls: HlsSection,
    pub rtsp: RtspSection,
    pub mms: MmsSection,
    pub auth: crate::auth::AuthSection,
    pub tls: TlsSection,
    pub metrics: MetricsSection,
    pub health: HealthSection,
    pub record: crate::record::RecordSection,
}

/// A problem found by validation: the dotted key and what is wrong with it.
pub(crate) type Invalid = (String, String);

impl Config {
    pub(crate) fn validate(&self) -> Result<(), Invalid> {
        self.log.validate()?;
        self.bus.validate()?;
        self.rtmp.validate()?;
        self.http.validate()?;
        self.hls.validate()?;
        self.rtsp.validate()?;
        self.mms.validate()?;
        self.auth.validate()?;
        self.tls.validate()?;
        self.health.validate()?;
        self.record.validate()?;
        let tls_listeners = [
            ("rtmp.tls_listen", &self.rtmp.tls_listen),
            ("http.tls_listen", &self.http.tls_listen),
            ("rtsp.tls_listen", &self.rtsp.tls_listen),
        ];
        for (key, value) in tls_listeners {
            if !value.is_empty() && !self.tls.is_configured() {
                let problem = format!(
                    "is \"{value}\", which needs a certificate: set tls.cert_file and tls.key_file"
                );
                return Err((key.to_owned(), problem));
            }
        }
        Ok(())
    }
}

/// A listener that may be off: empty, or an IP:port.
fn check_optional_listen(key: &str, value: &str, example: &str) -> Result<(), Invalid> {
    match value.is_empty() {
        true => Ok(()),
        false => check_listen(key, value, example),
    }
}

fn check_listen(key: &str, value: &str, example: &str) -> Result<(), Invalid> {
    value.parse::<SocketAddr>().map(|_| ()).map_err(|_| {
        (
            key.to_owned(),
            format!("must be an IP:port such as \"{example}\", got \"{value}\""),
        )
    })
}

pub(crate) fn check_range<T: PartialOrd + std::fmt::Display>(
    key: &str,
    v: T,
    lo: T,
    hi: T,
) -> Result<(), Invalid> {
    if v < lo || v > hi {
        return Err((
            key.to_owned(),
            format!("must be between {lo} and {hi}, got {v}"),
        ));
    }
    Ok(())
}

/// A send buffer size: 0 (the kernel's autotuning) or 4 KiB to 64 MiB.
fn check_send_buffer(key: &str, v: usize) -> Result<(), Invalid> {
    if v == 0 {
        return Ok(());
    }
    check_range(key, v, 4096, 64 << 20)
}

/// Default of every listener's `max_connections`.
const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default of every listener's `max_connections_per_ip`.
const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 1000;
/// Default of every listener's `connection_rate_per_ip` (new connections a second from one
/// client): above the 500 a second a load tool such as gwload ramps up at from one address.
const DEFAULT_CONNECTION_RATE_PER_IP: u32 = 500;
/// Default of every listener's `connection_burst_per_ip`: as many as one client may hold open.
const DEFAULT_CONNECTION_BURST_PER_IP: u32 = 1000;

/// The admission keys every listener section (`[rtmp]`, `[http]`, `[rtsp]`, `[mms]`) has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerCaps {
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub connection_rate_per_ip: u32,
    pub connection_burst_per_ip: u32,
}

macro_rules! listener_caps {
    ($($section:ty),*) => {$(
        impl $section {
            /// This listener's admission keys.
            pub fn caps(&self) -> ListenerCaps {
                ListenerCaps {
                    max_connections: self.max_connections,
                    max_connections_per_ip: self.max_connections_per_ip,
                    connection_rate_per_ip: self.connection_rate_per_ip,
                    connection_burst_per_ip: self.connection_burst_per_ip,
                }
            }

            /// Sets this listener's admission keys.
            pub fn set_caps(&mut self, c: ListenerCaps) {
                self.max_connections = c.max_connections;
                self.max_connections_per_ip = c.max_connections_per_ip;
                self.connection_rate_per_ip = c.connection_rate_per_ip;
                self.connection_burst_per_ip = c.connection_burst_per_ip;
            }
        }
    )*};
}

listener_caps!(RtmpSection, HttpSection, RtspSection, MmsSection);

/// Checks `{section}.max_connections` and the other admission keys.
fn check_caps(section: &str, c: ListenerCaps) -> Result<(), Invalid> {
    let key = |k: &str| format!("{section}.{k}");
    check_range(&key("max_connections"), c.max_connections, 1, 1_000_000)?;
    check_range(
        &key("max_connections_per_ip"),
        c.max_connections_per_ip,
        1,
        1_000_000,
    )?;
    check_range(
        &key("connection_rate_per_ip"),
        c.connection_rate_per_ip,
        1,
        1_000_000,
    )?;
    check_range(
        &key("connection_burst_per_ip"),
        c.connection_burst_per_ip,
        1,
        1_000_000,
    )
}

/// `[log]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// error, warn, info, debug or trace; or a tracing filter such as "info,rtmp_server=debug".
    pub level: String,
    /// How each line is written: readable text, or one JSON object per line.
    pub format: LogFormat,
}

/// `log.format`: `"text"` (the default) or `"json"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines: time, level, the connection's span, target, message and fields.
    #[default]
    Text,
    /// One JSON object per line (for log shippers): `timestamp`, `level`, `fields`, `target`,
    /// and `span`/`spans` with the connection's `id` and `peer`.
    Json,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl LogSection {
    fn validate(&self) -> Result<(), Invalid> {
        if self.level.trim().is_empty() {
            return Err((
                "log.level".into(),
                "must not be empty (try \"info\")".into(),
            ));
        }
        Ok(())
    }
}

/// `[bus]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusSection {
    pub queue_tags: usize,
    pub gop_max_tags: usize,
    pub gop_max_bytes: usize,
    pub audio_only_cache_ms: u64,
    pub timestamp_jump_ms: u64,
    pub unpublish_grace_secs: u64,
    pub wait_for_publisher_secs: u64,
    /// A publisher on `{app}/{stream}{backup_suffix}` is the backup of `{app}/{stream}`; empty
    /// turns backup publishers off.
    pub backup_suffix: String,
    /// The backup takes over after the primary has sent nothing for this many milliseconds.
    pub failover_ms: u64,
    /// Streams on the bus at most (published, in their grace period, or awaited by players),
    /// and at most in one app (the key's part before its first '/').
    pub max_streams: usize,
    pub max_streams_per_app: usize,
}

impl Default for BusSection {
    fn default() -> Self {
        BusSection {
            queue_tags: 512,
            gop_max_tags: 2048,
            gop_max_bytes: 16 * 1024 * 1024,
            audio_only_cache_ms: 1000,
            timestamp_jump_ms: 5000,
            unpublish_grace_secs: 5,
            wait_for_publisher_secs: 30,
            backup_suffix: String::new(),
            failover_ms: 1000,
            max_streams: 10_000,
            max_streams_per_app: 1000,
        }
    }
}

impl BusSection {
    fn validate(&self) -> Result<(), Invalid> {
        check_range("bus.queue_tags", self.queue_tags, 16, 1 << 20)?;
        check_range("bus.gop_max_tags", self.gop_max_tags, 1, 1 << 20)?;
        check_range("bus.gop_max_bytes", self.gop_max_bytes, 1024, 1 << 30)?;
        check_range(
            "bus.timestamp_jump_ms",
            self.timestamp_jump_ms,
            100,
            3_600_000,
        )?;
        check_range("bus.failover_ms", self.failover_ms, 100, 60_000)?;
        check_range("bus.max_streams", self.max_streams, 1, 1_000_000)?;
        check_range(
            "bus.max_streams_per_app",
            self.max_streams_per_app,
            1,
            self.max_streams,
        )?;
        if self.backup_suffix.contains('/') || self.backup_suffix.len() > 64 {
            return Err((
                "bus.backup_suffix".into(),
                format!(
                    "must be at most 64 characters without '/' (such as \"_backup\"), got \"{}\"",
                    self.backup_suffix
                ),
            ));
        }
        Ok(())
    }
}

/// `[rtmp]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtmpSection {
    /// The plain RTMP listener; empty turns it off.
    pub listen: String,
    /// The RTMPS listener (RTMP in TLS, `rtmps://`); empty (the default) turns it off.
    pub tls_listen: String,
    pub chunk_size: u32,
    pub max_message_size: u32,
    pub ack_window: u32,
    pub wait_for_publisher: bool,
    pub handshake_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub write_delay_ms: u64,
    /// A player whose socket accepts no bytes for this long is disconnected and counted.
    pub send_timeout_secs: u64,
    /// SO_SNDBUF of accepted connections in bytes; 0 keeps the kernel's autotuning.
    pub send_buffer_bytes: usize,
    /// Open connections on this listener in total, and from one client IP address.
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// New connections a second from one client IP address (an IPv6 /64), sustained, and how
    /// many it may open at once before that rate applies.
    pub connection_rate_per_ip: u32,
    pub connection_burst_per_ip: u32,
}

impl Default for RtmpSection {
    fn default() -> Self {
        RtmpSection {
            listen: "0.0.0.0:1935".into(),
            tls_listen: String::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            connection_rate_per_ip: DEFAULT_CONNECTION_RATE_PER_IP,
            connection_burst_per_ip: DEFAULT_CONNECTION_BURST_PER_IP,
            chunk_size: 4096,
            max_message_size: 8 * 1024 * 1024,
            ack_window: 2_500_000,
            wait_for_publisher: false,
            handshake_timeout_secs: 10,
            idle_timeout_secs: 30,
            write_delay_ms: DEFAULT_WRITE_DELAY_MS,
            send_timeout_secs: DEFAULT_SEND_TIMEOUT_SECS,
            send_buffer_bytes: 0,
        }
    }
}

/// Default of `rtmp.write_delay_ms`, `http.flv_write_delay_ms` and `rtsp.tcp_write_delay_ms`.
const DEFAULT_WRITE_DELAY_MS: u64 = 80;

/// Default of `rtmp.send_timeout_secs`, `http.send_timeout_secs`, `rtsp.send_timeout_secs` and
/// `mms.send_timeout_secs`.
const DEFAULT_SEND_TIMEOUT_SECS: u64 = 20;
/// Longest send timeout accepted, in seconds.
const MAX_SEND_TIMEOUT_SECS: u64 = 3600;

impl RtmpSection {
    fn validate(&self) -> Result<(), Invalid> {
        check_optional_listen("rtmp.listen", &self.listen, "0.0.0.0:1935")?;
        check_optional_listen("rtmp.tls_listen", &self.tls_listen, "0.0.0.0:1936")?;
        check_caps("rtmp", self.caps())?;
        check_range("rtmp.chunk_size", self.chunk_size, 128, 65536)?;
        check_range(
            "rtmp.max_message_size",
            self.max_message_size,
            1024,
            0x00FF_FFFF,
        )?;
        check_range("rtmp.ack_window", self.ack_window, 4096, u32::MAX)?;
        check_range(
            "rtmp.handshake_timeout_secs",
            self.handshake_timeout_secs,
            1,
            3600,
        )?;
        check_range("rtmp.idle_timeout_secs", self.idle_timeout_secs, 1, 86400)?;
        check_range(
            "rtmp.send_timeout_secs",
            self.send_timeout_secs,
            1,
            MAX_SEND_TIMEOUT_SECS,
        )?;
        check_send_buffer("rtmp.send_buffer_bytes", self.send_buffer_bytes)?;
        check_range("rtmp.write_delay_ms", self.write_delay_ms, 0, 1000)
    }
}

/// `[http]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    /// The plain HTTP listener; empty turns it off.
    pub listen: String,
    /// The HTTPS listener (the same routes in TLS, WebSockets as `wss://`); empty turns it off.
    pub tls_listen: String,
    /// Directory holding the web page (index.html, player.html, node_modules for hls.js).
    pub web_root: String,
    /// Host name or address put into the RTMP/RTSP/MMS URLs the web page shows; empty = the
    /// request's Host.
    pub public_host: String,
    /// Base URL of this listener as viewers reach it (e.g. behind a proxy); empty = http:// + Host.
    pub public_url: String,
    /// Write batching of HTTP-FLV and WebSocket-FLV viewers, like `rtmp.write_delay_ms`.
    pub flv_write_delay_ms: u64,
    /// A connection whose socket accepts no bytes for this long while a response (HTTP-FLV,
    /// WebSocket-FLV, MMSH, HLS) is being written is closed; a viewer on it is counted.
    pub send_timeout_secs: u64,
    /// SO_SNDBUF of accepted connections in bytes; 0 keeps the kernel's autotuning.
    pub send_buffer_bytes: usize,
    /// A request head must arrive whole within this many seconds of the connection opening (or
    /// of its first byte on a kept-alive connection).
    pub header_timeout_secs: u64,
    /// A kept-alive connection with no request in flight is closed after this many seconds.
    pub idle_timeout_secs: u64,
    /// Open connections on the HTTP listener (WebSockets included) in total, and from one client
    /// IP address.
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// New connections a second from one client IP address (an IPv6 /64), sustained, and how
    /// many it may open at once before that rate applies.
    pub connection_rate_per_ip: u32,
    pub connection_burst_per_ip: u32,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            listen: "0.0.0.0:8080".into(),
            tls_listen: String::new(),
            web_root: "web".into(),
            public_host: String::new(),
            public_url: String::new(),
            flv_write_delay_ms: DEFAULT_WRITE_DELAY_MS,
            send_timeout_secs: DEFAULT_SEND_TIMEOUT_SECS,
            send_buffer_bytes: 0,
            header_timeout_secs: 10,
            idle_timeout_secs: 30,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            connection_rate_per_ip: DEFAULT_CONNECTION_RATE_PER_IP,
            connection_burst_per_ip: DEFAULT_CONNECTION_BURST_PER_IP,
        }
    }
}

impl HttpSection {
    fn validate(&self) -> Result<(), Invalid> {
        check_optional_listen("http.listen", &self.listen, "0.0.0.0:8080")?;
        check_optional_listen("http.tls_listen", &self.tls_listen, "0.0.0.0:8443")?;
        let url = &self.public_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            let problem = format!("must start with http:// or https://, got \"{url}\"");
            return Err(("http.public_url".into(), problem));
        }
        check_range("http.flv_write_delay_ms", self.flv_write_delay_ms, 0, 1000)?;
        check_range(
            "http.send_timeout_secs",
            self.send_timeout_secs,
            1,
            MAX_SEND_TIMEOUT_SECS,
        )?;
        check_send_buffer("http.send_buffer_bytes", self.send_buffer_bytes)?;
        check_range(
            "http.header_timeout_secs",
            self.header_timeout_secs,
            1,
            3600,
        )?;
        check_range("http.idle_timeout_secs", self.idle_timeout_secs, 1, 86400)?;
        check_caps("http", self.caps())
    }
}

/// `[hls]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HlsSection {
    pub enabled: bool,
    pub target_duration_ms: u64,
    pub window: usize,
    /// Segments kept downloadable after they leave the playlist, for players that lag behind.
    pub retain_after_window: usize,
    /// How long a playlist request waits for a stream's first segment.
    pub playlist_wait_ms: u64,
    pub always_on: bool,
    pub idle_timeout_secs: u64,
    /// Apps whose segments are AES-128 encrypted.
    pub encrypt_apps: Vec<String>,
    pub key_rotation_segments: u64,
}

impl Default for HlsSection {
    fn default() -> Self {
        HlsSection {
            enabled: true,
            target_duration_ms: 2000,
            window: 6,
            retain_after_window: 3,
            playlist_wait_ms: 5000,
            always_on: false,
            idle_timeout_secs: 30,
            encrypt_apps: Vec::new(),
            key_rotation_segments: 10,
        }
    }
}

impl HlsSection {
    fn validate(&self) -> Result<(), Invalid> {
        check_range(
            "hls.target_duration_ms",
            self.target_duration_ms,
            500,
            60_000,
        )?;
        check_range("hls.window", self.window, 2, 100)?;
        check_range("hls.retain_after_window", self.retain_after_window, 0, 100)?;
        check_range("hls.playlist_wait_ms", self.playlist_wait_ms, 0, 60_000)?;
        check_range(
            "hls.key_rotation_segments",
            self.key_rotation_segments,
            1,
            1_000_000,
        )
    }
}

/// `[rtsp]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtspSection {
    pub enabled: bool,
    /// The plain RTSP listener; empty turns it off.
    pub listen: String,
    /// The RTSPS listener (RTSP in TLS, media interleaved only); empty turns it off.
    pub tls_listen: String,
    /// Open connections on this listener in total, and from one client IP address.
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// New connections a second from one client IP address (an IPv6 /64), sustained, and how
    /// many it may open at once before that rate applies.
    pub connection_rate_per_ip: u32,
    pub connection_burst_per_ip: u32,
    /// First and last UDP port for RTP/RTCP pairs (RTP on even ports, RTCP on the next odd one).
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    pub mtu: usize,
    pub session_timeout_secs: u64,
    /// Seconds between RTCP Sender Reports on each track.
    pub sender_report_interval_secs: u64,
    /// Access units a session may fall behind before it skips to the next keyframe.
    pub queue_units: usize,
    /// Write batching of TCP-interleaved sessions, like `rtmp.write_delay_ms`.
    pub tcp_write_delay_ms: u64,
    /// A connection (TCP-interleaved media or responses) whose socket accepts no bytes for this
    /// long is closed; a playing session on it is counted.
    pub send_timeout_secs: u64,
    /// SO_SNDBUF of accepted connections in bytes; 0 keeps the kernel's autotuning.
    pub send_buffer_bytes: usize,
    /// The most sessions one client IP address may hold at once.
    pub max_sessions_per_ip: usize,
    /// A connection without a session that completes no request for this long is closed.
    pub request_timeout_secs: u64,
}

impl Default for RtspSection {
    fn default() -> Self {
        RtspSection {
            enabled: true,
            listen: "0.0.0.0:8554".into(),
            tls_listen: String::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            connection_rate_per_ip: DEFAULT_CONNECTION_RATE_PER_IP,
            connection_burst_per_ip: DEFAULT_CONNECTION_BURST_PER_IP,
            rtp_port_min: 20000,
            rtp_port_max: 20999,
            mtu: 1400,
            session_timeout_secs: 60,
            sender_report_interval_secs: 5,
            queue_units: 512,
            tcp_write_delay_ms: DEFAULT_WRITE_DELAY_MS,
            send_timeout_secs: DEFAULT_SEND_TIMEOUT_SECS,
            send_buffer_bytes: 0,
            max_sessions_per_ip: 32,
            request_timeout_secs: 10,
        }
    }
}

impl RtspSection {
    fn validate(&self) -> Result<(), Invalid> {
        check_optional_listen("rtsp.listen", &self.listen, "0.0.0.0:8554")?;
        check_optional_listen("rtsp.tls_listen", &self.tls_listen, "0.0.0.0:8322")?;
        check_caps("rtsp", self.caps())?;
        check_range("rtsp.rtp_port_min", self.rtp_port_min, 1024, 65532)?;
        check_range(
            "rtsp.rtp_port_max",
            self.rtp_port_max,
            self.rtp_port_min.saturating_add(3),
            65535,
        )?;
        check_range("rtsp.mtu", self.mtu, 576, 65000)?;
        check_range(
            "rtsp.session_timeout_secs",
            self.session_timeout_secs,
            5,
            3600,
        )?;
        check_range(
            "rtsp.sender_report_interval_secs",
            self.sender_report_interval_secs,
            1,
            60,
        )?;
        check_range("rtsp.queue_units", self.queue_units, 16, 1 << 16)?;
        check_range("rtsp.tcp_write_delay_ms", self.tcp_write_delay_ms, 0, 1000)?;
        check_range(
            "rtsp.send_timeout_secs",
            self.send_timeout_secs,
            1,
            MAX_SEND_TIMEOUT_SECS,
        )?;
        check_send_buffer("rtsp.send_buffer_bytes", self.send_buffer_bytes)?;
        check_range(
            "rtsp.max_sessions_per_ip",
            self.max_sessions_per_ip,
            1,
            100_000,
        )?;
        check_range(
            "rtsp.request_timeout_secs",
            self.request_timeout_secs,
            1,
            3600,
        )
    }
}

/// `[mms]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MmsSection {
    pub enabled: bool,
    pub listen: String,
    /// Open MMST connections in total, and from one client IP address (MMSH counts under
    /// `[http]`).
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// New connections a second from one client IP address (an IPv6 /64), sustained, and how
    /// many it may open at once before that rate applies.
    pub connection_rate_per_ip: u32,
    pub connection_burst_per_ip: u32,
    /// ASF data packet size in bytes.
    pub packet_size: usize,
    /// A partly filled packet is sent once media this much newer arrives (latency bound).
    pub max_packet_delay_ms: u32,
    /// ASF preroll (buffering hint for Windows Media Player), milliseconds.
    pub preroll_ms: u32,
    /// An MMST client that completes no command for this long before it plays is disconnected.
    pub idle_timeout_secs: u64,
    /// An MMST viewer whose socket accepts no bytes for this long is disconnected and counted.
    pub send_timeout_secs: u64,
    #[serde(rename = "publishing_point")]
    pub publishing_points: Vec<PublishingPoint>,
}

impl Default for MmsSection {
    fn default() -> Self {
        MmsSection {
            enabled: true,
            listen: "0.0.0.0:1755".into(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            connection_rate_per_ip: DEFAULT_CONNECTION_RATE_PER_IP,
            connection_burst_per_ip: DEFAULT_CONNECTION_BURST_PER_IP,
            packet_size: 4096,
            max_packet_delay_ms: 250,
            preroll_ms: 0,
            idle_timeout_secs: 30,
            send_timeout_secs: DEFAULT_SEND_TIMEOUT_SECS,
            publishing_points: Vec::new(),
        }
    }
}

impl MmsSection {
    fn validate(&self) -> Result<(), Invalid> {
        check_listen("mms.listen", &self.listen, "0.0.0.0:1755")?;
        check_caps("mms", self.caps())?;
        check_range("mms.packet_size", self.packet_size, 256, 65000)?;
        check_range(
            "mms.max_packet_delay_ms",
            self.max_packet_delay_ms,
            10,
            10_000,
        )?;
        check_range("mms.preroll_ms", self.preroll_ms, 0, 60_000)?;
        check_range("mms.idle_timeout_secs", self.idle_timeout_secs, 1, 3600)?;
        check_range(
            "mms.send_timeout_secs",
            self.send_timeout_secs,
            1,
            MAX_SEND_TIMEOUT_SECS,
        )?;
        for p in &self.publishing_points {
            if p.name.is_empty() || p.name.contains('/') {
                let problem = format!("must be a single path segment, got \"{}\"", p.name);
                return Err(("mms.publishing_point.name".into(), problem));
            }
            if !p.stream.contains('/') {
                let problem = format!("must be \"app/stream\", got \"{}\"", p.stream);
                return Err(("mms.publishing_point.stream".into(), problem));
            }
        }
        Ok(())
    }
}

/// `[[mms.publishing_point]]`: an old Windows Media publishing-point name mapped to a bus stream.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PublishingPoint {
    pub name: String,
    pub stream: String,
}

/// `[tls]`: the certificate every TLS listener (`*.tls_listen`) presents.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain, the server's certificate first.
    pub cert_file: String,
    /// PEM private key of that certificate (PKCS#8, RSA or SEC1).
    pub key_file: String,
    /// How often, in seconds, the two files' modification times are checked; changed files are
    /// loaded for new handshakes without closing open connections.
    pub reload_check_secs: u64,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            cert_file: String::new(),
            key_file: String::new(),
            reload_check_secs: 10,
        }
    }
}

impl TlsSection {
    /// Both files are named.
    pub fn is_configured(&self) -> bool {
        !self.cert_file.is_empty() && !self.key_file.is_empty()
    }

    fn validate(&self) -> Result<(), Invalid> {
        check_range("tls.reload_check_secs", self.reload_check_secs, 1, 86400)?;
        match (self.cert_file.is_empty(), self.key_file.is_empty()) {
            (true, false) => Err((
                "tls.key_file".into(),
                "is set but tls.cert_file is not; set both or neither".into(),
            )),
            (false, true) => Err((
                "tls.cert_file".into(),
                "is set but tls.key_file is not; set both or neither".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// `[metrics]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// Serve `GET /metrics` (Prometheus text format) on the HTTP listeners.
    pub enabled: bool,
    /// Serve it without the API token (for a scraper on a trusted network); by default it needs
    /// the token exactly like `/api/*`.
    pub public: bool,
}

impl Default for MetricsSection {
    fn default() -> Self {
        MetricsSection {
            enabled: true,
            public: false,
        }
    }
}

/// `[health]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HealthSection {
    /// A live stream whose publisher sent nothing for this many seconds is unhealthy; 0: off.
    pub publisher_silent_secs: u64,
    /// ... or whose last two keyframes were further apart than this (stream time); 0: off.
    pub max_keyframe_interval_secs: u64,
    /// ... or whose RTSP viewers report losing more than this percentage of packets; 0: off.
    pub max_viewer_loss_percent: u32,
    /// POSTed to when a stream becomes unhealthy and when it recovers; empty: none.
    pub on_stream_unhealthy: String,
}

impl Default for HealthSection {
    fn default() -> Self {
        HealthSection {
            publisher_silent_secs: 5,
            max_keyframe_interval_secs: 10,
            max_viewer_loss_percent: 5,
            on_stream_unhealthy: String::new(),
        }
    }
}

impl HealthSection {
    fn validate(&self) -> Result<(), Invalid> {
        check_range(
            "health.publisher_silent_secs",
            self.publisher_silent_secs,
            0,
            3600,
        )?;
        check_range(
            "health.max_keyframe_interval_secs",
            self.max_keyframe_interval_secs,
            0,
            3600,
        )?;
        check_range(
            "health.max_viewer_loss_percent",
            self.max_viewer_loss_percent,
            0,
            100,
        )?;
        crate::auth::check_url("health.on_stream_unhealthy", &self.on_stream_unhealthy)
    }
}
