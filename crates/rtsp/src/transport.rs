//! The Transport header (RFC 2326 §12.39), reduced to unicast RTP over UDP or interleaved TCP.

use std::net::IpAddr;

/// The lowest client port accepted: ports below it are privileged (no client binds them without
/// root), so a request naming one is an attempt to aim our RTP at a system service.
pub const MIN_CLIENT_PORT: u16 = 1024;

/// How RTP and RTCP travel for one track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lower {
    /// UDP datagrams to the client's RTP port and the RTCP port next to it.
    Udp {
        /// The client's (RTP, RTCP) ports.
        client_port: (u16, u16),
        /// Our (RTP, RTCP) ports, set in the reply.
        server_port: Option<(u16, u16)>,
    },
    /// Interleaved frames on the RTSP connection.
    Tcp {
        /// The (RTP, RTCP) channel numbers; `None` when the client left the choice to the server.
        interleaved: Option<(u8, u8)>,
    },
}

/// A unicast RTP/AVP transport specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    /// The lower transport and its addressing.
    pub lower: Lower,
    /// The SSRC we send with, set in the reply.
    pub ssrc: Option<u32>,
    /// The `destination` the client asked for (RFC 2326 §12.39), if any. It is never used as an
    /// address: the shell sends to the connection's peer and refuses a destination naming any
    /// other host, since honouring it would let a client aim a stream at a third party
    /// (RFC 2326 §17, "traffic generation").
    pub destination: Option<Destination>,
}

/// The value of a Transport `destination` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// An IP address.
    Ip(IpAddr),
    /// A host name or anything else that is not an IP address literal.
    NotAnAddress,
}

/// Why no alternative of a Transport header could be used; the caller answers 461.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    /// Multicast, RTP/SAVP, another profile, a UDP spec without `client_port`, or unparseable numbers.
    #[error(
        "only unicast RTP/AVP over UDP (client_port) or RTP/AVP/TCP (interleaved) is supported"
    )]
    Kind,
    /// A client port below [`MIN_CLIENT_PORT`], or port 0.
    #[error(
        "client_port {rtp}-{rtcp} is not allowed: client ports must be {MIN_CLIENT_PORT} or above"
    )]
    PrivilegedPort {
        /// The RTP port asked for.
        rtp: u16,
        /// The RTCP port asked for.
        rtcp: u16,
    },
}

impl Transport {
    /// Picks the first alternative of a Transport header this server supports.
    ///
    /// When none is supported (the caller answers 461 Unsupported Transport), the error is the
    /// reason the first alternative was refused.
    ///
    /// UDP client ports must be at least [`MIN_CLIENT_PORT`]. Nothing else about them is required:
    /// RFC 3550 §11 only says RTP *should* use an even port and RTCP the next one, RFC 2326 §12.39
    /// gives `client_port` as a plain range and RFC 7826 allows RTCP on any port. ffmpeg,
    /// GStreamer and live555 (VLC) send an even port and the next, but other clients (this
    /// project's `gwload` among them) bind two arbitrary ports; since media only ever goes to the
    /// client's own address, refusing them would protect nothing.
    pub fn parse_first_supported(header: &str) -> Result<Transport, Unsupported> {
        let mut first_error = None;
        for spec in header.split(',') {
            match parse_one(spec) {
                Ok(t) => return Ok(t),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error.unwrap_or(Unsupported::Kind))
    }

    /// Formats the reply Transport header.
    pub fn format(&self) -> String {
        let mut out = match self.lower {
            Lower::Udp {
                client_port,
                server_port,
            } => {
                let mut s = format!(
                    "RTP/AVP;unicast;client_port={}-{}",
                    client_port.0, client_port.1
                );
                if let Some((a, b)) = server_port {
                    s.push_str(&format!(";server_port={a}-{b}"));
                }
                s
            }
            Lower::Tcp { interleaved } => {
                let (a, b) = interleaved.unwrap_or((0, 1));
                format!("RTP/AVP/TCP;unicast;interleaved={a}-{b}")
            }
        };
        if let Some(ssrc) = self.ssrc {
            out.push_str(&format!(";ssrc={ssrc:08X}"));
        }
        out
    }
}

fn parse_one(spec: &str) -> Result<Transport, Unsupported> {
    let mut params = spec.trim().split(';').map(str::trim);
    let tcp = match params
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase()
        .as_str()
    {
        "RTP/AVP" | "RTP/AVP/UDP" => false,
        "RTP/AVP/TCP" => true,
        _ => return Err(Unsupported::Kind),
    };
    let (mut client_port, mut interleaved, mut destination) = (None, None, None);
    for param in params {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key.to_ascii_lowercase().as_str() {
            "multicast" => return Err(Unsupported::Kind),
            "client_port" => client_port = Some(pair(value).ok_or(Unsupported::Kind)?),
            "interleaved" => interleaved = Some(pair(value).ok_or(Unsupported::Kind)?),
            "destination" if !value.is_empty() => {
                destination = Some(match value.trim().parse() {
                    Ok(ip) => Destination::Ip(ip),
                    Err(_) => Destination::NotAnAddress,
                });
            }
            _ => {}
        }
    }
    let lower = if tcp {
        Lower::Tcp { interleaved }
    } else {
        let (rtp, rtcp) = client_port.ok_or(Unsupported::Kind)?;
        check_client_ports(rtp, rtcp)?;
        Lower::Udp {
            client_port: (rtp, rtcp),
            server_port: None,
        }
    };
    Ok(Transport {
        lower,
        ssrc: None,
        destination,
    })
}

fn check_client_ports(rtp: u16, rtcp: u16) -> Result<(), Unsupported> {
    if rtp < MIN_CLIENT_PORT || rtcp < MIN_CLIENT_PORT {
        return Err(Unsupported::PrivilegedPort { rtp, rtcp });
    }
    Ok(())
}

/// Parses `a-b` or a lone `a` (meaning `a-(a+1)`, RFC 2326 §12.39).
fn pair<T: std::str::FromStr + Copy + TryFrom<u32>>(value: &str) -> Option<(T, T)>
where
    u32: From<T>,
{
    match value.split_once('-') {
        Some((a, b)) => Some((a.trim().parse().ok()?, b.trim().parse().ok()?)),
        None => {
            let a: T = value.trim().parse().ok()?;
            Some((a, T::try_from(u32::from(a) + 1).ok()?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(header: &str, want: Result<Lower, Unsupported>, reply: &str) {
        let got = Transport::parse_first_supported(header);
        assert_eq!(got.clone().map(|t| t.lower), want, "{header}");
        if let Ok(mut t) = got {
            if let Lower::Udp { server_port, .. } = &mut t.lower {
                *server_port = Some((30000, 30001));
            }
            t.ssrc = Some(0xabc);
            assert_eq!(t.format(), reply, "{header}");
        }
    }

    #[test]
    fn parse_table() {
        let udp = |a, b| {
            Ok(Lower::Udp {
                client_port: (a, b),
                server_port: None,
            })
        };
        check(
            "RTP/AVP;unicast;client_port=5000-5001",
            udp(5000, 5001),
            "RTP/AVP;unicast;client_port=5000-5001;server_port=30000-30001;ssrc=00000ABC",
        );
        check(
            "RTP/AVP/UDP;unicast;client_port=5000",
            udp(5000, 5001),
            "RTP/AVP;unicast;client_port=5000-5001;server_port=30000-30001;ssrc=00000ABC",
        );
        check(
            "RTP/AVP/TCP;unicast;interleaved=2-3",
            Ok(Lower::Tcp {
                interleaved: Some((2, 3)),
            }),
            "RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=00000ABC",
        );
        check(
            "RTP/AVP/TCP;unicast",
            Ok(Lower::Tcp { interleaved: None }),
            "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=00000ABC",
        );
        check(
            "RTP/AVP;multicast, RTP/AVP;unicast;client_port=6000-6001;mode=play",
            udp(6000, 6001),
            "RTP/AVP;unicast;client_port=6000-6001;server_port=30000-30001;ssrc=00000ABC",
        );
        // An odd RTP port is allowed (RFC 3550 §11 says "should" be even).
        check(
            "RTP/AVP;unicast;client_port=5001-5002",
            udp(5001, 5002),
            "RTP/AVP;unicast;client_port=5001-5002;server_port=30000-30001;ssrc=00000ABC",
        );
        check(
            "RTP/SAVP;unicast;client_port=1-2",
            Err(Unsupported::Kind),
            "",
        );
        check("RTP/AVP;unicast", Err(Unsupported::Kind), "");
        check(
            "RTP/AVP;unicast;client_port=x-y",
            Err(Unsupported::Kind),
            "",
        );
        check("RTP/AVP/TCP;interleaved=255", Err(Unsupported::Kind), "");
        check(
            "RTP/AVP;unicast;client_port=65535",
            Err(Unsupported::Kind),
            "",
        );
        let privileged = |rtp, rtcp| Err(Unsupported::PrivilegedPort { rtp, rtcp });
        check("RTP/AVP;unicast;client_port=0-1", privileged(0, 1), "");
        check("RTP/AVP;unicast;client_port=1-2", privileged(1, 2), "");
        check(
            "RTP/AVP;unicast;client_port=1023",
            privileged(1023, 1024),
            "",
        );
        check("RTP/AVP;unicast;client_port=53-54", privileged(53, 54), "");
        // Two unrelated ports, as clients binding two sockets on port 0 send them.
        check(
            "RTP/AVP;unicast;client_port=41234-50002",
            udp(41234, 50002),
            "RTP/AVP;unicast;client_port=41234-50002;server_port=30000-30001;ssrc=00000ABC",
        );
        // A refused first alternative gives way to a good second one.
        check(
            "RTP/AVP;unicast;client_port=0-1,RTP/AVP/TCP;unicast;interleaved=0-1",
            Ok(Lower::Tcp {
                interleaved: Some((0, 1)),
            }),
            "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=00000ABC",
        );
    }

    #[test]
    fn destination_is_recorded_not_used() {
        let dest = |h: &str| {
            Transport::parse_first_supported(h)
                .expect("supported")
                .destination
        };
        assert_eq!(dest("RTP/AVP;unicast;client_port=5000-5001"), None);
        assert_eq!(
            dest("RTP/AVP;unicast;destination=10.1.2.3;client_port=5000-5001"),
            Some(Destination::Ip("10.1.2.3".parse().expect("an address")))
        );
        assert_eq!(
            dest("RTP/AVP;unicast;destination=victim.example;client_port=5000-5001"),
            Some(Destination::NotAnAddress)
        );
        // The reply never echoes a destination.
        let t = Transport::parse_first_supported(
            "RTP/AVP;unicast;destination=10.1.2.3;client_port=5000-5001",
        )
        .expect("supported");
        assert!(!t.format().contains("destination"), "{}", t.format());
    }
}
