//! The command line (the contract `scripts/bench-peers` is written against).

use std::path::PathBuf;
use std::time::Duration;

use crate::net::ReadMode;
use crate::RunError;

/// Most viewers one run may open.
pub const MAX_VIEWERS: usize = 100_000;

/// The usage text.
pub const USAGE: &str =
    "usage: gwload --protocol rtmp|http-flv|ws-flv|hls|rtsp-tcp|rtsp-udp --url URL --viewers N
       [--duration SECS (30)] [--ramp PER_SEC (500)] [--warmup SECS (5)]
       [--publish FILE.flv --publish-url rtmp://HOST:PORT/app/stream]
       [--stall-after SECS] [--server-pid PID] [--json PATH]
       [--ca-file PEM | --insecure]   (rtmps:// URLs: trust these CAs, or any certificate)
       [--reader lowat[=BYTES] | pace[=MS] | eager]   (non-probe TCP viewers; lowat=16384)";

/// The viewer protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// RTMP play.
    Rtmp,
    /// FLV over HTTP.
    HttpFlv,
    /// FLV over WebSocket (`ws://host/app/stream.flv`).
    WsFlv,
    /// HLS (MPEG-TS segments).
    Hls,
    /// RTSP with RTP interleaved on the TCP connection.
    RtspTcp,
    /// RTSP with RTP over UDP.
    RtspUdp,
}

impl Protocol {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Rtmp => "rtmp",
            Protocol::HttpFlv => "http-flv",
            Protocol::WsFlv => "ws-flv",
            Protocol::Hls => "hls",
            Protocol::RtspTcp => "rtsp-tcp",
            Protocol::RtspUdp => "rtsp-udp",
        }
    }

    fn parse(s: &str) -> Option<Protocol> {
        [
            Protocol::Rtmp,
            Protocol::HttpFlv,
            Protocol::WsFlv,
            Protocol::Hls,
            Protocol::RtspTcp,
            Protocol::RtspUdp,
        ]
        .into_iter()
        .find(|p| p.name() == s)
    }
}

/// One run's settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Viewer protocol.
    pub protocol: Protocol,
    /// The URL every viewer opens.
    pub url: String,
    /// Viewers to open.
    pub viewers: usize,
    /// Run time after the last viewer is opened.
    pub duration: Duration,
    /// Viewers opened per second.
    pub ramp: u32,
    /// Excluded from rates and latency at the start of `duration`.
    pub warmup: Duration,
    /// FLV file to publish in a loop.
    pub publish: Option<PathBuf>,
    /// Where to publish it.
    pub publish_url: Option<String>,
    /// When set, each viewer reads normally for this long after it starts connecting, then
    /// stops reading but keeps its connection open until the end of the run (a viewer that
    /// stopped reading, for checking that the server's memory stays bounded).
    pub stall_after: Option<Duration>,
    /// The server process to sample CPU and memory of.
    pub server_pid: Option<u32>,
    /// Where to write the JSON report.
    pub json: Option<PathBuf>,
    /// `rtmps://` URLs trust the PEM certificates of this file.
    pub ca_file: Option<PathBuf>,
    /// `rtmps://` URLs accept any certificate (a load test of a server with a self-signed one).
    pub insecure: bool,
    /// How the viewers that are not latency probes read (see [`ReadMode`]).
    pub reader: ReadMode,
}

impl Options {
    /// Defaults for everything but the three required settings.
    pub fn new(protocol: Protocol, url: &str, viewers: usize) -> Options {
        Options {
            protocol,
            url: url.to_owned(),
            viewers,
            duration: Duration::from_secs(30),
            ramp: 500,
            warmup: Duration::from_secs(5),
            publish: None,
            publish_url: None,
            stall_after: None,
            server_pid: None,
            json: None,
            ca_file: None,
            insecure: false,
            reader: ReadMode::LowWater(ReadMode::DEFAULT_LOW_WATER),
        }
    }

    /// Parses the arguments (without the program name).
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Options, RunError> {
        let mut args = args.into_iter();
        let (mut protocol, mut url, mut viewers) = (None, None, None);
        let mut o = Options::new(Protocol::Rtmp, "", 0);
        while let Some(flag) = args.next() {
            if flag == "-h" || flag == "--help" {
                return Err(RunError::Usage(String::new()));
            }
            if flag == "--insecure" {
                o.insecure = true;
                continue;
            }
            let value = args
                .next()
                .ok_or_else(|| RunError::Usage(format!("{flag} needs a value")))?;
            let bad = || RunError::Usage(format!("{flag}: bad value {value:?}"));
            let secs = |v: &str| {
                v.parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e7)
                    .map(Duration::from_secs_f64)
            };
            match flag.as_str() {
                "--protocol" => protocol = Some(Protocol::parse(&value).ok_or_else(bad)?),
                "--url" => url = Some(value),
                "--viewers" => {
                    viewers = Some(
                        value
                            .parse::<usize>()
                            .ok()
                            .filter(|n| (1..=MAX_VIEWERS).contains(n))
                            .ok_or_else(bad)?,
                    )
                }
                "--duration" => o.duration = secs(&value).ok_or_else(bad)?,
                "--warmup" => o.warmup = secs(&value).ok_or_else(bad)?,
                "--ramp" => o.ramp = value.parse().ok().filter(|r| *r > 0).ok_or_else(bad)?,
                "--publish" => o.publish = Some(PathBuf::from(value)),
                "--publish-url" => o.publish_url = Some(value),
                "--stall-after" => {
                    o.stall_after = Some(secs(&value).filter(|d| !d.is_zero()).ok_or_else(bad)?)
                }
                "--server-pid" => o.server_pid = Some(value.parse().map_err(|_| bad())?),
                "--json" => o.json = Some(PathBuf::from(value)),
                "--ca-file" => o.ca_file = Some(PathBuf::from(value)),
                "--reader" => o.reader = ReadMode::parse(&value).ok_or_else(bad)?,
                _ => return Err(RunError::Usage(format!("unknown option {flag}"))),
            }
        }
        o.protocol = protocol.ok_or_else(|| RunError::Usage("--protocol is required".into()))?;
        o.url = url.ok_or_else(|| RunError::Usage("--url is required".into()))?;
        o.viewers = viewers.ok_or_else(|| RunError::Usage("--viewers is required".into()))?;
        if o.publish.is_some() != o.publish_url.is_some() {
            return Err(RunError::Usage(
                "--publish and --publish-url go together".into(),
            ));
        }
        if o.warmup >= o.duration {
            return Err(RunError::Usage(
                "--warmup must be shorter than --duration".into(),
            ));
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Options, RunError> {
        Options::parse(s.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn arguments_table() {
        let o = parse("--protocol rtsp-udp --url rtsp://h/a/b --viewers 500 --duration 20 --ramp 100 --server-pid 42 --publish f.flv --publish-url rtmp://h/a/b")
            .expect("valid");
        assert_eq!(o.protocol, Protocol::RtspUdp);
        assert_eq!((o.viewers, o.ramp, o.server_pid), (500, 100, Some(42)));
        assert_eq!(o.duration, Duration::from_secs(20));
        assert_eq!(o.warmup, Duration::from_secs(5));
        assert_eq!(o.stall_after, None);
        assert_eq!(o.reader, ReadMode::LowWater(16384));
        let o = parse("--protocol rtmp --url x --viewers 1 --reader pace=50").expect("valid");
        assert_eq!(o.reader, ReadMode::Paced(Duration::from_millis(50)));
        let o = parse("--protocol rtmp --url x --viewers 1 --reader lowat=4096").expect("valid");
        assert_eq!(o.reader, ReadMode::LowWater(4096));
        let o = parse("--protocol rtmp --url x --viewers 1 --reader eager").expect("valid");
        assert_eq!(o.reader, ReadMode::Eager);
        let o = parse("--protocol http-flv --url http://h/a/b.flv --viewers 1 --stall-after 2.5")
            .expect("valid");
        assert_eq!(o.stall_after, Some(Duration::from_millis(2500)));
        assert!(!o.insecure && o.ca_file.is_none());
        let o =
            parse("--protocol rtmp --insecure --url rtmps://h/a/b --viewers 1 --ca-file ca.pem")
                .expect("valid");
        assert!(o.insecure);
        assert_eq!(o.ca_file, Some(PathBuf::from("ca.pem")));
        for bad in [
            "--protocol mms --url x --viewers 1",
            "--protocol rtmp --url x",
            "--protocol rtmp --url x --viewers 0",
            "--protocol rtmp --url x --viewers 1 --publish f.flv",
            "--protocol rtmp --url x --viewers 1 --duration 3",
            "--protocol rtmp --url x --viewers 1 --bogus 1",
            "--protocol rtmp --url x --viewers",
            "--protocol rtmp --url x --viewers 1 --stall-after 0",
            "--protocol rtmp --url x --viewers 1 --stall-after -1",
            "--protocol rtmp --url x --viewers 1 --stall-after soon",
            "--protocol rtmp --url x --viewers 1 --stall-after",
            "--protocol rtmp --url x --viewers 1 --reader lowat=0",
            "--protocol rtmp --url x --viewers 1 --reader lowat=99999999",
            "--protocol rtmp --url x --viewers 1 --reader pace=0",
            "--protocol rtmp --url x --viewers 1 --reader sometimes",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
