//! A bounded HTTP-FLV load client: N viewers each read one FLV URL for a while and discard it.
//!
//! `cargo run --release -p http-server --example flv_load -- URL VIEWERS SECONDS`
//!
//! Prints the received rate per viewer (minimum, median, maximum) and how many viewers ended
//! early. It parses nothing, so its own CPU cost stays small next to the server's.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: flv_load URL VIEWERS SECONDS";
    let url = args.next().ok_or(usage)?;
    let viewers: usize = args.next().ok_or(usage)?.parse()?;
    let secs: u64 = args.next().ok_or(usage)?.parse()?;
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (authority, path) = rest.split_once('/').ok_or("URL has no path")?;
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");

    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::with_capacity(viewers);
    for _ in 0..viewers {
        let (authority, request) = (authority.to_owned(), request.clone());
        tasks.push(tokio::spawn(async move {
            view(&authority, &request, deadline).await
        }));
        // Spread the connects so the server sees a ramp, not a burst of 500 handshakes.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut rates = Vec::with_capacity(viewers);
    let mut early = 0;
    for t in tasks {
        match t.await? {
            Ok((bytes, elapsed, ended)) => {
                rates.push(bytes as f64 * 8.0 / elapsed.as_secs_f64() / 1000.0);
                early += usize::from(ended);
            }
            Err(e) => {
                eprintln!("viewer failed: {e}");
                early += 1;
            }
        }
    }
    rates.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        rates
            .get(((rates.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "{viewers} viewers for {secs} s: kbit/s per viewer min {:.0} median {:.0} max {:.0}; ended early {early}",
        pick(0.0),
        pick(0.5),
        pick(1.0)
    );
    Ok(())
}

/// Reads until `deadline`; returns bytes read, time spent, and whether the server ended first.
async fn view(
    authority: &str,
    request: &str,
    deadline: Instant,
) -> std::io::Result<(u64, Duration, bool)> {
    let start = Instant::now();
    let mut conn = TcpStream::connect(authority).await?;
    conn.write_all(request.as_bytes()).await?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, conn.read(&mut buf)).await {
            Err(_) => return Ok((total, start.elapsed(), false)),
            Ok(Ok(0)) => return Ok((total, start.elapsed(), true)),
            Ok(Ok(n)) => total += n as u64,
            Ok(Err(e)) => return Err(e),
        }
    }
}
