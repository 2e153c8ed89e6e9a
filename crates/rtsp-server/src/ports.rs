//! UDP port pairs for RTP (even) and RTCP (the odd port above), from a configured range.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, UdpSocket as StdUdpSocket};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

/// Hands out port pairs; a pair returns to the pool when its [`PortPair`] is dropped.
#[derive(Debug, Clone)]
pub struct PortPool {
    ip: IpAddr,
    first: u16,
    last: u16,
    in_use: Arc<Mutex<BTreeSet<u16>>>,
}

/// Two bound sockets: RTP on an even port, RTCP on the next.
#[derive(Debug)]
pub struct PortPair {
    /// The RTP socket (even port).
    pub rtp: Arc<UdpSocket>,
    /// The RTCP socket (odd port).
    pub rtcp: Arc<UdpSocket>,
    /// The RTP port number.
    pub port: u16,
    pool: PortPool,
}

impl Drop for PortPair {
    fn drop(&mut self) {
        self.pool
            .in_use
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.port);
    }
}

impl PortPool {
    /// Creates a pool over `first..=last` (rounded inwards to whole even/odd pairs) on `ip`.
    pub fn new(ip: IpAddr, first: u16, last: u16) -> Self {
        let first = first.saturating_add(first % 2);
        PortPool {
            ip,
            first,
            last,
            in_use: Arc::default(),
        }
    }

    /// Binds the lowest free pair; `None` when every pair is taken or bound by another process.
    ///
    /// The lowest pair is preferred so that ports freed by ended sessions are reused first.
    pub fn allocate(&self) -> Option<PortPair> {
        let mut in_use = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
        let mut port = self.first;
        while port < self.last {
            if !in_use.contains(&port) {
                if let Some((rtp, rtcp)) = self.bind(port) {
                    in_use.insert(port);
                    return Some(PortPair {
                        rtp,
                        rtcp,
                        port,
                        pool: self.clone(),
                    });
                }
            }
            port = port.checked_add(2)?;
        }
        None
    }

    fn bind(&self, port: u16) -> Option<(Arc<UdpSocket>, Arc<UdpSocket>)> {
        let open = |p: u16| -> std::io::Result<UdpSocket> {
            let s = StdUdpSocket::bind(SocketAddr::new(self.ip, p))?;
            s.set_nonblocking(true)?;
            UdpSocket::from_std(s)
        };
        let rtp = open(port).ok()?;
        let rtcp = open(port + 1).ok()?;
        Some((Arc::new(rtp), Arc::new(rtcp)))
    }
}
