//! Many connections at once: silent ones on every listener, idle handshaken RTMP ones.

use super::*;

/// Opens `n` connections to each of `addrs`, sends nothing, and checks the gateway closes every
/// one of them within `limit`; returns some of the attackers' addresses for the log check.
pub(crate) fn silent_flood(
    addrs: &[SocketAddr],
    n: usize,
    limit: Duration,
) -> (Vec<SocketAddr>, Vec<String>) {
    let mut conns: Vec<TcpStream> = Vec::new();
    for addr in addrs {
        conns.extend((0..n).map(|_| slow_connect(*addr)));
    }
    let peers = conns
        .iter()
        .step_by(n.max(1))
        .filter_map(|s| s.local_addr().ok())
        .collect();
    let began = Instant::now();
    let mut open: Vec<usize> = (0..conns.len()).collect();
    while !open.is_empty() && began.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(250));
        open.retain(|&i| !read_reply(&mut conns[i], Duration::from_millis(1)).closed);
    }
    let mut problems = Vec::new();
    for addr in addrs {
        let left = open
            .iter()
            .filter(|&&i| conns[i].peer_addr().ok() == Some(*addr))
            .count();
        if left > 0 {
            problems.push(format!(
                "{left} of {n} silent connections to {addr} were still open after {limit:?}"
            ));
        }
    }
    (peers, problems)
}

pub(crate) fn silent_count() -> usize {
    env_count("HOSTILE_SILENT_CONNS", 300)
}

/// Connections that never send a byte: RTMP closes them at the handshake timeout, RTSP once they
/// have gone a session timeout without a request.
pub(crate) fn silent_rtmp_rtsp(env: &Env) -> Attack {
    let g = env.gateway();
    let limit = Duration::from_secs(HANDSHAKE_TIMEOUT_SECS.max(RTSP_SESSION_SECS)) + REACT;
    let (peers, problems) = silent_flood(&[g.rtmp_addr(), rtsp_addr(g)], silent_count(), limit);
    let mut attack = Attack::new(peers, None);
    attack.problems = problems;
    attack
}

/// As [`silent_rtmp_rtsp`] for the HTTP listener (closed at its header timeout) and MMST (closed
/// at its idle timeout).
pub(crate) fn silent_http_mmst(env: &Env) -> Attack {
    let g = env.gateway();
    let limit = Duration::from_secs(HTTP_HEADER_SECS.max(MMST_IDLE_SECS)) + REACT;
    let (peers, problems) = silent_flood(&[g.http_addr(), mms_addr(g)], silent_count(), limit);
    let mut attack = Attack::new(peers, None);
    attack.problems = problems;
    attack
}

/// Thousands of connections that complete the handshake and then say nothing: the gateway keeps
/// serving while they are open and closes each one after its idle timeout.
pub(crate) fn rtmp_idle_flood(env: &Env) -> Attack {
    let in_use = open_fds() as u64;
    // Each connection costs two descriptors in this process (both ends); keep a margin.
    let room = env.fd_limit.saturating_sub(in_use + 256) / 2;
    let want = env_count("HOSTILE_IDLE_CONNS", 2000);
    let n = want.min(room as usize);
    if n < want {
        println!(
            "idle flood: {n} connections instead of {want} (fd limit {})",
            env.fd_limit
        );
    }
    let addr = env.gateway().rtmp_addr();
    let began = Instant::now();
    let mut conns = Vec::with_capacity(n);
    let mut errors = Vec::new();
    for _ in 0..n {
        match rtmp_handshaken(addr) {
            Ok(s) => conns.push(s),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let opened = began.elapsed();
    let peak_fds = open_fds();
    let peak_rss = rss_kib();
    println!(
        "idle flood: {} handshaken in {opened:?} ({} failed), {peak_fds} open files, RSS {peak_rss} KiB",
        conns.len(),
        errors.len()
    );
    // While they are all open, a new viewer must still be served.
    let mut attack = Attack::new(
        conns
            .iter()
            .step_by(n.div_ceil(10).max(1))
            .filter_map(|s| s.local_addr().ok())
            .collect(),
        Some("idle"),
    )
    .check(errors.is_empty(), || {
        format!(
            "{} of {n} handshakes failed, first: {:?}",
            errors.len(),
            errors.first()
        )
    });
    attack
        .problems
        .extend(env.probe_new_viewer("the idle flood"));
    // Then the gateway must close every one of them on its own.
    let deadline = began + Duration::from_secs(RTMP_IDLE_SECS) + opened + REACT * 2;
    let mut open = 0;
    for s in &mut conns {
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = s.set_read_timeout(Some(left.max(Duration::from_millis(10))));
        let mut b = [0u8; 4096];
        let closed = loop {
            match s.read(&mut b) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    break false
                }
                Err(_) => break true,
            }
        };
        if !closed {
            open += 1;
        }
    }
    for s in &conns {
        let _ = s.shutdown(Shutdown::Both);
    }
    attack.check(open == 0, || {
        format!("{open} of {n} idle connections were still open after the idle timeout")
    })
}
