//! Records what an RTMP publisher sends (client-to-server bytes only) by
//! putting a recording proxy in front of an in-process server.
//!
//! ```text
//! cargo run -p rtmp-server --example record_publish -- OUT_FILE PROGRAM ARGS...
//! ```
//!
//! Every `{url}` in the arguments is replaced by the proxy's RTMP URL with
//! the stream key `live/capture`. The first connection the program opens is
//! recorded; the file is written when it closes. Used to make the fixtures in
//! `tests/fixtures/rtmp/` (see PROVENANCE.md there).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, program, rest @ ..] = args.as_slice() else {
        eprintln!("usage: record_publish OUT_FILE PROGRAM ARGS... ({{url}} is replaced)");
        std::process::exit(2);
    };
    let server = TcpListener::bind("127.0.0.1:0").await?;
    let server_addr = server.local_addr()?;
    let shutdown = CancellationToken::new();
    tokio::spawn(rtmp_server::run(
        server,
        bus::Bus::default(),
        Default::default(),
        shutdown.clone(),
    ));
    let proxy = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("rtmp://{}/live/capture", proxy.local_addr()?);
    let recorder = tokio::spawn(record_one(proxy, server_addr));
    let cmd_args: Vec<String> = rest.iter().map(|a| a.replace("{url}", &url)).collect();
    let status = tokio::process::Command::new(program)
        .args(&cmd_args)
        .status()
        .await?;
    eprintln!("{program} exited with {status}");
    let recorded = recorder.await.expect("recorder task does not panic")?;
    std::fs::write(out, &recorded)?;
    eprintln!("wrote {} client-to-server bytes to {out}", recorded.len());
    shutdown.cancel();
    Ok(())
}

/// Proxies one connection to `upstream`, returning the bytes the client sent.
async fn record_one(proxy: TcpListener, upstream: SocketAddr) -> std::io::Result<Vec<u8>> {
    let (client, _) = proxy.accept().await?;
    let server = TcpStream::connect(upstream).await?;
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let down = tokio::spawn(async move { tokio::io::copy(&mut sr, &mut cw).await });
    let mut recorded = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = cr.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        recorded.extend_from_slice(&buf[..n]);
        sw.write_all(&buf[..n]).await?;
    }
    let _ = sw.shutdown().await;
    down.abort();
    Ok(recorded)
}
