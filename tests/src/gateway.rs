//! The gateway under test, started in-process on loopback ports chosen by the kernel.

use std::net::SocketAddr;
use std::time::Duration;

use gateway::Gateway;
use gateway_config::Config;

use crate::tools::workspace_root;

/// The stream key every interop cell publishes to (`rtmp://host/live/test`).
pub const APP: &str = "live";
pub const STREAM: &str = "test";

/// A gateway running on its own tokio runtime; shut down (gracefully, then the runtime is
/// dropped) when this is dropped, so a failing test cannot leave it serving.
pub struct TestGateway {
    gateway: Option<Gateway>,
    runtime: tokio::runtime::Runtime,
}

impl TestGateway {
    /// Starts a gateway on the default configuration with every listener on 127.0.0.1:0.
    pub fn start() -> TestGateway {
        TestGateway::start_with(|_| {})
    }

    /// As [`TestGateway::start`], letting `edit` change the configuration first.
    pub fn start_with(edit: impl FnOnce(&mut Config)) -> TestGateway {
        let mut config = loopback_config();
        edit(&mut config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("gateway-under-test")
            .build()
            .expect("a tokio runtime can be built");
        let gateway = runtime
            .block_on(Gateway::start(&config))
            .unwrap_or_else(|e| panic!("the gateway did not start: {e}"));
        TestGateway {
            gateway: Some(gateway),
            runtime,
        }
    }

    fn gateway(&self) -> &Gateway {
        self.gateway.as_ref().expect("present until drop")
    }

    /// The gateway's media bus (to wait for a publisher to arrive, or to inspect stream state).
    pub fn bus(&self) -> &bus::Bus {
        self.gateway().bus()
    }

    pub fn rtmp_addr(&self) -> SocketAddr {
        self.gateway().rtmp_addr()
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.gateway().http_addr()
    }

    pub fn rtsp_addr(&self) -> Option<SocketAddr> {
        self.gateway().rtsp_addr()
    }

    pub fn mms_addr(&self) -> Option<SocketAddr> {
        self.gateway().mms_addr()
    }

    /// The TLS listeners (see [`with_tls`]).
    pub fn rtmps_addr(&self) -> Option<SocketAddr> {
        self.gateway().rtmps_addr()
    }

    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.gateway().https_addr()
    }

    pub fn rtsps_addr(&self) -> Option<SocketAddr> {
        self.gateway().rtsps_addr()
    }

    /// Every bound listener by name ("rtmp", "rtmps", "http", "https", ...).
    pub fn listeners(&self) -> Vec<(&'static str, SocketAddr)> {
        self.gateway().listeners().to_vec()
    }

    /// Which configured listeners serve (what `GET /readyz` answers).
    pub fn readiness(&self) -> &std::sync::Arc<gateway::Readiness> {
        self.gateway().readiness()
    }

    /// TLS handshakes that failed on any TLS listener so far.
    pub fn failed_tls_handshakes(&self) -> u64 {
        self.gateway().failed_tls_handshakes()
    }

    /// `rtmp://127.0.0.1:PORT/<key>`, e.g. `rtmp_url("live/test")`.
    pub fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://{}/{key}", self.rtmp_addr())
    }

    /// `http://127.0.0.1:PORT<path>`; `path` starts with `/`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http_addr())
    }

    /// True once a publisher is live on `key` ("app/stream"), polling until `timeout`.
    pub fn wait_live(&self, key: &str, timeout: Duration) -> bool {
        crate::wait_until(timeout, || {
            self.bus().stream(key).is_some_and(|s| s.is_live())
        })
    }

    /// Runs a future on the gateway's runtime (for async clients such as retina).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            self.runtime.block_on(gateway.shutdown());
        }
    }
}

/// The default configuration with every listener on 127.0.0.1:0 (tests run in parallel, so no
/// fixed port may be used) and the web root found from the repository, not the working directory.
pub fn loopback_config() -> Config {
    let mut c = Config::default();
    let any = "127.0.0.1:0".to_owned();
    c.rtmp.listen = any.clone();
    c.http.listen = any.clone();
    c.rtsp.listen = any.clone();
    c.mms.listen = any;
    // Each test process takes its own 100 RTP/RTCP port pairs, so test binaries run side by side
    // (or a case that holds many pairs) do not take each other's UDP ports.
    let base = 20_000 + (std::process::id() % 150) as u16 * 200;
    c.rtsp.rtp_port_min = base;
    c.rtsp.rtp_port_max = base + 199;
    c.http.web_root = workspace_root().join("web").to_string_lossy().into_owned();
    c
}

/// Turns on the RTMPS, HTTPS and RTSPS listeners on 127.0.0.1:0 with the PEM files `cert` and
/// `key` (a test makes them at run time), checked for changes every second.
pub fn with_tls(c: &mut Config, cert: &std::path::Path, key: &std::path::Path) {
    let any = "127.0.0.1:0".to_owned();
    c.rtmp.tls_listen = any.clone();
    c.http.tls_listen = any.clone();
    c.rtsp.tls_listen = any;
    c.tls.cert_file = cert.to_string_lossy().into_owned();
    c.tls.key_file = key.to_string_lossy().into_owned();
    c.tls.reload_check_secs = 1;
}

/// Something publishing into the gateway: an ffmpeg or a GStreamer process, or the project's own
/// RTMP client (for what ffmpeg 5.1 cannot publish, such as H.265 over Enhanced RTMP).
pub enum Publisher {
    Ffmpeg(crate::Ffmpeg),
    Gst(crate::Gst),
    Rtmp(crate::RtmpPublisher),
}

impl Publisher {
    /// Panics with the publisher's output if it has exited.
    pub fn assert_running(&mut self) {
        match self {
            Publisher::Ffmpeg(p) => p.assert_running(),
            Publisher::Gst(p) => p.assert_running(),
            Publisher::Rtmp(p) => p.assert_running(),
        }
    }

    pub fn log(&self) -> String {
        match self {
            Publisher::Ffmpeg(p) => p.log(),
            Publisher::Gst(p) => p.log(),
            Publisher::Rtmp(p) => p.ended().unwrap_or_else(|| "still publishing".to_owned()),
        }
    }
}

/// A gateway with a live stream on `live/test`: the starting point of every egress cell.
/// The publisher is stopped before the gateway shuts down.
pub struct Live {
    pub publisher: Publisher,
    pub gateway: TestGateway,
}

/// How long a publisher gets to connect and send its first tags (x264enc and ffmpeg start-up
/// included; two cores shared by parallel tests).
pub const LIVE_TIMEOUT: Duration = Duration::from_secs(30);

impl Live {
    /// The bus key of the live stream.
    pub const KEY: &'static str = "live/test";

    /// Starts a gateway and an ffmpeg publishing the fixture `name` in a loop over RTMP.
    pub fn ffmpeg(name: &str) -> Live {
        Live::ffmpeg_with(name, |_| {})
    }

    /// As [`Live::ffmpeg`], letting `edit` change the gateway's configuration first.
    pub fn ffmpeg_with(name: &str, edit: impl FnOnce(&mut Config)) -> Live {
        let gateway = TestGateway::start_with(edit);
        let url = gateway.rtmp_url(Live::KEY);
        let publisher = Publisher::Ffmpeg(crate::Ffmpeg::publish(&crate::fixture(name), &url));
        Live::wait(gateway, publisher)
    }

    /// Starts a gateway and a GStreamer pipeline built by `pipeline(rtmp_url)`.
    pub fn gst(pipeline: impl FnOnce(&str) -> String) -> Live {
        let gateway = TestGateway::start();
        let url = gateway.rtmp_url(Live::KEY);
        let publisher = Publisher::Gst(crate::Gst::spawn(&pipeline(&url)));
        Live::wait(gateway, publisher)
    }

    /// Starts a gateway and the project's own RTMP client publishing `tags` in a loop.
    pub fn rtmp_client(tags: &[flv::FlvTag]) -> Live {
        let gateway = TestGateway::start();
        let url = gateway.rtmp_url(Live::KEY);
        let publisher = Publisher::Rtmp(crate::RtmpPublisher::publish(tags, &url));
        Live::wait(gateway, publisher)
    }

    fn wait(gateway: TestGateway, mut publisher: Publisher) -> Live {
        if !gateway.wait_live(Live::KEY, LIVE_TIMEOUT) {
            publisher.assert_running();
            panic!(
                "{} did not become live within {LIVE_TIMEOUT:?}; publisher output:\n{}",
                Live::KEY,
                publisher.log()
            );
        }
        Live { publisher, gateway }
    }

    /// `rtmp://127.0.0.1:PORT/live/test`.
    pub fn rtmp_url(&self) -> String {
        self.gateway.rtmp_url(Live::KEY)
    }

    /// Panics if the publisher died while a client was playing: the client's result would then
    /// say nothing about the gateway.
    pub fn assert_publishing(&mut self) {
        self.publisher.assert_running();
    }
}

impl Live {
    /// `http://127.0.0.1:PORT<path>` on the gateway's HTTP listener.
    pub fn http_url(&self, path: &str) -> String {
        self.gateway.http_url(path)
    }

    /// Requests the HLS playlist of the live stream until it lists at least `segments` segments
    /// (the HLS muxer starts on the first request and needs a keyframe-to-keyframe run to cut
    /// the first segment). Returns the playlist URL; panics with the last answer on timeout.
    pub fn wait_hls(&mut self, segments: usize, timeout: Duration) -> String {
        let url = self.http_url(&format!("/{}/index.m3u8", Live::KEY));
        let mut last = String::from("no answer");
        let ready = crate::wait_until(timeout, || {
            match crate::http_get(&url, Duration::from_secs(5)) {
                Ok(r) => {
                    let text = r.text();
                    let n = text.matches("#EXTINF").count();
                    last = format!("{} {text}", r.status);
                    r.status == 200 && n >= segments
                }
                Err(e) => {
                    last = e;
                    false
                }
            }
        });
        self.assert_publishing();
        assert!(
            ready,
            "{url} did not list {segments} segments within {timeout:?}; last answer: {last}"
        );
        url
    }
}
