//! Socket helpers that keep a viewer cheap: reads land in one buffer per worker thread (not one
//! per viewer), so thousands of idle viewers cost no read buffers at all.

use std::cell::RefCell;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpStream, UdpSocket};

use crate::viewer::ViewerStats;
use crate::ViewError;

/// Size of the per-thread read buffer; one read never returns more.
pub const READ_BUF_LEN: usize = 64 * 1024;

thread_local! {
    static READ_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUF_LEN].into_boxed_slice());
}

/// Waits for data on `sock` and hands one read of it to `f`; returns the count, 0 at EOF.
///
/// Cancel-safe: nothing is read until the socket is readable, and the read itself is
/// synchronous. `f` must not await and must not call this function.
pub async fn read_with<F>(sock: &TcpStream, mut f: F) -> Result<usize, ViewError>
where
    F: FnMut(&[u8]) -> Result<(), ViewError>,
{
    loop {
        sock.readable().await?;
        let got = READ_BUF.with(|b| {
            let mut b = b.borrow_mut();
            match sock.try_read(&mut b) {
                Ok(n) => f(&b[..n]).map(|()| Some(n)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e.into()),
            }
        })?;
        if let Some(n) = got {
            return Ok(n);
        }
    }
}

/// As [`read_with`] for one datagram.
pub async fn recv_with<F>(sock: &UdpSocket, mut f: F) -> Result<usize, ViewError>
where
    F: FnMut(&[u8]) -> Result<(), ViewError>,
{
    loop {
        sock.readable().await?;
        let got = READ_BUF.with(|b| {
            let mut b = b.borrow_mut();
            match sock.try_recv(&mut b) {
                Ok(n) => f(&b[..n]).map(|()| Some(n)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e.into()),
            }
        })?;
        if let Some(n) = got {
            return Ok(n);
        }
    }
}

/// How a viewer waits for its next read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Reads as soon as anything arrives (the latency probes).
    Eager,
    /// After a read that drained the socket, sleeps this long, so the next read collects
    /// several messages at once (see [`crate::viewer::READ_PACE`]).
    Paced(Duration),
    /// Once the first video frame has arrived, sets `SO_RCVLOWAT` to this many bytes: the
    /// kernel wakes the viewer only when that much is queued, as a client on a real network
    /// is woken by segments arriving rather than by each of the server's writes.
    LowWater(u32),
}

impl ReadMode {
    /// The low-water mark of `--reader lowat` without a value.
    pub const DEFAULT_LOW_WATER: u32 = 16 * 1024;

    /// Parses `eager`, `pace[=MS]` or `lowat[=BYTES]`.
    pub fn parse(s: &str) -> Option<ReadMode> {
        let (name, value) = s.split_once('=').map_or((s, None), |(n, v)| (n, Some(v)));
        match (name, value) {
            ("eager", None) => Some(ReadMode::Eager),
            ("pace", None) => Some(ReadMode::Paced(crate::viewer::READ_PACE)),
            ("pace", Some(ms)) => ms
                .parse::<u64>()
                .ok()
                .filter(|ms| (1..=10_000).contains(ms))
                .map(|ms| ReadMode::Paced(Duration::from_millis(ms))),
            ("lowat", None) => Some(ReadMode::LowWater(Self::DEFAULT_LOW_WATER)),
            ("lowat", Some(b)) => b
                .parse::<u32>()
                .ok()
                .filter(|b| (1..=READ_BUF_LEN as u32).contains(b))
                .map(ReadMode::LowWater),
            _ => None,
        }
    }
}

/// One viewer's read pacing, applied between its reads.
#[derive(Debug)]
pub struct Reader {
    mode: ReadMode,
    armed: bool,
    stats: Arc<ViewerStats>,
}

impl Reader {
    /// Pacing `mode` for the viewer counting into `stats`.
    pub fn new(mode: ReadMode, stats: Arc<ViewerStats>) -> Reader {
        Reader {
            mode,
            armed: false,
            stats,
        }
    }

    /// True for a latency probe (it reads as soon as data arrives).
    pub fn probing(&self) -> bool {
        self.mode == ReadMode::Eager
    }

    /// Called after each read of `n` bytes from `sock`.
    pub async fn after_read(&mut self, n: usize, sock: &TcpStream) -> Result<(), ViewError> {
        match self.mode {
            ReadMode::Eager => {}
            ReadMode::Paced(p) => {
                if n < READ_BUF_LEN {
                    tokio::time::sleep(p).await;
                }
            }
            ReadMode::LowWater(bytes) => {
                if !self.armed && self.stats.playing.load(Ordering::Relaxed) {
                    set_rcvlowat(sock, bytes)?;
                    self.armed = true;
                }
            }
        }
        Ok(())
    }
}

fn set_rcvlowat(sock: &TcpStream, bytes: u32) -> std::io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: the fd is an open socket owned by `sock` for the duration of the call, and the
    // option value is a c_int that outlives the call, with its size passed alongside.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Writes all of `data` through a shared reference (so a task can write while it also waits
/// for reads on the same socket).
pub async fn write_all(sock: &TcpStream, mut data: &[u8]) -> Result<(), ViewError> {
    while !data.is_empty() {
        sock.writable().await?;
        match sock.try_write(data) {
            Ok(0) => return Err(ViewError::Closed),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Splits `scheme://authority/rest` into the authority and `/rest`.
pub fn split_url<'a>(url: &'a str, scheme: &str) -> Result<(&'a str, &'a str), ViewError> {
    let rest = url
        .strip_prefix(scheme)
        .and_then(|r| r.strip_prefix("://"))
        .ok_or_else(|| ViewError::Url(format!("{url}: expected a {scheme}:// URL")))?;
    match rest.find('/') {
        Some(i) if i > 0 => Ok((&rest[..i], &rest[i..])),
        _ => Err(ViewError::Url(format!("{url}: no host or path"))),
    }
}

/// Adds the default port when the authority has none.
pub fn with_port(authority: &str, port: u16) -> String {
    if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_authority_and_path() {
        let ok = [
            ("rtmp://h:1935/live/a", "rtmp", "h:1935", "/live/a"),
            ("http://h/live/a.flv", "http", "h", "/live/a.flv"),
        ];
        for (url, scheme, auth, path) in ok {
            assert_eq!(split_url(url, scheme).ok(), Some((auth, path)), "{url}");
        }
        for bad in ["http://", "http:///x", "rtsp://h/x", "http://host"] {
            assert!(split_url(bad, "http").is_err(), "{bad}");
        }
        assert_eq!(with_port("h", 80), "h:80");
        assert_eq!(with_port("h:81", 80), "h:81");
    }
}
