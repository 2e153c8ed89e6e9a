//! `log.format = "json"` and connection ids, on the gateway run as a process: ffmpeg publishes
//! over RTMP, a client plays HTTP-FLV, and clients open and close RTSP and MMST connections.
//! Every line the process writes must be a JSON object, and every line a connection logs must
//! sit in its `conn` span with that connection's peer and one id no other connection has.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use gateway_tests::{
    fixture, gateway_bin, require_tool, wait_until, workspace_root, Ffmpeg, GatewayProcess,
};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);

fn config() -> String {
    // Every plain listener on a kernel-chosen loopback port; RTP ports of this process's own.
    let base = 20_000 + (std::process::id() % 150) as u16 * 200 + 100;
    format!(
        "[log]\nlevel = \"info\"\nformat = \"json\"\n\
         [rtmp]\nlisten = \"127.0.0.1:0\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\nweb_root = \"{}\"\n\
         [rtsp]\nlisten = \"127.0.0.1:0\"\nrtp_port_min = {base}\nrtp_port_max = {}\n\
         [mms]\nlisten = \"127.0.0.1:0\"\n",
        workspace_root().join("web").display(),
        base + 99,
    )
}

/// Every line of the log as JSON; panics naming the first line that is not a JSON object
/// with a timestamp, a level, a target and fields.
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {line}"));
            assert!(v.is_object(), "not a JSON object: {line}");
            for key in ["timestamp", "level", "target"] {
                assert!(v[key].is_string(), "no {key} in {line}");
            }
            assert!(v["fields"]["message"].is_string(), "no message in {line}");
            v
        })
        .collect()
}

/// The lines whose innermost span is a connection's, by peer: `(id, message)` for each.
fn by_peer(lines: &[Value]) -> BTreeMap<String, Vec<(String, String)>> {
    let mut peers: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for v in lines {
        let span = &v["span"];
        if span["name"] != "conn" {
            continue;
        }
        let peer = span["peer"]
            .as_str()
            .expect("a conn span has a peer")
            .to_owned();
        let id = span["id"]
            .as_str()
            .expect("a conn span has an id")
            .to_owned();
        let message = v["fields"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        peers.entry(peer).or_default().push((id, message));
    }
    peers
}

/// Opens a TCP connection to `addr`, sends `request` and reads until `want` bytes came back or
/// the server closed; returns the local address the gateway saw.
fn exchange(addr: SocketAddr, request: &[u8], want: usize) -> SocketAddr {
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let local = s.local_addr().expect("a local address");
    s.write_all(request).expect("send");
    let mut got = 0;
    let mut buf = [0u8; 16 * 1024];
    while got < want {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    local
}

#[test]
fn json_lines_carry_each_connections_id_on_every_listener() {
    if !require_tool("ffmpeg") {
        return;
    }
    let mut gateway = GatewayProcess::start_json(Path::new(gateway_bin!()), &config());
    let rtmp = gateway.addr("rtmp");
    let url = format!("rtmp://{rtmp}/live/test");
    let publisher = Ffmpeg::publish(&fixture("av.flv"), &url);
    let published = wait_until(TIMEOUT, || gateway.log().contains("\"RTMP publish\""));
    assert!(
        published,
        "no publish logged:\n{}\n{}",
        gateway.log(),
        publisher.log()
    );

    // One HTTP-FLV viewer that reads 64 KiB and leaves; one RTSP and one MMST connection that
    // say something and leave.
    let http = exchange(
        gateway.addr("http"),
        b"GET /live/test.flv HTTP/1.1\r\nHost: gw\r\n\r\n",
        64 * 1024,
    );
    let rtsp = exchange(
        gateway.addr("rtsp"),
        b"OPTIONS rtsp://gw/live/test RTSP/1.0\r\nCSeq: 1\r\n\r\n",
        1,
    );
    let mms = exchange(gateway.addr("mms"), b"", 0);
    drop(publisher);

    // Each connection has logged its end (or, for the publisher, its unpublish).
    let ended = |peer: SocketAddr, count: usize| {
        move |log: &str| {
            let lines = json_lines(log);
            by_peer(&lines)
                .get(&peer.to_string())
                .is_some_and(|l| l.len() >= count)
        }
    };
    let all_logged = wait_until(TIMEOUT, || {
        let log = gateway.log();
        ended(http, 2)(&log)
            && ended(rtsp, 2)(&log)
            && ended(mms, 2)(&log)
            && log.contains("\"RTMP connection closed\"")
    });
    gateway.assert_running();
    let log = gateway.log();
    assert!(all_logged, "not every connection logged twice:\n{log}");

    let lines = json_lines(&log);
    let peers = by_peer(&lines);
    // The publisher's peer is the one whose span logged "RTMP publish".
    let publisher_peer = peers
        .iter()
        .find(|(_, l)| l.iter().any(|(_, m)| m == "RTMP publish"))
        .map(|(p, _)| p.clone())
        .unwrap_or_else(|| panic!("\"RTMP publish\" was not logged in a conn span:\n{log}"));
    let conns = [
        ("RTMP", publisher_peer),
        ("HTTP", http.to_string()),
        ("RTSP", rtsp.to_string()),
        ("MMST", mms.to_string()),
    ];
    let mut ids = Vec::new();
    for (what, peer) in &conns {
        let own = &peers[peer];
        let id = &own[0].0;
        assert!(
            own.iter().all(|(i, _)| i == id),
            "{what} connection {peer} logged under several ids: {own:?}"
        );
        assert!(
            (4..=13).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{what}: id {id:?} is not a short base-36 id"
        );
        println!("{what} {peer}: id {id}, {} lines: {own:?}", own.len());
        ids.push(id.clone());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        conns.len(),
        "two connections share an id: {conns:?}"
    );

    // Every line that names one of these peers in its fields is in that peer's span: no line of
    // a connection is logged outside it.
    for v in &lines {
        let named = v["fields"]["peer"].as_str().map(str::to_owned);
        let Some(named) = named else { continue };
        for (what, peer) in &conns {
            if named.contains(peer.as_str()) {
                assert_eq!(
                    v["span"]["peer"].as_str(),
                    Some(peer.as_str()),
                    "a line of the {what} connection is not in its span: {v}"
                );
            }
        }
    }
    // And the span list names the connection too (log shippers that flatten `spans` see it).
    for v in lines.iter().filter(|v| v["span"]["name"] == "conn") {
        let listed = v["spans"].as_array().expect("a span list");
        assert!(
            listed
                .iter()
                .any(|s| s["name"] == "conn" && s["id"] == v["span"]["id"]),
            "{v}"
        );
    }
}
