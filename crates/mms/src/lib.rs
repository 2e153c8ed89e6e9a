//! Sans-IO framing for the two MMS transports that legacy Windows Media clients use.
//!
//! - [`mmsh`]: MMS over HTTP (MS-WMSP). Request classification from the `User-Agent` and
//!   `Pragma` headers, response headers, and the `$H` / `$D` / `$E` chunk framing. The HTTP
//!   exchange itself belongs to the shell.
//! - [`mmst`]: MMS over TCP (MS-MMSP). The sealed command packets, a server session that answers
//!   the command sequence of ffmpeg's `mmst://` client and Windows Media Player, and the data
//!   packet prefix for header and media packets.
//!
//! What it is not: an ASF muxer (crate `asf` makes the header and packets this crate frames),
//! nor a network server (crate `mms-server`). It reads no clock and opens no socket.
//!
//! | specification | sections | module |
//! |---|---|---|
//! | MS-WMSP (Windows Media HTTP Streaming Protocol) | 2.2.1.4 Pragma directives, 2.2.3.1 framing and `$H`/`$D`, 2.2.3.3 `$E` | [`mmsh`] |
//! | MS-MMSP (Microsoft Media Server Protocol) | 2.2.2 data packets, 2.2.3 TcpMessageHeader, 2.2.4 messages 0x01, 0x02, 0x05, 0x06, 0x07, 0x09, 0x0D, 0x11, 0x15, 0x18, 0x1B, 0x1E, 0x21, 0x33 | [`mmst`] |
//!
//! Both were checked against the behaviour of ffmpeg 5.1's `mmsh.c` and `mmst.c`, the clients
//! the integration tests drive.

pub mod mmsh;
pub mod mmst;
