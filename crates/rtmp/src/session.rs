//! The server side of an RTMP connection as a sans-IO state machine.
//!
//! The caller feeds received bytes with [`ServerSession::feed`], pulls
//! [`ServerSessionEvent`]s with [`ServerSession::poll_event`], answers policy
//! events (`accept_publish`, `reject_play`, ...), and writes whatever
//! [`ServerSession::take_output`] returns. Messages are decoded lazily inside
//! `poll_event`, so an answer given to one event is in force before the next
//! message is looked at (media that follows a `publish` in the same read is
//! judged after the caller accepted or refused it).

use std::collections::{HashMap, VecDeque};

use amf::{Amf0Value, AmfError};
use bytes::{Bytes, BytesMut};

use crate::chunk::{ChunkDecoder, ChunkEncoder, ChunkError, MessageChunking, RawMessage};
use crate::command::{
    encode_values, on_status, status, status_object, strip_amf3_format_byte, Command,
};
use crate::handshake::{HandshakeError, ServerHandshake};
use crate::message::{csid, split_aggregate, type_id, AggregateError, UserControlEvent};

/// Most message streams one connection may create (`createStream`).
pub const MAX_STREAMS_PER_CONNECTION: usize = 16;

/// Settings of a [`ServerSession`].
#[derive(Debug, Clone)]
pub struct ServerSessionConfig {
    /// Chunk size we send with (announced right after `connect`).
    pub out_chunk_size: u32,
    /// Longest message accepted from the peer.
    pub max_message_size: u32,
    /// Window Acknowledgement Size and Set Peer Bandwidth we announce.
    pub window_ack_size: u32,
    /// Seed for the handshake filler bytes.
    pub seed: u64,
    /// Time field for S1 (milliseconds; any value is valid).
    pub epoch: u32,
}

impl Default for ServerSessionConfig {
    fn default() -> Self {
        ServerSessionConfig {
            out_chunk_size: 4096,
            max_message_size: crate::chunk::DEFAULT_MAX_MESSAGE_SIZE,
            window_ack_size: 2_500_000,
            seed: 0,
            epoch: 0,
        }
    }
}

/// Errors that end the connection.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The handshake failed.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// The chunk stream is corrupt.
    #[error("chunk stream: {0}")]
    Chunk(#[from] ChunkError),
    /// A command message whose AMF does not decode.
    #[error("undecodable AMF in command message (type {type_id}) on stream {stream_id}: {source}")]
    Amf {
        /// Message type id.
        type_id: u8,
        /// Message stream id.
        stream_id: u32,
        /// What was wrong.
        source: AmfError,
    },
    /// An aggregate message whose sub-messages do not fit.
    #[error("aggregate message: {0}")]
    Aggregate(#[from] AggregateError),
}

/// What the session reports to its caller.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerSessionEvent {
    /// `connect` was answered with success.
    Connected {
        /// Application name, `?query` removed.
        app: String,
        /// `tcUrl` as the client sent it.
        tc_url: Option<String>,
        /// The `?query` of the app name, or else of `tcUrl` (OBS puts a server URL's query
        /// in both), kept for auth.
        query: Option<String>,
        /// The client's `objectEncoding` (0 or 3), echoed in our reply.
        object_encoding: f64,
    },
    /// The client wants to publish; answer with `accept_publish` or `reject_publish`.
    PublishRequested {
        /// Message stream id (the handle for the answer).
        stream_id: u32,
        /// Application name.
        app: String,
        /// Stream name without its query.
        name: String,
        /// The `?query` part of the stream name, if any (kept for auth).
        query: Option<String>,
        /// Publishing type: `live`, `record` or `append`.
        mode: String,
    },
    /// The client wants to play; answer with `accept_play` or `reject_play`.
    PlayRequested {
        /// Message stream id (the handle for the answer).
        stream_id: u32,
        /// Application name.
        app: String,
        /// Stream name without its query.
        name: String,
        /// The `?query` part, if any.
        query: Option<String>,
        /// Start argument (-2 live or recorded, -1 live only, >= 0 offset).
        start: f64,
        /// Duration argument (-1 until the end).
        duration: f64,
        /// Whether the client asked for a playlist reset.
        reset: bool,
    },
    /// `onMetaData` script data (with any `@setDataFrame` wrapper removed) on
    /// a publishing stream, ready to be stored as a plain FLV script tag body.
    Metadata {
        /// Message stream id.
        stream_id: u32,
        /// Message timestamp.
        timestamp: u32,
        /// `onMetaData` name plus its value, AMF0 encoded.
        data: Bytes,
    },
    /// An audio message on a publishing stream.
    Audio {
        /// Message stream id.
        stream_id: u32,
        /// Message timestamp in milliseconds (wraps at 2^32).
        timestamp: u32,
        /// The FLV audio tag body.
        data: Bytes,
    },
    /// A video message on a publishing stream.
    Video {
        /// Message stream id.
        stream_id: u32,
        /// Message timestamp in milliseconds (wraps at 2^32).
        timestamp: u32,
        /// The FLV video tag body.
        data: Bytes,
    },
    /// The publisher stopped (FCUnpublish, closeStream or deleteStream).
    Unpublished {
        /// Message stream id.
        stream_id: u32,
    },
    /// A player stopped (closeStream or deleteStream).
    PlayStopped {
        /// Message stream id.
        stream_id: u32,
    },
    /// `pause` (already answered with Pause.Notify / Unpause.Notify).
    Paused {
        /// Message stream id.
        stream_id: u32,
        /// True to pause, false to resume.
        paused: bool,
    },
    /// `receiveAudio` / `receiveVideo`.
    ReceiveMedia {
        /// Message stream id.
        stream_id: u32,
        /// Audio (8) or video (9).
        type_id: u8,
        /// Whether the client wants this media.
        enabled: bool,
    },
    /// A command we do not implement (answered with `_error` when a reply
    /// was expected). Not fatal.
    UnknownCommand {
        /// The command name.
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Idle,
    PublishPending,
    Publishing,
    PlayPending { reset: bool },
    Playing,
}

#[derive(Debug)]
struct StreamState {
    role: Role,
    name: String,
}

/// The server side of one RTMP connection.
#[derive(Debug)]
pub struct ServerSession {
    config: ServerSessionConfig,
    handshake: ServerHandshake,
    input: BytesMut,
    output: BytesMut,
    decoder: ChunkDecoder,
    encoder: ChunkEncoder,
    events: VecDeque<ServerSessionEvent>,
    pending: VecDeque<RawMessage>,
    app: Option<String>,
    streams: HashMap<u32, StreamState>,
    next_stream_id: u32,
    received: u64,
    acked: u64,
    peer_window: u32,
}

impl ServerSession {
    /// Creates a session waiting for the client's C0.
    pub fn new(config: ServerSessionConfig) -> Self {
        ServerSession {
            handshake: ServerHandshake::new(config.seed, config.epoch),
            decoder: ChunkDecoder::new(config.max_message_size),
            config,
            input: BytesMut::with_capacity(4096),
            output: BytesMut::with_capacity(4096),
            encoder: ChunkEncoder::default(),
            events: VecDeque::new(),
            pending: VecDeque::new(),
            app: None,
            streams: HashMap::new(),
            next_stream_id: 1,
            received: 0,
            acked: 0,
            peer_window: 0,
        }
    }

    /// True once the handshake has completed.
    pub fn is_handshake_done(&self) -> bool {
        self.handshake.is_done()
    }

    /// The application name from `connect`, once connected.
    pub fn app(&self) -> Option<&str> {
        self.app.as_deref()
    }

    /// The chunk size we currently send with.
    pub fn out_chunk_size(&self) -> u32 {
        self.encoder.chunk_size()
    }

    /// Feeds bytes received from the peer. Handshake replies are produced
    /// here; messages are decoded by [`Self::poll_event`].
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), SessionError> {
        self.input.extend_from_slice(bytes);
        self.arrived(bytes.len())
    }

    /// The buffer the peer's next bytes go into. A shell reads its socket straight into it
    /// (`read_buf`, after reserving room) and then calls [`Self::arrived`], so received bytes
    /// are never copied on the way in: a message that fits one chunk is split off this buffer
    /// as the payload the bus carries.
    pub fn input_buffer(&mut self) -> &mut BytesMut {
        &mut self.input
    }

    /// Accounts for `n` bytes the shell appended to [`Self::input_buffer`]; the same as
    /// [`Self::feed`] without the copy.
    pub fn arrived(&mut self, n: usize) -> Result<(), SessionError> {
        self.received += n as u64;
        if !self.handshake.is_done() {
            self.handshake.feed(&mut self.input, &mut self.output)?;
        }
        // Acknowledge every window the peer asked for (5.4.3).
        if self.peer_window > 0 && self.received - self.acked >= u64::from(self.peer_window) {
            self.acked = self.received;
            let seq = (self.received as u32).to_be_bytes();
            self.control(type_id::ACKNOWLEDGEMENT, &seq);
        }
        Ok(())
    }

    /// Returns the next event, decoding buffered messages as needed;
    /// `Ok(None)` means more input is needed.
    pub fn poll_event(&mut self) -> Result<Option<ServerSessionEvent>, SessionError> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Ok(Some(ev));
            }
            let msg = match self.pending.pop_front() {
                Some(m) => m,
                None if !self.handshake.is_done() => return Ok(None),
                None => match self.decoder.decode(&mut self.input)? {
                    Some(m) => m,
                    None => return Ok(None),
                },
            };
            self.handle(msg)?;
        }
    }

    /// True when there are bytes to send.
    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// Takes the bytes to send to the peer.
    pub fn take_output(&mut self) -> BytesMut {
        self.output.split()
    }

    fn handle(&mut self, msg: RawMessage) -> Result<(), SessionError> {
        match msg.type_id {
            type_id::SET_CHUNK_SIZE
            | type_id::ABORT
            | type_id::ACKNOWLEDGEMENT
            | type_id::SET_PEER_BANDWIDTH => {}
            type_id::WINDOW_ACK_SIZE => {
                if let Some(b) = msg.payload.get(0..4) {
                    self.peer_window = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
            type_id::USER_CONTROL => self.user_control(&msg.payload),
            type_id::AUDIO | type_id::VIDEO => self.media(msg),
            type_id::DATA_AMF0 | type_id::DATA_AMF3 => self.data(&msg),
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
            type_id::AGGREGATE => {
                // Queue the parts ahead of anything not yet decoded.
                for (i, sub) in split_aggregate(&msg)?.into_iter().enumerate() {
                    self.pending.insert(i, sub);
                }
            }
            // Shared objects (16, 19) and unknown types are ignored.
            _ => {}
        }
        Ok(())
    }

    fn user_control(&mut self, body: &[u8]) {
        if let Some(UserControlEvent::PingRequest(t)) = UserControlEvent::parse(body) {
            self.user_event(UserControlEvent::PingResponse(t));
        }
    }

    fn is_publishing(&self, stream_id: u32) -> bool {
        self.streams
            .get(&stream_id)
            .is_some_and(|s| s.role == Role::Publishing)
    }

    fn media(&mut self, msg: RawMessage) {
        if !self.is_publishing(msg.stream_id) {
            return;
        }
        let (stream_id, timestamp, data) = (msg.stream_id, msg.timestamp, msg.payload);
        self.events.push_back(if msg.type_id == type_id::AUDIO {
            ServerSessionEvent::Audio {
                stream_id,
                timestamp,
                data,
            }
        } else {
            ServerSessionEvent::Video {
                stream_id,
                timestamp,
                data,
            }
        });
    }

    /// Handles `@setDataFrame` / `onMetaData`. Undecodable data messages are
    /// skipped: they carry no framing and losing one is harmless.
    fn data(&mut self, msg: &RawMessage) {
        if !self.is_publishing(msg.stream_id) {
            return;
        }
        let offset = msg.payload.len() - strip_amf3_format_byte(msg.type_id, &msg.payload).len();
        let body = msg.payload.slice(offset..);
        let Ok((first, used)) = amf::decode_amf0(&body) else {
            return;
        };
        let data = match first.as_str() {
            Some("@setDataFrame") => body.slice(used..),
            Some("onMetaData") => body,
            _ => return,
        };
        if !matches!(amf::decode_amf0(&data), Ok((v, _)) if v.as_str() == Some("onMetaData")) {
            return;
        }
        self.events.push_back(ServerSessionEvent::Metadata {
            stream_id: msg.stream_id,
            timestamp: msg.timestamp,
            data,
        });
    }

    fn command(&mut self, stream_id: u32, cmd: Command) {
        match cmd.name.as_str() {
            "connect" => self.connect(&cmd),
            "createStream" => self.create_stream(&cmd),
            "releaseStream" | "getStreamLength" => {
                self.result(cmd.transaction_id, Amf0Value::Null, Amf0Value::Undefined)
            }
            "FCPublish" => self.fc_publish(&cmd),
            "publish" => self.publish(stream_id, &cmd),
            "play" => self.play(stream_id, &cmd),
            "play2" => self.play2(stream_id, &cmd),
            "FCUnpublish" => self.fc_unpublish(&cmd),
            "closeStream" => self.close_stream(stream_id),
            "deleteStream" => {
                let id = cmd.arg_f64(0).map_or(stream_id, |n| n as u32);
                self.close_stream(id);
                self.streams.remove(&id);
            }
            "receiveAudio" | "receiveVideo" => {
                let type_id = if cmd.name == "receiveAudio" {
                    type_id::AUDIO
                } else {
                    type_id::VIDEO
                };
                let enabled = cmd.arg_bool(0).unwrap_or(true);
                self.events.push_back(ServerSessionEvent::ReceiveMedia {
                    stream_id,
                    type_id,
                    enabled,
                });
            }
            "pause" => self.pause(stream_id, &cmd),
            // Replies from the client and keep-alive calls need no answer.
            "_result" | "_error" | "onStatus" | "_checkbw" | "onBWDone" => {}
            _ => self.unknown(cmd),
        }
    }

    fn connect(&mut self, cmd: &Command) {
        let app_raw = cmd
            .object
            .get("app")
            .and_then(Amf0Value::as_str)
            .unwrap_or("");
        let (app, app_query) = split_query(app_raw);
        let app = app.trim_matches('/').to_owned();
        let tc_url = cmd
            .object
            .get("tcUrl")
            .and_then(Amf0Value::as_str)
            .map(str::to_owned);
        let query = app_query
            .or_else(|| tc_url.as_deref().and_then(|u| split_query(u).1))
            .filter(|q| !q.is_empty())
            .map(str::to_owned);
        let object_encoding = cmd
            .object
            .get("objectEncoding")
            .and_then(Amf0Value::as_f64)
            .unwrap_or(0.0);
        let window = self.config.window_ack_size.to_be_bytes();
        self.control(type_id::WINDOW_ACK_SIZE, &window);
        self.control(
            type_id::SET_PEER_BANDWIDTH,
            &[window[0], window[1], window[2], window[3], 2],
        );
        let size = self.config.out_chunk_size;
        self.control(type_id::SET_CHUNK_SIZE, &size.to_be_bytes());
        // The size was validated when the config was built; an invalid one
        // keeps the default, which every peer understands.
        let _ = self.encoder.set_chunk_size(size);
        let props = Amf0Value::object([
            ("fmsVer", Amf0Value::from("FMS/3,0,1,123")),
            ("capabilities", Amf0Value::Number(31.0)),
        ]);
        let mut info = status_object("status", status::CONNECT_SUCCESS, "Connection succeeded.");
        if let Amf0Value::Object(p) = &mut info {
            p.push(("objectEncoding".into(), Amf0Value::Number(object_encoding)));
        }
        self.result(cmd.transaction_id, props, info);
        self.app = Some(app.clone());
        self.events.push_back(ServerSessionEvent::Connected {
            app,
            tc_url,
            query,
            object_encoding,
        });
    }

    fn create_stream(&mut self, cmd: &Command) {
        if self.streams.len() >= MAX_STREAMS_PER_CONNECTION {
            self.error(cmd.transaction_id, "too many streams on this connection");
            return;
        }
        let id = self.next_stream_id;
        self.next_stream_id += 1;
        self.streams.insert(
            id,
            StreamState {
                role: Role::Idle,
                name: String::new(),
            },
        );
        self.result(
            cmd.transaction_id,
            Amf0Value::Null,
            Amf0Value::Number(f64::from(id)),
        );
    }

    fn fc_publish(&mut self, cmd: &Command) {
        let name = cmd.arg_str(0).unwrap_or_default().to_owned();
        self.result(cmd.transaction_id, Amf0Value::Null, Amf0Value::Undefined);
        let body = encode_values(&[
            "onFCPublish".into(),
            Amf0Value::Number(0.0),
            Amf0Value::Null,
            status_object("status", status::PUBLISH_START, &name),
        ]);
        self.send(csid::COMMAND, type_id::COMMAND_AMF0, 0, &body);
    }

    /// Finds or (for clients that skip createStream) creates the stream state.
    fn stream_mut(&mut self, stream_id: u32) -> Option<&mut StreamState> {
        if !self.streams.contains_key(&stream_id) && self.streams.len() < MAX_STREAMS_PER_CONNECTION
        {
            self.streams.insert(
                stream_id,
                StreamState {
                    role: Role::Idle,
                    name: String::new(),
                },
            );
        }
        self.streams.get_mut(&stream_id)
    }

    fn publish(&mut self, stream_id: u32, cmd: &Command) {
        let raw = cmd.arg_str(0).unwrap_or_default().to_owned();
        let (name, query) = split_query(&raw);
        let mode = cmd.arg_str(1).unwrap_or("live").to_owned();
        let app = self.app.clone().unwrap_or_default();
        let Some(s) = self.stream_mut(stream_id) else {
            self.error(cmd.transaction_id, "too many streams on this connection");
            return;
        };
        s.role = Role::PublishPending;
        s.name = name.to_owned();
        let (name, query) = (name.to_owned(), query.map(str::to_owned));
        self.events.push_back(ServerSessionEvent::PublishRequested {
            stream_id,
            app,
            name,
            query,
            mode,
        });
    }

    fn play(&mut self, stream_id: u32, cmd: &Command) {
        let raw = cmd.arg_str(0).unwrap_or_default().to_owned();
        let start = cmd.arg_f64(1).unwrap_or(-2.0);
        let duration = cmd.arg_f64(2).unwrap_or(-1.0);
        let reset = cmd.arg_bool(3).unwrap_or(true);
        self.request_play(stream_id, cmd.transaction_id, &raw, start, duration, reset);
    }

    /// `play2` (7.2.2.2) carries a NetStreamPlayOptions object; for a live
    /// stream it is a play of `streamName`.
    fn play2(&mut self, stream_id: u32, cmd: &Command) {
        let opts = cmd.args.first();
        let raw = opts
            .and_then(|o| o.get("streamName"))
            .and_then(Amf0Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let start = opts
            .and_then(|o| o.get("start"))
            .and_then(Amf0Value::as_f64)
            .unwrap_or(-2.0);
        self.request_play(stream_id, cmd.transaction_id, &raw, start, -1.0, false);
    }

    fn request_play(
        &mut self,
        stream_id: u32,
        txn: f64,
        raw: &str,
        start: f64,
        duration: f64,
        reset: bool,
    ) {
        let (name, query) = split_query(raw);
        let app = self.app.clone().unwrap_or_default();
        let Some(s) = self.stream_mut(stream_id) else {
            self.error(txn, "too many streams on this connection");
            return;
        };
        s.role = Role::PlayPending { reset };
        s.name = name.to_owned();
        let (name, query) = (name.to_owned(), query.map(str::to_owned));
        self.events.push_back(ServerSessionEvent::PlayRequested {
            stream_id,
            app,
            name,
            query,
            start,
            duration,
            reset,
        });
    }

    fn fc_unpublish(&mut self, cmd: &Command) {
        let name = cmd
            .arg_str(0)
            .map(|n| split_query(n).0.to_owned())
            .unwrap_or_default();
        self.result(cmd.transaction_id, Amf0Value::Null, Amf0Value::Undefined);
        let body = encode_values(&[
            "onFCUnpublish".into(),
            Amf0Value::Number(0.0),
            Amf0Value::Null,
            status_object("status", status::UNPUBLISH_SUCCESS, &name),
        ]);
        self.send(csid::COMMAND, type_id::COMMAND_AMF0, 0, &body);
        let ids: Vec<u32> = self
            .streams
            .iter()
            .filter(|(_, s)| s.role == Role::Publishing && s.name == name)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.close_stream(id);
        }
    }

    fn close_stream(&mut self, stream_id: u32) {
        let Some(s) = self.streams.get_mut(&stream_id) else {
            return;
        };
        let role = std::mem::replace(&mut s.role, Role::Idle);
        match role {
            Role::Publishing | Role::PublishPending => {
                self.status(
                    stream_id,
                    "status",
                    status::UNPUBLISH_SUCCESS,
                    "Stream unpublished.",
                );
                self.events
                    .push_back(ServerSessionEvent::Unpublished { stream_id });
            }
            Role::Playing | Role::PlayPending { .. } => {
                self.events
                    .push_back(ServerSessionEvent::PlayStopped { stream_id });
            }
            Role::Idle => {}
        }
    }

    fn pause(&mut self, stream_id: u32, cmd: &Command) {
        let paused = cmd.arg_bool(0).unwrap_or(true);
        let code = if paused {
            status::PAUSE_NOTIFY
        } else {
            status::UNPAUSE_NOTIFY
        };
        self.status(
            stream_id,
            "status",
            code,
            if paused { "Paused." } else { "Unpaused." },
        );
        self.events
            .push_back(ServerSessionEvent::Paused { stream_id, paused });
    }

    fn unknown(&mut self, cmd: Command) {
        if cmd.transaction_id != 0.0 {
            self.error(cmd.transaction_id, &format!("unknown command {}", cmd.name));
        }
        self.events
            .push_back(ServerSessionEvent::UnknownCommand { name: cmd.name });
    }

    /// Accepts a publish request: sends NetStream.Publish.Start.
    pub fn accept_publish(&mut self, stream_id: u32) {
        let Some(s) = self.streams.get_mut(&stream_id) else {
            return;
        };
        s.role = Role::Publishing;
        let desc = format!("{} is now published.", s.name);
        self.user_event(UserControlEvent::StreamBegin(stream_id));
        self.status(stream_id, "status", status::PUBLISH_START, &desc);
    }

    /// Refuses a publish request with NetStream.Publish.BadName (the code
    /// Flash clients expect for a name already in use).
    pub fn reject_publish(&mut self, stream_id: u32, description: &str) {
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.role = Role::Idle;
        }
        self.status(stream_id, "error", status::PUBLISH_BAD_NAME, description);
    }

    /// Refuses a publish request that access control denied, with NetStream.Publish.Denied
    /// and `reason` as the description (ffmpeg prints it; librtmp clients such as OBS close).
    pub fn deny_publish(&mut self, stream_id: u32, reason: &str) {
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.role = Role::Idle;
        }
        self.status(stream_id, "error", status::PUBLISH_DENIED, reason);
    }

    /// Accepts a play request: StreamBegin, Play.Reset (when asked for),
    /// Play.Start and `|RtmpSampleAccess`.
    pub fn accept_play(&mut self, stream_id: u32) {
        let Some(s) = self.streams.get_mut(&stream_id) else {
            return;
        };
        let reset = matches!(s.role, Role::PlayPending { reset: true });
        s.role = Role::Playing;
        let name = s.name.clone();
        self.user_event(UserControlEvent::StreamBegin(stream_id));
        if reset {
            self.status(
                stream_id,
                "status",
                status::PLAY_RESET,
                &format!("Playing and resetting {name}."),
            );
        }
        self.status(
            stream_id,
            "status",
            status::PLAY_START,
            &format!("Started playing {name}."),
        );
        let access = encode_values(&[
            "|RtmpSampleAccess".into(),
            Amf0Value::Boolean(true),
            Amf0Value::Boolean(true),
        ]);
        self.send(csid::STREAM_COMMAND, type_id::DATA_AMF0, stream_id, &access);
    }

    /// Refuses a play request with NetStream.Play.StreamNotFound.
    pub fn reject_play(&mut self, stream_id: u32, description: &str) {
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.role = Role::Idle;
        }
        self.status(
            stream_id,
            "error",
            status::PLAY_STREAM_NOT_FOUND,
            description,
        );
    }

    /// Refuses a play request that access control denied, with NetStream.Play.Failed and
    /// `reason` as the description.
    pub fn deny_play(&mut self, stream_id: u32, reason: &str) {
        if let Some(s) = self.streams.get_mut(&stream_id) {
            s.role = Role::Idle;
        }
        self.status(stream_id, "error", status::PLAY_FAILED, reason);
    }

    /// Tells a player the publisher left: StreamEOF and Play.UnpublishNotify.
    pub fn notify_unpublished(&mut self, stream_id: u32) {
        self.user_event(UserControlEvent::StreamEof(stream_id));
        self.status(
            stream_id,
            "status",
            status::PLAY_UNPUBLISH_NOTIFY,
            "The publisher left.",
        );
    }

    /// Tells a player a publisher (re)joined: StreamBegin and Play.PublishNotify.
    pub fn notify_published(&mut self, stream_id: u32) {
        self.user_event(UserControlEvent::StreamBegin(stream_id));
        self.status(
            stream_id,
            "status",
            status::PLAY_PUBLISH_NOTIFY,
            "A publisher joined.",
        );
    }

    /// The chunk headers for sending one media or data message to a play
    /// stream, so the caller can write the shared payload without copying it.
    /// Audio, video and data go on separate chunk streams, as FMS does.
    pub fn media_chunking(
        &self,
        stream_id: u32,
        type_id: u8,
        timestamp: u32,
        length: usize,
    ) -> MessageChunking {
        let cs = match type_id {
            type_id::AUDIO => csid::AUDIO,
            type_id::VIDEO => csid::VIDEO,
            _ => csid::STREAM_COMMAND,
        };
        self.encoder
            .chunking(cs, timestamp, type_id, stream_id, length)
    }

    /// Appends one media or data message for a play stream to the output
    /// (a copy; the zero-copy path is [`Self::media_chunking`]).
    pub fn send_media(&mut self, stream_id: u32, type_id: u8, timestamp: u32, payload: &[u8]) {
        self.media_chunking(stream_id, type_id, timestamp, payload.len())
            .write(payload, &mut self.output);
    }

    fn send(&mut self, cs: u32, type_id: u8, stream_id: u32, body: &[u8]) {
        self.encoder
            .write(cs, 0, type_id, stream_id, body, &mut self.output);
    }

    fn control(&mut self, type_id: u8, body: &[u8]) {
        self.send(csid::CONTROL, type_id, 0, body);
    }

    fn user_event(&mut self, ev: UserControlEvent) {
        self.control(type_id::USER_CONTROL, &ev.to_bytes());
    }

    fn status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        let body = on_status(level, code, description);
        self.send(
            csid::STREAM_COMMAND,
            type_id::COMMAND_AMF0,
            stream_id,
            &body,
        );
    }

    fn result(&mut self, txn: f64, object: Amf0Value, info: Amf0Value) {
        if txn == 0.0 {
            return;
        }
        let body = encode_values(&["_result".into(), Amf0Value::Number(txn), object, info]);
        self.send(csid::COMMAND, type_id::COMMAND_AMF0, 0, &body);
    }

    fn error(&mut self, txn: f64, description: &str) {
        let body = encode_values(&[
            "_error".into(),
            Amf0Value::Number(txn),
            Amf0Value::Null,
            status_object("error", status::CALL_FAILED, description),
        ]);
        self.send(csid::COMMAND, type_id::COMMAND_AMF0, 0, &body);
    }
}

/// Splits `name?query` into its parts.
pub fn split_query(raw: &str) -> (&str, Option<&str>) {
    match raw.split_once('?') {
        Some((name, query)) => (name, Some(query)),
        None => (raw, None),
    }
}
