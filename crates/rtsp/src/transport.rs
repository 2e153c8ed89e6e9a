//! The Transport header (RFC 2326 §12.39), reduced to unicast RTP over UDP or interleaved TCP.

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
}

impl Transport {
    /// Picks the first alternative of a Transport header this server supports.
    ///
    /// Returns `None` when none is supported (the caller answers 461 Unsupported Transport):
    /// multicast, RTP/SAVP, a UDP spec without `client_port`, or unparseable numbers.
    pub fn parse_first_supported(header: &str) -> Option<Transport> {
        header.split(',').find_map(parse_one)
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

fn parse_one(spec: &str) -> Option<Transport> {
    let mut params = spec.trim().split(';').map(str::trim);
    let tcp = match params.next()?.to_ascii_uppercase().as_str() {
        "RTP/AVP" | "RTP/AVP/UDP" => false,
        "RTP/AVP/TCP" => true,
        _ => return None,
    };
    let (mut client_port, mut interleaved) = (None, None);
    for param in params {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key.to_ascii_lowercase().as_str() {
            "multicast" => return None,
            "client_port" => client_port = Some(pair(value)?),
            "interleaved" => interleaved = Some(pair(value)?),
            _ => {}
        }
    }
    let lower = if tcp {
        Lower::Tcp { interleaved }
    } else {
        Lower::Udp {
            client_port: client_port?,
            server_port: None,
        }
    };
    Some(Transport { lower, ssrc: None })
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

    fn check(header: &str, want: Option<Lower>, reply: &str) {
        let got = Transport::parse_first_supported(header);
        assert_eq!(got.map(|t| t.lower), want, "{header}");
        if let Some(mut t) = got {
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
            Some(Lower::Udp {
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
            Some(Lower::Tcp {
                interleaved: Some((2, 3)),
            }),
            "RTP/AVP/TCP;unicast;interleaved=2-3;ssrc=00000ABC",
        );
        check(
            "RTP/AVP/TCP;unicast",
            Some(Lower::Tcp { interleaved: None }),
            "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=00000ABC",
        );
        check(
            "RTP/AVP;multicast, RTP/AVP;unicast;client_port=6000-6001;mode=play",
            udp(6000, 6001),
            "RTP/AVP;unicast;client_port=6000-6001;server_port=30000-30001;ssrc=00000ABC",
        );
        check("RTP/SAVP;unicast;client_port=1-2", None, "");
        check("RTP/AVP;unicast", None, "");
        check("RTP/AVP;unicast;client_port=x-y", None, "");
        check("RTP/AVP/TCP;interleaved=255", None, "");
        check("RTP/AVP;unicast;client_port=65535", None, "");
    }
}
