//! Transport negotiation of a SETUP: which track it names and whether the server can send it the
//! way the client asks, decided from facts the shell hands over. The shell then does what needs
//! sockets and shared state (UDP port pairs, the per-address session limit) and answers with
//! [`crate::ServerConnection::accept_setup`] or `reject`.

use std::net::IpAddr;

use crate::transport::{Destination, Lower, Transport};

/// What the shell knows when a SETUP arrives.
#[derive(Debug, Clone, Copy)]
pub struct SetupFacts<'a> {
    /// The stream key, for the reasons given to the client.
    pub stream: &'a str,
    /// The `trackID=N` of the request URL, if it has one.
    pub track: Option<usize>,
    /// Tracks the stream has.
    pub track_count: usize,
    /// The Transport the client asked for.
    pub transport: &'a Transport,
    /// The connection is RTSPS: media must stay inside the TLS connection.
    pub secure: bool,
    /// Whether the tracks this session already set up use UDP (`None`: none set up yet).
    pub session_udp: Option<bool>,
    /// The address of the RTSP connection's peer: the only one media is sent to.
    pub peer: IpAddr,
}

/// Why a SETUP is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupRefused {
    /// The RTSP status: 404, 459 or 461.
    pub status: u16,
    /// What the client is told.
    pub reason: String,
    pub kind: RefusedKind,
}

/// The kinds of [`SetupRefused`], for the shell's counters and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedKind {
    /// The URL names a track the stream does not have (404).
    NoSuchTrack,
    /// The stream has several tracks and the URL names none (459, RFC 2326 §11.3.12).
    TrackNeeded,
    /// UDP asked on RTSPS, or a transport other than the session's other tracks (461).
    Transport,
    /// A `destination` other than the client's own address (461): RTP would go to a third
    /// party (RFC 2326 §12.39, §17).
    Destination,
}

/// Decides the track of a SETUP and whether its transport can be honoured; `Ok` is the track.
pub fn check_setup(f: &SetupFacts<'_>) -> Result<usize, SetupRefused> {
    let refuse = |status, kind, reason: String| SetupRefused {
        status,
        reason,
        kind,
    };
    let count = f.track_count;
    let track = match f.track {
        Some(t) if t < count => t,
        Some(t) => {
            let why = format!(
                "track {t} does not exist; stream {} has {count} track(s)",
                f.stream
            );
            return Err(refuse(404, RefusedKind::NoSuchTrack, why));
        }
        None if count == 1 => 0,
        None => {
            let why = "SETUP needs a per-track URL (trackID=N) for a stream with several tracks";
            return Err(refuse(459, RefusedKind::TrackNeeded, why.to_owned()));
        }
    };
    let udp = matches!(f.transport.lower, Lower::Udp { .. });
    if udp && f.secure {
        // RFC 2326 §12.39: 461 when the server does not support the transport asked for.
        let why = "RTSPS sends media interleaved on the TLS connection only (RTP/AVP/TCP); UDP would be unencrypted";
        return Err(refuse(461, RefusedKind::Transport, why.to_owned()));
    }
    if f.session_udp.is_some_and(|u| u != udp) {
        let why = "all tracks of a session must use the same transport (UDP or TCP)";
        return Err(refuse(461, RefusedKind::Transport, why.to_owned()));
    }
    check_destination(f.transport, f.peer)
        .map_err(|why| refuse(461, RefusedKind::Destination, why))?;
    Ok(track)
}

/// A `destination` equal to the peer is harmless and accepted; any other is refused.
fn check_destination(transport: &Transport, peer: IpAddr) -> Result<(), String> {
    let Some(dest) = &transport.destination else {
        return Ok(());
    };
    let peer = peer.to_canonical();
    let shown = match dest {
        Destination::Ip(ip) if ip.to_canonical() == peer => return Ok(()),
        Destination::Ip(ip) => ip.to_string(),
        Destination::NotAnAddress => "(a host name)".to_owned(),
    };
    Err(format!(
        "destination {shown} is not allowed: media is only sent to the client's own address {peer}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(destination: Option<Destination>) -> Transport {
        Transport {
            lower: Lower::Udp {
                client_port: (5000, 5001),
                server_port: None,
            },
            ssrc: None,
            destination,
        }
    }

    fn tcp() -> Transport {
        Transport {
            lower: Lower::Tcp { interleaved: None },
            ssrc: None,
            destination: None,
        }
    }

    #[test]
    fn setups_table() {
        let peer: IpAddr = "10.0.0.5".parse().unwrap();
        let ip = |s: &str| Some(Destination::Ip(s.parse().unwrap()));
        let (u, t) = (udp(None), tcp());
        let (other, same, mapped) = (
            udp(ip("10.0.0.6")),
            udp(ip("10.0.0.5")),
            udp(ip("::ffff:10.0.0.5")),
        );
        let named = udp(Some(Destination::NotAnAddress));
        // (track, tracks, transport, secure, session udp, expected track or status and kind)
        type Want = Result<usize, (u16, RefusedKind)>;
        type Case<'a> = (
            Option<usize>,
            usize,
            &'a Transport,
            bool,
            Option<bool>,
            Want,
        );
        let cases: Vec<Case<'_>> = vec![
            (Some(1), 2, &u, false, None, Ok(1)),
            (None, 1, &u, false, None, Ok(0)),
            (
                Some(2),
                2,
                &u,
                false,
                None,
                Err((404, RefusedKind::NoSuchTrack)),
            ),
            (
                None,
                2,
                &t,
                false,
                None,
                Err((459, RefusedKind::TrackNeeded)),
            ),
            (Some(0), 2, &t, true, None, Ok(0)),
            (
                Some(0),
                2,
                &u,
                true,
                None,
                Err((461, RefusedKind::Transport)),
            ),
            (
                Some(1),
                2,
                &t,
                false,
                Some(true),
                Err((461, RefusedKind::Transport)),
            ),
            (
                Some(1),
                2,
                &u,
                false,
                Some(false),
                Err((461, RefusedKind::Transport)),
            ),
            (Some(1), 2, &u, false, Some(true), Ok(1)),
            (
                Some(0),
                2,
                &other,
                false,
                None,
                Err((461, RefusedKind::Destination)),
            ),
            (
                Some(0),
                2,
                &named,
                false,
                None,
                Err((461, RefusedKind::Destination)),
            ),
            (Some(0), 2, &same, false, None, Ok(0)),
            (Some(0), 2, &mapped, false, None, Ok(0)),
        ];
        for (i, (track, track_count, transport, secure, session_udp, want)) in
            cases.into_iter().enumerate()
        {
            let facts = SetupFacts {
                stream: "live/cam",
                track,
                track_count,
                transport,
                secure,
                session_udp,
                peer,
            };
            let got = check_setup(&facts).map_err(|r| (r.status, r.kind));
            assert_eq!(got, want, "case {i}");
        }
    }
}
