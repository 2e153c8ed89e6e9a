//! MMST: MMS over TCP, the Microsoft Media Server protocol (MS-MMSP), server side.
//!
//! Commands travel in sealed packets (MS-MMSP 2.2.3, "TcpMessageHeader"):
//!
//! | offset | field | value |
//! |---|---|---|
//! | 0 | rep, version, versionMinor, padding | 01 00 00 00 |
//! | 4 | sessionId | 0xB00BFACE |
//! | 8 | messageLength | bytes after this 16-byte prefix |
//! | 12 | seal | `MMS ` |
//! | 16 | chunkCount | messageLength / 8 |
//! | 20 | seq, MBZ | |
//! | 24 | timeSent | 8 bytes |
//! | 32 | chunkLen | chunkCount - 2 |
//! | 36 | MID | command id (16 bits), then direction: 3 to the server, 4 to the client |
//! | 40 | body | server reports start with a 32-bit HRESULT |
//!
//! and are padded to a multiple of 8 bytes. Media travels in data packets (2.2.2) with an 8-byte
//! prefix: location id (32 bits), incarnation (8), AFFlags (8), length including the prefix (16).
//! Header packets carry the incarnation of the client's ReadBlock, media packets that of its
//! StartPlaying; ffmpeg's `mmst.c` drops packets whose incarnation it did not ask for.
//!
//! [`ServerSession`] answers the command sequence that ffmpeg and Windows Media Player send:
//! Connect, FunnelInfo, ConnectFunnel, OpenFile, ReadBlock, StreamSwitch, StartPlaying, Pong,
//! StopPlaying and CloseFile. Opening a file is a policy decision the caller makes
//! ([`ServerSession::accept_open`] / [`ServerSession::reject_open`]).

use std::collections::VecDeque;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The sealed packet prefix before the MID.
pub const COMMAND_HEADER_LEN: usize = 40;
/// `sessionId` of every command packet.
pub const SESSION_ID: u32 = 0xB00B_FACE;
/// The protocol seal, `MMS ` read as a little-endian 32-bit value.
pub const SEAL: u32 = u32::from_le_bytes(*b"MMS ");
/// The largest command a client may send. Real clients send under 1 KiB (OpenFile carries a
/// path); anything larger is framing corruption.
pub const MAX_COMMAND_LEN: usize = 16 * 1024;
/// The data packet prefix.
pub const DATA_PREFIX_LEN: usize = 8;
/// The largest payload of one data packet (16-bit length including the prefix).
pub const MAX_DATA_PAYLOAD: usize = u16::MAX as usize - DATA_PREFIX_LEN;
/// Direction of client commands.
const TO_SERVER: u16 = 0x0003;
/// Direction of server reports.
const TO_CLIENT: u16 = 0x0004;

/// Client command ids (MS-MMSP 2.2.4, low 16 bits of the MID).
pub mod cmd {
    pub const CONNECT: u16 = 0x01;
    pub const CONNECT_FUNNEL: u16 = 0x02;
    pub const OPEN_FILE: u16 = 0x05;
    pub const START_PLAYING: u16 = 0x07;
    pub const STOP_PLAYING: u16 = 0x09;
    pub const CLOSE_FILE: u16 = 0x0D;
    pub const READ_BLOCK: u16 = 0x15;
    pub const FUNNEL_INFO: u16 = 0x18;
    pub const SECURITY_RESPONSE: u16 = 0x1A;
    pub const PONG: u16 = 0x1B;
    pub const STREAM_SWITCH: u16 = 0x33;
}

/// Server report ids.
pub mod report {
    pub const CONNECTED_EX: u16 = 0x01;
    pub const CONNECTED_FUNNEL: u16 = 0x02;
    pub const START_PLAYING: u16 = 0x05;
    pub const OPEN_FILE: u16 = 0x06;
    pub const READ_BLOCK: u16 = 0x11;
    pub const FUNNEL_INFO: u16 = 0x15;
    pub const PING: u16 = 0x1B;
    pub const END_OF_STREAM: u16 = 0x1E;
    pub const STREAM_SWITCH: u16 = 0x21;
}

/// HRESULT for an unknown publishing point: NS_E_FILE_NOT_FOUND.
pub const NS_E_FILE_NOT_FOUND: u32 = 0xC00D_001A;
/// HRESULT for a publishing point the client may not open: E_ACCESSDENIED, the Windows
/// "Access is denied" (winerror.h). ffmpeg's `mmst.c` prints the code and gives up.
pub const E_ACCESSDENIED: u32 = 0x8007_0005;
/// HRESULT for a command out of sequence: E_FAIL.
pub const E_FAIL: u32 = 0x8000_4005;
/// ReportOpenFile filePacketCount for a broadcast: unknown, so 0 (clients go by the broadcast
/// attribute).
const BROADCAST_PACKET_COUNT: u64 = 0;
/// ReportOpenFile fileAttributes: a broadcast (live) publishing point that cannot seek.
const FILE_ATTRIBUTES_BROADCAST: u32 = 0x0240_0000;

/// Framing errors: the connection cannot continue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MmstError {
    #[error("not an MMS command packet at byte {offset}: sessionId {session_id:#010x}, expected 0xb00bface")]
    BadSessionId { offset: u64, session_id: u32 },
    #[error("bad seal {seal:#010x} at byte {offset}, expected \"MMS \"")]
    BadSeal { offset: u64, seal: u32 },
    #[error("command length {len} at byte {offset} is outside 24..={max}")]
    BadLength { offset: u64, len: usize, max: usize },
    #[error("command {mid:#06x} at byte {offset} has direction {direction:#06x}, expected 0x0003")]
    BadDirection {
        offset: u64,
        mid: u16,
        direction: u16,
    },
}

/// One decoded client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub mid: u16,
    pub seq: u32,
    /// Everything after the MID (the padding to 8 bytes included).
    pub body: Bytes,
}

/// Splits a byte stream into commands. "Need more bytes" is `Ok(None)`.
#[derive(Debug, Default)]
pub struct CommandDecoder {
    consumed: u64,
}

impl CommandDecoder {
    /// Decodes one command from the front of `buf`, if a whole one is there.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Command>, MmstError> {
        if buf.len() < 16 {
            return Ok(None);
        }
        let offset = self.consumed;
        let session_id = le32(buf, 4);
        if session_id != SESSION_ID {
            return Err(MmstError::BadSessionId { offset, session_id });
        }
        let len = le32(buf, 8) as usize;
        if !(COMMAND_HEADER_LEN - 16..=MAX_COMMAND_LEN).contains(&len) {
            return Err(MmstError::BadLength {
                offset,
                len,
                max: MAX_COMMAND_LEN,
            });
        }
        let seal = le32(buf, 12);
        if seal != SEAL {
            return Err(MmstError::BadSeal { offset, seal });
        }
        if buf.len() < 16 + len {
            return Ok(None);
        }
        let mut packet = buf.split_to(16 + len).freeze();
        self.consumed += packet.len() as u64;
        let seq = le32(&packet, 20);
        let mid = le16(&packet, 36);
        let direction = le16(&packet, 38);
        if direction != TO_SERVER {
            return Err(MmstError::BadDirection {
                offset,
                mid,
                direction,
            });
        }
        packet.advance(COMMAND_HEADER_LEN);
        Ok(Some(Command {
            mid,
            seq,
            body: packet,
        }))
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

/// Builds one server report: the sealed header, the MID with the to-client direction, `body`
/// (which starts with the HRESULT), padded to 8 bytes.
pub fn encode_report(mid: u16, seq: u32, body: &[u8]) -> Bytes {
    let total = (COMMAND_HEADER_LEN + body.len()).div_ceil(8) * 8;
    let len = (total - 16) as u32;
    let mut out = BytesMut::with_capacity(total);
    out.put_u32_le(1);
    out.put_u32_le(SESSION_ID);
    out.put_u32_le(len);
    out.put_u32_le(SEAL);
    out.put_u32_le(len / 8);
    out.put_u32_le(seq);
    out.put_u64_le(0); // timeSent
    out.put_u32_le(len / 8 - 2);
    out.put_u16_le(mid);
    out.put_u16_le(TO_CLIENT);
    out.put_slice(body);
    out.put_bytes(0, total - out.len());
    out.freeze()
}

/// The 8-byte prefix of a data packet.
pub fn data_prefix(location_id: u32, incarnation: u8, af_flags: u8, payload_len: usize) -> [u8; 8] {
    let len = (payload_len.min(MAX_DATA_PAYLOAD) + DATA_PREFIX_LEN) as u16;
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&location_id.to_le_bytes());
    out[4] = incarnation;
    out[5] = af_flags;
    out[6..].copy_from_slice(&len.to_le_bytes());
    out
}

/// What the caller must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The client connected; `player` is its subscriber name (`NSPlayer/7.0...; {guid}; Host: ...`).
    Connected { player: String },
    /// The client asks for a publishing point. Answer with `accept_open` or `reject_open`; no
    /// further command is processed until then.
    OpenFile { path: String },
    /// The client selected streams: (stream number, thinning level; 0 = full, 2 = off).
    StreamSwitch { streams: Vec<(u16, u16)> },
    /// Media may flow now: frame each packet with [`ServerSession::media_prefix`].
    Play,
    /// The client stopped playing (StopPlaying) but keeps the connection.
    Stop,
    /// The client closed the file (CloseFile): end the connection.
    Close,
    /// A command this server does not implement was ignored.
    Ignored { mid: u16 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Opening,
    Open,
    Playing,
}

/// One MMST connection, server side, sans IO: feed received bytes, drain bytes to send and
/// events to act on.
#[derive(Debug)]
pub struct ServerSession {
    decoder: CommandDecoder,
    inbuf: BytesMut,
    phase: Phase,
    seq: u32,
    header: Bytes,
    open_incarnation: u32,
    play_incarnation: u8,
    location_id: u32,
    transmit: VecDeque<Bytes>,
    events: VecDeque<SessionEvent>,
}

impl Default for ServerSession {
    fn default() -> Self {
        ServerSession::new()
    }
}

impl ServerSession {
    pub fn new() -> ServerSession {
        ServerSession {
            decoder: CommandDecoder::default(),
            inbuf: BytesMut::new(),
            phase: Phase::Idle,
            seq: 0,
            header: Bytes::new(),
            open_incarnation: 0,
            play_incarnation: 0,
            location_id: 0,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Feeds received bytes and processes every complete command. An error means the framing
    /// is corrupt: close the connection.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), MmstError> {
        if self.inbuf.len() + data.len() > 2 * MAX_COMMAND_LEN {
            // More unprocessed input than two maximal commands: the client ignores our answers.
            let len = self.inbuf.len() + data.len();
            return Err(MmstError::BadLength {
                offset: self.decoder.consumed,
                len,
                max: 2 * MAX_COMMAND_LEN,
            });
        }
        self.inbuf.extend_from_slice(data);
        self.process()
    }

    /// Bytes to write to the socket, in order.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.pop_front()
    }

    /// The next event to act on.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// True once StartPlaying was answered: media packets may be sent.
    pub fn is_playing(&self) -> bool {
        self.phase == Phase::Playing
    }

    /// Accepts the pending OpenFile with the stream's ASF header and packet size.
    pub fn accept_open(&mut self, header: Bytes, packet_size: u32) -> Result<(), MmstError> {
        let body = open_file_report(0, self.open_incarnation, packet_size, header.len() as u32);
        self.header = header;
        self.reply(report::OPEN_FILE, &body);
        self.phase = Phase::Open;
        self.process()
    }

    /// Refuses the pending OpenFile with `hr` (e.g. [`NS_E_FILE_NOT_FOUND`]); the client gives up.
    pub fn reject_open(&mut self, hr: u32) -> Result<(), MmstError> {
        let body = open_file_report(hr, self.open_incarnation, 0, 0);
        self.reply(report::OPEN_FILE, &body);
        self.phase = Phase::Idle;
        self.process()
    }

    /// The prefix for the next media packet of `len` bytes (send it, then the packet).
    pub fn media_prefix(&mut self, len: usize) -> [u8; 8] {
        let p = data_prefix(self.location_id, self.play_incarnation, 0, len);
        self.location_id = self.location_id.wrapping_add(1);
        p
    }

    /// Queues the end-of-stream report (the broadcast ended); close the connection after it.
    pub fn end_of_stream(&mut self) {
        let mut b = Vec::with_capacity(8);
        b.put_u32_le(0);
        b.put_u32_le(u32::from(self.play_incarnation));
        self.reply(report::END_OF_STREAM, &b);
        self.phase = Phase::Open;
    }

    fn process(&mut self) -> Result<(), MmstError> {
        while self.phase != Phase::Opening {
            let Some(c) = self.decoder.decode(&mut self.inbuf)? else {
                return Ok(());
            };
            self.handle_command(c);
        }
        Ok(())
    }

    fn handle_command(&mut self, c: Command) {
        match c.mid {
            cmd::CONNECT => self.on_connect(&c.body),
            cmd::FUNNEL_INFO => self.reply(report::FUNNEL_INFO, &funnel_info_report()),
            cmd::CONNECT_FUNNEL => self.reply(report::CONNECTED_FUNNEL, &[0u8; 8]),
            cmd::OPEN_FILE => self.on_open_file(&c.body),
            cmd::READ_BLOCK => self.on_read_block(&c.body),
            cmd::STREAM_SWITCH => self.on_stream_switch(&c.body),
            cmd::START_PLAYING => self.on_start_playing(&c.body),
            cmd::STOP_PLAYING => {
                self.phase = Phase::Open;
                self.events.push_back(SessionEvent::Stop);
            }
            cmd::CLOSE_FILE => self.events.push_back(SessionEvent::Close),
            cmd::PONG => {}
            mid => self.events.push_back(SessionEvent::Ignored { mid }),
        }
    }

    fn reply(&mut self, mid: u16, body: &[u8]) {
        self.transmit.push_back(encode_report(mid, self.seq, body));
        self.seq = self.seq.wrapping_add(1);
    }

    /// LinkViewerToMacConnect: playIncarnation, MacToViewerProtocolRevision, then the UTF-16
    /// subscriber name.
    fn on_connect(&mut self, body: &[u8]) {
        let player = utf16z(body.get(12..).unwrap_or(&[]));
        self.reply(report::CONNECTED_EX, &connected_ex_report());
        self.events.push_back(SessionEvent::Connected { player });
    }

    /// LinkViewerToMacOpenFile: playIncarnation, spare, token, cbToken, then the UTF-16 path.
    fn on_open_file(&mut self, body: &[u8]) {
        self.open_incarnation = le32(body, 0);
        let path = utf16z(body.get(16..).unwrap_or(&[]));
        self.phase = Phase::Opening;
        self.events.push_back(SessionEvent::OpenFile { path });
    }

    /// LinkViewerToMacReadBlock: its playIncarnation (offset 40) tags the header packets.
    fn on_read_block(&mut self, body: &[u8]) {
        let incarnation = le32(body, 40);
        let sequence = le32(body, 44);
        let hr = if self.phase == Phase::Idle { E_FAIL } else { 0 };
        let mut b = Vec::with_capacity(12);
        b.put_u32_le(hr);
        b.put_u32_le(incarnation);
        b.put_u32_le(sequence);
        self.reply(report::READ_BLOCK, &b);
        if hr == 0 {
            self.queue_header(incarnation as u8);
        }
    }

    /// Header packets: AFFlags 0x04 while more follow, 0x08 on the last, 0x0C when one holds it
    /// all (ffmpeg's mmst.c refuses a last header packet with other flags).
    fn queue_header(&mut self, incarnation: u8) {
        let chunks: Vec<Bytes> = (0..self.header.len())
            .step_by(MAX_DATA_PAYLOAD)
            .map(|at| {
                self.header
                    .slice(at..(at + MAX_DATA_PAYLOAD).min(self.header.len()))
            })
            .collect();
        let count = chunks.len();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let flags = match (count, i + 1 == count) {
                (1, _) => 0x0C,
                (_, true) => 0x08,
                _ => 0x04,
            };
            let prefix = data_prefix(i as u32, incarnation, flags, chunk.len());
            self.transmit.push_back(Bytes::copy_from_slice(&prefix));
            self.transmit.push_back(chunk);
        }
    }

    /// LinkViewerToMacStreamSwitch: a count, then (source, stream, thinning) triples.
    fn on_stream_switch(&mut self, body: &[u8]) {
        let count = (le32(body, 0) as usize).min(128);
        let streams = (0..count)
            .map_while(|i| {
                let at = 4 + i * 6;
                body.get(at..at + 6)
                    .map(|_| (le16(body, at + 2), le16(body, at + 4)))
            })
            .collect();
        self.reply(report::STREAM_SWITCH, &[0u8; 4]);
        self.events
            .push_back(SessionEvent::StreamSwitch { streams });
    }

    /// LinkViewerToMacStartPlaying: its playIncarnation (offset 28) tags every media packet.
    fn on_start_playing(&mut self, body: &[u8]) {
        let incarnation = le32(body, 28);
        let hr = if self.phase == Phase::Idle { E_FAIL } else { 0 };
        let mut b = Vec::with_capacity(24);
        b.put_u32_le(hr);
        b.put_u32_le(incarnation);
        b.put_u32_le(1); // tigerFileId
        b.put_bytes(0, 12);
        self.reply(report::START_PLAYING, &b);
        if hr == 0 {
            self.play_incarnation = incarnation as u8;
            self.phase = Phase::Playing;
            self.events.push_back(SessionEvent::Play);
        }
    }
}

/// LinkMacToViewerReportConnectedEX (MS-MMSP 2.2.4.17).
fn connected_ex_report() -> Vec<u8> {
    let version: Vec<u16> = "9.01.01.3841".encode_utf16().chain([0]).collect();
    let mut b = Vec::with_capacity(64);
    b.put_u32_le(0); // hr
    b.put_u32_le(0xF0F0_F0EF); // playIncarnation
    b.put_u32_le(0x0004_000B); // MacToViewerProtocolRevision
    b.put_u32_le(0x0003_001C); // ViewerToMacProtocolRevision
    b.put_f64_le(1.0); // blockGroupPlayTime
    b.put_u32_le(1); // blockGroupBlocks
    b.put_u32_le(1); // nMaxOpenFiles
    b.put_u32_le(0x8000); // nBlockMaxBytes
    b.put_u32_le(0x0098_9680); // maxBitRate
    b.put_u32_le(version.len() as u32); // cbServerVersionInfo, in characters
    b.put_u32_le(0); // cbVersionInfo
    b.put_u32_le(0); // cbVersionUrl
    b.put_u32_le(0); // cbAuthenPackage
    version.iter().for_each(|c| b.put_u16_le(*c));
    b
}

/// LinkMacToViewerReportFunnelInfo (MS-MMSP 2.2.4.19).
fn funnel_info_report() -> Vec<u8> {
    let mut b = Vec::with_capacity(12);
    b.put_u32_le(0); // hr
    b.put_u32_le(0xF0F0_F0F0); // playIncarnation
    b.put_u32_le(0); // transport mask
    b
}

/// LinkMacToViewerReportOpenFile (MS-MMSP 2.2.4.18).
fn open_file_report(hr: u32, incarnation: u32, packet_size: u32, header_size: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(112);
    b.put_u32_le(hr);
    b.put_u32_le(incarnation);
    b.put_u32_le(1); // openFileId
    b.put_u32_le(0); // padding
    b.put_u32_le(0); // fileName
    b.put_u32_le(if hr == 0 {
        FILE_ATTRIBUTES_BROADCAST
    } else {
        0
    });
    b.put_f64_le(0.0); // fileDuration: unknown for a broadcast
    b.put_u32_le(0); // fileBlocks
    b.put_bytes(0, 16); // unused1
    b.put_u32_le(packet_size);
    b.put_u64_le(BROADCAST_PACKET_COUNT); // filePacketCount
    b.put_u32_le(0); // fileBitRate
    b.put_u32_le(header_size);
    b.put_bytes(0, 36); // unused2
    b
}

/// Decodes a NUL-terminated UTF-16LE string, stopping at the end of `b`.
fn utf16z(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

#[cfg(test)]
mod tests;
