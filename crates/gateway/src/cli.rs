//! The command line of the `gateway` binary: `gateway [--config FILE]` runs the media gateway
//! until Ctrl-C or SIGTERM.
//!
//! It lives in the library so that the end-to-end tests' copy of the binary
//! (`tests/src/bin/gateway-under-test.rs`) is this very code.

use std::path::PathBuf;
use std::process::ExitCode;

use gateway_config::Config;

/// The configuration file used when `--config` is not given.
const DEFAULT_CONFIG: &str = "config/gateway.toml";

const USAGE: &str = "usage: gateway [--config FILE]\n\nRuns the media gateway. FILE defaults to config/gateway.toml.";

/// Runs the binary with the process's arguments; the exit code is 0 after a clean shutdown, 2
/// for bad arguments or configuration, 1 when the gateway could not run.
pub fn main() -> ExitCode {
    let path = match parse_args(std::env::args().skip(1)) {
        Ok(Some(path)) => path,
        Ok(None) => {
            println!("{USAGE}");
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
    let gateway = crate::Gateway::start(&config).await?;
    tracing::info!(config = %path.display(), "gateway running; Ctrl-C or SIGTERM stops it");
    crate::shutdown_signal().await;
    tracing::info!("shutting down");
    gateway.shutdown().await;
    Ok(())
}

/// `Ok(None)` means help was asked for.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<PathBuf>, String> {
    let mut path = PathBuf::from(DEFAULT_CONFIG);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
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
    Ok(Some(path))
}
