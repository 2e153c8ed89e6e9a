//! The command line of the `gateway` binary:
//!
//! - `gateway [--config FILE]` runs the media gateway until Ctrl-C or SIGTERM;
//! - `gateway --version` (or `-V`) prints [`VERSION`], `gateway --help` the usage;
//! - `gateway healthcheck [URL]` asks a running gateway's `/healthz` (by default
//!   [`DEFAULT_HEALTH_URL`]) and exits 0 if it answers 200 within [`HEALTH_TIMEOUT`], else 1:
//!   the container's `HEALTHCHECK`, since the runtime image has no curl.
//!
//! It lives in the library so that the end-to-end tests' copy of the binary
//! (`tests/src/bin/gateway-under-test.rs`) is this very code.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use gateway_config::Config;

/// What `gateway --version` prints, and what the first log line of a run starts with.
pub const VERSION: &str = concat!("media-gateway ", env!("CARGO_PKG_VERSION"));

/// The configuration file used when `--config` is not given.
const DEFAULT_CONFIG: &str = "config/gateway.toml";

/// What `gateway healthcheck` asks when given no URL: the default HTTP listener's probe.
pub const DEFAULT_HEALTH_URL: &str = "http://127.0.0.1:8080/healthz";

/// How long `gateway healthcheck` waits for the whole answer.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// The most of an answer `gateway healthcheck` reads (the status line is all it needs).
const HEALTH_MAX_ANSWER: usize = 4096;

const USAGE: &str = "usage: gateway [--config FILE]\n       gateway healthcheck [URL]\n       \
gateway --version\n\n\
Runs the media gateway. FILE defaults to config/gateway.toml.\n\
healthcheck: GETs URL (default http://127.0.0.1:8080/healthz) and exits 0 if it answers 200 \
within 3 s, else 1.";

/// Runs the binary with the process's arguments; the exit code is 0 after a clean shutdown, 2
/// for bad arguments or configuration, 1 when the gateway could not run (or, for
/// `healthcheck`, is not healthy).
pub fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("healthcheck") {
        args.next();
        let url = args.next().unwrap_or_else(|| DEFAULT_HEALTH_URL.to_owned());
        if let Some(extra) = args.next() {
            eprintln!("gateway: unexpected argument `{extra}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
        return match healthcheck(&url, HEALTH_TIMEOUT) {
            Ok(()) => ExitCode::SUCCESS,
            Err(why) => {
                eprintln!("gateway healthcheck: {url}: {why}");
                ExitCode::FAILURE
            }
        };
    }
    let path = match parse_args(args) {
        Ok(Mode::Run(path)) => path,
        Ok(Mode::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Mode::Version) => {
            println!("{VERSION}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("gateway: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::load(&path) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("gateway: bad configuration: {err}");
            return ExitCode::from(2);
        }
    };
    crate::init_logging(&config.log);
    // The first line of every run, so that a log says which build wrote it.
    tracing::info!(config = %path.display(), "{VERSION} starting");
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("gateway: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            eprintln!("gateway: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config, path: PathBuf) -> Result<(), crate::StartError> {
    let gateway = crate::Gateway::start_with_file(&config, path.clone()).await?;
    tracing::info!(
        config = %path.display(),
        "gateway running; SIGHUP reloads the configuration, Ctrl-C or SIGTERM stops it"
    );
    let stop = crate::shutdown_signal();
    tokio::pin!(stop);
    let mut hangups = hangups();
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some(()) = hangups.recv() => {
                tracing::info!(config = %path.display(), "SIGHUP: reloading the configuration");
                // Logged either way by the reload itself.
                let _ = gateway.reload_file();
            }
        }
    }
    tracing::info!("shutting down");
    gateway.shutdown().await;
    Ok(())
}

/// A channel that yields once per SIGHUP (never on other platforms, or if the handler cannot be
/// installed).
fn hangups() -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(mut s) => {
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        // A reload already pending covers this one too.
                        let _ = tx.try_send(());
                    }
                });
            }
            Err(err) => tracing::warn!("SIGHUP will not reload the configuration: {err}"),
        }
    }
    #[cfg(not(unix))]
    std::mem::forget(tx);
    rx
}

/// What the command line (other than `healthcheck`) asks for.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    /// Run the gateway on this configuration file.
    Run(PathBuf),
    Help,
    Version,
}

/// Help or version anywhere on the line wins over running, as with most tools.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Mode, String> {
    let mut path = PathBuf::from(DEFAULT_CONFIG);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Mode::Help),
            "-V" | "--version" => return Ok(Mode::Version),
            "-c" | "--config" => {
                path = args
                    .next()
                    .map(PathBuf::from)
                    .ok_or("--config needs a file name")?;
            }
            other => match other.strip_prefix("--config=") {
                Some(p) => path = PathBuf::from(p),
                None => return Err(format!("unknown argument `{other}`")),
            },
        }
    }
    Ok(Mode::Run(path))
}

/// `http://host[:port][/path]`, split; only plain HTTP (the probe asks a local listener).
fn split_http_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("the URL must start with http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    // An IPv6 literal is bracketed: `[::1]:8080`.
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or("unclosed `[` in the URL")?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("bad port `{p}`"))?,
        None => 80,
    };
    if host.is_empty() {
        return Err("the URL names no host".into());
    }
    Ok((host.to_owned(), port, path.to_owned()))
}

/// GETs `url` with HTTP/1.0 and succeeds if the status is 200, all within `timeout`.
pub fn healthcheck(url: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("no answer within {timeout:?}"))
    };
    let (host, port, path) = split_http_url(url)?;
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let mut socket =
        TcpStream::connect_timeout(&addr, left()?).map_err(|e| format!("cannot connect: {e}"))?;
    socket
        .set_write_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    let host_header = if addr.is_ipv6() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {host_header}\r\nUser-Agent: gateway-healthcheck\r\n\r\n"
    );
    socket
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while answer.len() < HEALTH_MAX_ANSWER && !answer.contains(&b'\n') {
        socket
            .set_read_timeout(Some(left()?))
            .map_err(|e| e.to_string())?;
        match socket.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("no answer: {e}")),
        }
    }
    let status_line = String::from_utf8_lossy(&answer);
    let status_line = status_line.lines().next().unwrap_or_default();
    let mut words = status_line.split_whitespace();
    match (words.next(), words.next()) {
        (Some(v), Some("200")) if v.starts_with("HTTP/") => Ok(()),
        (Some(v), Some(code)) if v.starts_with("HTTP/") => Err(format!("answered {code}")),
        _ => Err(format!("not an HTTP answer: {status_line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn arguments_choose_what_to_do() {
        let check = |args: &[&str], want: Result<Mode, &str>| {
            let got = parse_args(args.iter().map(|a| a.to_string()));
            assert_eq!(got, want.map_err(str::to_owned), "{args:?}");
        };
        let run = |p: &str| Ok(Mode::Run(PathBuf::from(p)));
        check(&[], run(DEFAULT_CONFIG));
        check(&["--config", "a.toml"], run("a.toml"));
        check(&["-c", "a.toml"], run("a.toml"));
        check(&["--config=a.toml"], run("a.toml"));
        check(&["--version"], Ok(Mode::Version));
        check(&["-V"], Ok(Mode::Version));
        check(&["--config", "a.toml", "-V"], Ok(Mode::Version));
        check(&["--help"], Ok(Mode::Help));
        check(&["-h", "--version"], Ok(Mode::Help));
        check(&["--config"], Err("--config needs a file name"));
        check(&["-v"], Err("unknown argument `-v`"));
    }

    #[test]
    fn the_version_names_the_package_and_its_version() {
        let number = VERSION.strip_prefix("media-gateway ").expect(VERSION);
        let parts: Vec<&str> = number.split('.').collect();
        assert_eq!(parts.len(), 3, "{VERSION}");
        assert!(parts.iter().all(|p| p.parse::<u32>().is_ok()), "{VERSION}");
    }

    #[test]
    fn urls_split_into_host_port_and_path() {
        let ok = |u: &str| split_http_url(u).expect(u);
        let s = |h: &str, p: u16, path: &str| (h.to_owned(), p, path.to_owned());
        assert_eq!(ok(DEFAULT_HEALTH_URL), s("127.0.0.1", 8080, "/healthz"));
        assert_eq!(ok("http://gw"), s("gw", 80, "/"));
        assert_eq!(ok("http://gw:81/readyz?x=1"), s("gw", 81, "/readyz?x=1"));
        assert_eq!(ok("http://[::1]:8080/healthz"), s("::1", 8080, "/healthz"));
        assert_eq!(ok("http://[::1]/"), s("::1", 80, "/"));
        assert!(split_http_url("https://gw/healthz").is_err());
        assert!(split_http_url("http://gw:port/").is_err());
        assert!(split_http_url("http:///healthz").is_err());
    }

    /// A server that answers one connection with `answer` (or nothing, if `None`).
    fn serve_once(answer: Option<&'static str>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                match answer {
                    Some(a) => {
                        let _ = s.write_all(a.as_bytes());
                    }
                    None => std::thread::sleep(Duration::from_secs(2)),
                }
            }
        });
        format!("http://{addr}/healthz")
    }

    #[test]
    fn only_a_200_within_the_timeout_is_healthy() {
        let ok = serve_once(Some("HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n"));
        assert_eq!(healthcheck(&ok, Duration::from_secs(3)), Ok(()));
        let down = serve_once(Some("HTTP/1.1 503 Service Unavailable\r\n\r\n"));
        assert_eq!(
            healthcheck(&down, Duration::from_secs(3)),
            Err("answered 503".into())
        );
        let garbage = serve_once(Some("SSH-2.0-OpenSSH\r\n"));
        assert!(healthcheck(&garbage, Duration::from_secs(3)).is_err());
        let silent = serve_once(None);
        let started = Instant::now();
        assert!(healthcheck(&silent, Duration::from_millis(300)).is_err());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn nothing_listening_is_unhealthy() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let url = format!("http://{addr}/healthz");
        let err = healthcheck(&url, Duration::from_secs(1)).expect_err("nothing listens");
        assert!(err.starts_with("cannot connect"), "{err}");
    }
}
