//! A minimal client side of an RTMP connection (plain or digest handshake,
//! connect, createStream, publish, play), used by tests and the load tool.

use std::collections::{HashMap, VecDeque};

use amf::Amf0Value;
use bytes::{Bytes, BytesMut};

use crate::chunk::{ChunkDecoder, ChunkEncoder, RawMessage};
use crate::command::{encode_values, Command};
use crate::handshake::ClientHandshake;
use crate::message::{csid, type_id, UserControlEvent};
use crate::session::SessionError;

/// What the client reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientSessionEvent {
    /// `connect` succeeded.
    Connected,
    /// `createStream` returned this message stream id.
    StreamCreated(u32),
    /// An `onStatus` (or `_error`) with its code.
    Status {
        /// Message stream id.
        stream_id: u32,
        /// `status` or `error`.
        level: String,
        /// The status code.
        code: String,
    },
    /// Any other command received (`onFCPublish`, `_result` of other calls, ...).
    Command(String),
    /// A user control event.
    UserControl(UserControlEvent),
    /// An audio, video or data message.
    Media(RawMessage),
}

/// The client side of one RTMP connection.
#[derive(Debug)]
pub struct ClientSession {
    handshake: ClientHandshake,
    input: BytesMut,
    output: BytesMut,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    events: VecDeque<ClientSessionEvent>,
    next_txn: f64,
    create_stream_txns: HashMap<u64, ()>,
    connect_txn: f64,
}

impl ClientSession {
    /// Creates a client and writes C0 + C1; `digest` selects the complex form.
    pub fn new(seed: u64, digest: bool) -> Self {
        let mut c = ClientSession {
            handshake: ClientHandshake::new(seed, digest),
            input: BytesMut::new(),
            output: BytesMut::new(),
            decoder: ChunkDecoder::default(),
            encoder: ChunkEncoder::default(),
            events: VecDeque::new(),
            next_txn: 1.0,
            create_stream_txns: HashMap::new(),
            connect_txn: 0.0,
        };
        c.handshake.start(&mut c.output);
        c
    }

    /// True once the handshake has completed.
    pub fn is_handshake_done(&self) -> bool {
        self.handshake.is_done()
    }

    /// Feeds bytes from the server.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        self.input.extend_from_slice(bytes);
        if !self.handshake.is_done() {
            self.handshake.feed(&mut self.input, &mut self.output)?;
        }
        Ok(())
    }

    /// Takes the bytes to send.
    pub fn take_output(&mut self) -> BytesMut {
        self.output.split()
    }

    /// Returns the next event; `Ok(None)` means more input is needed.
    pub fn poll_event(&mut self) -> Result<Option<ClientSessionEvent>, SessionError> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Ok(Some(ev));
            }
            if !self.handshake.is_done() {
                return Ok(None);
            }
            let Some(msg) = self.decoder.decode(&mut self.input)? else {
                return Ok(None);
            };
            self.handle(msg)?;
        }
    }

    fn handle(&mut self, msg: RawMessage) -> Result<(), SessionError> {
        match msg.type_id {
            type_id::USER_CONTROL => {
                if let Some(ev) = UserControlEvent::parse(&msg.payload) {
                    if let UserControlEvent::PingRequest(t) = ev {
                        self.send(
                            csid::CONTROL,
                            type_id::USER_CONTROL,
                            0,
                            0,
                            &UserControlEvent::PingResponse(t).to_bytes(),
                        );
                    }
                    self.events.push_back(ClientSessionEvent::UserControl(ev));
                }
            }
            type_id::COMMAND_AMF0 | type_id::COMMAND_AMF3 => {
                let cmd = Command::decode(msg.type_id, &msg.payload).map_err(|source| {
                    SessionError::Amf {
                        type_id: msg.type_id,
                        stream_id: msg.stream_id,
                        source,
                    }
                })?;
                self.command(msg.stream_id, cmd);
            }
            type_id::AUDIO | type_id::VIDEO | type_id::DATA_AMF0 | type_id::DATA_AMF3 => {
                self.events.push_back(ClientSessionEvent::Media(msg));
            }
            _ => {}
        }
        Ok(())
    }

    fn command(&mut self, stream_id: u32, cmd: Command) {
        let txn = cmd.transaction_id;
        let code = |c: &Command| {
            let info = c.args.first();
            let s = |k| {
                info.and_then(|i| i.get(k))
                    .and_then(Amf0Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            (s("level"), s("code"))
        };
        match cmd.name.as_str() {
            "_result" if txn == self.connect_txn => {
                self.events.push_back(ClientSessionEvent::Connected)
            }
            "_result" if self.create_stream_txns.remove(&(txn as u64)).is_some() => {
                let id = cmd.arg_f64(0).unwrap_or(0.0) as u32;
                self.events.push_back(ClientSessionEvent::StreamCreated(id));
            }
            "onStatus" | "_error" => {
                let (level, code) = code(&cmd);
                self.events.push_back(ClientSessionEvent::Status {
                    stream_id,
                    level,
                    code,
                });
            }
            _ => self.events.push_back(ClientSessionEvent::Command(cmd.name)),
        }
    }

    fn txn(&mut self) -> f64 {
        let t = self.next_txn;
        self.next_txn += 1.0;
        t
    }

    fn send(&mut self, cs: u32, type_id: u8, stream_id: u32, timestamp: u32, body: &[u8]) {
        self.encoder
            .write(cs, timestamp, type_id, stream_id, body, &mut self.output);
    }

    fn call(&mut self, stream_id: u32, values: &[Amf0Value]) {
        let body = encode_values(values);
        let cs = if stream_id == 0 {
            csid::COMMAND
        } else {
            csid::STREAM_COMMAND
        };
        self.send(cs, type_id::COMMAND_AMF0, stream_id, 0, &body);
    }

    /// Announces our outgoing chunk size and switches to it.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.send(
            csid::CONTROL,
            type_id::SET_CHUNK_SIZE,
            0,
            0,
            &size.to_be_bytes(),
        );
        // Callers pass sizes they know to be valid; an invalid one keeps the old size.
        let _ = self.encoder.set_chunk_size(size);
    }

    /// Sends `connect` for `app`.
    pub fn connect(&mut self, app: &str, tc_url: &str) {
        let txn = self.txn();
        self.connect_txn = txn;
        let obj = Amf0Value::object([
            ("app", Amf0Value::from(app)),
            ("type", "nonprivate".into()),
            ("flashVer", "FMLE/3.0 (compatible; rtmp-load)".into()),
            ("tcUrl", tc_url.into()),
        ]);
        self.call(0, &["connect".into(), Amf0Value::Number(txn), obj]);
    }

    /// Sends `createStream`.
    pub fn create_stream(&mut self) {
        let txn = self.txn();
        self.create_stream_txns.insert(txn as u64, ());
        self.call(
            0,
            &[
                "createStream".into(),
                Amf0Value::Number(txn),
                Amf0Value::Null,
            ],
        );
    }

    /// Sends `publish` (live) on `stream_id`.
    pub fn publish(&mut self, stream_id: u32, name: &str) {
        let txn = self.txn();
        self.call(
            stream_id,
            &[
                "publish".into(),
                Amf0Value::Number(txn),
                Amf0Value::Null,
                name.into(),
                "live".into(),
            ],
        );
    }

    /// Sends `play` (live, reset) on `stream_id`.
    pub fn play(&mut self, stream_id: u32, name: &str) {
        let txn = self.txn();
        self.call(
            stream_id,
            &[
                "play".into(),
                Amf0Value::Number(txn),
                Amf0Value::Null,
                name.into(),
                Amf0Value::Number(-2.0),
            ],
        );
    }

    /// Sends `deleteStream`.
    pub fn delete_stream(&mut self, stream_id: u32) {
        self.call(
            0,
            &[
                "deleteStream".into(),
                Amf0Value::Number(0.0),
                Amf0Value::Null,
                Amf0Value::Number(f64::from(stream_id)),
            ],
        );
    }

    /// Sends `@setDataFrame` + the given `onMetaData` body (as ffmpeg does).
    pub fn send_metadata(&mut self, stream_id: u32, on_metadata: &[u8]) {
        let mut body = encode_values(&["@setDataFrame".into()]).to_vec();
        body.extend_from_slice(on_metadata);
        self.send(
            csid::STREAM_COMMAND,
            type_id::DATA_AMF0,
            stream_id,
            0,
            &body,
        );
    }

    /// Sends one audio or video message.
    pub fn send_media(&mut self, stream_id: u32, type_id: u8, timestamp: u32, payload: &Bytes) {
        let cs = if type_id == type_id::AUDIO {
            csid::AUDIO
        } else {
            csid::VIDEO
        };
        self.send(cs, type_id, stream_id, timestamp, payload);
    }
}
