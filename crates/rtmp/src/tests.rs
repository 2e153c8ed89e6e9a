//! Client and server sessions run against each other in memory, and property
//! tests of the chunk decoder.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use crate::chunk::{ChunkDecoder, ChunkEncoder, RawMessage};
use crate::client::{ClientSession, ClientSessionEvent};
use crate::command::{encode_values, status};
use crate::message::{build_aggregate, type_id, UserControlEvent};
use crate::session::{ServerSession, ServerSessionConfig, ServerSessionEvent};

/// Moves bytes both ways until neither side has anything to say, answering
/// publish and play requests with `accept`.
struct Pair {
    client: ClientSession,
    server: ServerSession,
    client_events: Vec<ClientSessionEvent>,
    server_events: Vec<ServerSessionEvent>,
    accept: bool,
}

impl Pair {
    fn new(digest: bool) -> Pair {
        Pair {
            client: ClientSession::new(1, digest),
            server: ServerSession::new(ServerSessionConfig {
                seed: 2,
                ..Default::default()
            }),
            client_events: Vec::new(),
            server_events: Vec::new(),
            accept: true,
        }
    }

    fn pump(&mut self) {
        loop {
            let c2s = self.client.take_output();
            let progressed = !c2s.is_empty();
            self.server.feed(&c2s).expect("server accepts client bytes");
            while let Some(ev) = self.server.poll_event().expect("server decodes") {
                match &ev {
                    ServerSessionEvent::PublishRequested { stream_id, .. } if self.accept => {
                        self.server.accept_publish(*stream_id)
                    }
                    ServerSessionEvent::PublishRequested { stream_id, .. } => {
                        self.server.reject_publish(*stream_id, "busy")
                    }
                    ServerSessionEvent::PlayRequested { stream_id, .. } if self.accept => {
                        self.server.accept_play(*stream_id)
                    }
                    ServerSessionEvent::PlayRequested { stream_id, .. } => {
                        self.server.reject_play(*stream_id, "none")
                    }
                    _ => {}
                }
                self.server_events.push(ev);
            }
            let s2c = self.server.take_output();
            let progressed = progressed || !s2c.is_empty();
            self.client.feed(&s2c).expect("client accepts server bytes");
            while let Some(ev) = self.client.poll_event().expect("client decodes") {
                self.client_events.push(ev);
            }
            if !progressed {
                return;
            }
        }
    }

    fn statuses(&self) -> Vec<&str> {
        self.client_events
            .iter()
            .filter_map(|e| match e {
                ClientSessionEvent::Status { code, .. } => Some(code.as_str()),
                _ => None,
            })
            .collect()
    }

    fn connect_and_create(&mut self) -> u32 {
        self.pump();
        assert!(self.client.is_handshake_done() && self.server.is_handshake_done());
        self.client.connect("live?token=1", "rtmp://localhost/live");
        self.client.create_stream();
        self.pump();
        assert!(self.client_events.contains(&ClientSessionEvent::Connected));
        self.client_events
            .iter()
            .find_map(|e| match e {
                ClientSessionEvent::StreamCreated(id) => Some(*id),
                _ => None,
            })
            .expect("createStream answered")
    }
}

fn on_metadata() -> Bytes {
    encode_values(&[
        "onMetaData".into(),
        amf::Amf0Value::EcmaArray(vec![("width".into(), 640.0.into())]),
    ])
}

#[test]
fn publish_session_in_memory() {
    for digest in [false, true] {
        let mut p = Pair::new(digest);
        let id = p.connect_and_create();
        p.client.publish(id, "cam?key=abc");
        p.client.set_chunk_size(4096);
        p.client.send_metadata(id, &on_metadata());
        let video = Bytes::from(vec![0x17; 10_000]);
        p.client.send_media(id, type_id::VIDEO, 0, &video);
        p.client
            .send_media(id, type_id::AUDIO, 23, &Bytes::from_static(&[0xAF, 1, 2]));
        p.client.delete_stream(id);
        p.pump();
        assert_eq!(
            p.statuses(),
            vec![status::PUBLISH_START, status::UNPUBLISH_SUCCESS],
            "digest={digest}"
        );
        let want = vec![
            ServerSessionEvent::Connected {
                app: "live".into(),
                tc_url: Some("rtmp://localhost/live".into()),
                query: Some("token=1".into()),
                object_encoding: 0.0,
            },
            ServerSessionEvent::PublishRequested {
                stream_id: id,
                app: "live".into(),
                name: "cam".into(),
                query: Some("key=abc".into()),
                mode: "live".into(),
            },
            ServerSessionEvent::Metadata {
                stream_id: id,
                timestamp: 0,
                data: on_metadata(),
            },
            ServerSessionEvent::Video {
                stream_id: id,
                timestamp: 0,
                data: video.clone(),
            },
            ServerSessionEvent::Audio {
                stream_id: id,
                timestamp: 23,
                data: Bytes::from_static(&[0xAF, 1, 2]),
            },
            ServerSessionEvent::Unpublished { stream_id: id },
        ];
        assert_eq!(p.server_events, want);
    }
}

#[test]
fn rejected_publish_gets_bad_name_and_media_is_dropped() {
    let mut p = Pair::new(false);
    p.accept = false;
    let id = p.connect_and_create();
    p.client.publish(id, "cam");
    p.client
        .send_media(id, type_id::VIDEO, 0, &Bytes::from_static(&[0x17, 0]));
    p.pump();
    assert_eq!(p.statuses(), vec![status::PUBLISH_BAD_NAME]);
    assert!(!p
        .server_events
        .iter()
        .any(|e| matches!(e, ServerSessionEvent::Video { .. })));
}

/// A publish and a play that access control refuses: the client sees the denial codes, the
/// reason travels as the description, and media sent meanwhile is dropped.
#[test]
fn denied_publish_and_play_carry_the_reason() {
    for publish in [true, false] {
        let mut p = Pair::new(false);
        let id = p.connect_and_create();
        if publish {
            p.client.publish(id, "cam?token=bad");
        } else {
            p.client.play(id, "cam");
        }
        p.server
            .feed(&p.client.take_output())
            .expect("server accepts client bytes");
        while let Some(ev) = p.server.poll_event().expect("server decodes") {
            match ev {
                ServerSessionEvent::PublishRequested {
                    stream_id, query, ..
                } => {
                    assert_eq!(query.as_deref(), Some("token=bad"));
                    p.server.deny_publish(stream_id, "invalid credentials")
                }
                ServerSessionEvent::PlayRequested { stream_id, .. } => {
                    p.server.deny_play(stream_id, "invalid credentials")
                }
                _ => {}
            }
        }
        let out = p.server.take_output();
        let has = |needle: &[u8]| out.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"invalid credentials"), "the reason is the description");
        p.client.feed(&out).expect("client accepts server bytes");
        while let Some(ev) = p.client.poll_event().expect("client decodes") {
            p.client_events.push(ev);
        }
        let want = if publish {
            status::PUBLISH_DENIED
        } else {
            status::PLAY_FAILED
        };
        assert_eq!(p.statuses(), vec![want]);
        p.client
            .send_media(id, type_id::VIDEO, 0, &Bytes::from_static(&[0x17, 0]));
        p.pump();
        assert!(!p
            .server_events
            .iter()
            .any(|e| matches!(e, ServerSessionEvent::Video { .. })));
    }
}

#[test]
fn play_session_in_memory() {
    let mut p = Pair::new(false);
    let id = p.connect_and_create();
    p.client.play(id, "cam");
    p.pump();
    assert_eq!(p.statuses(), vec![status::PLAY_RESET, status::PLAY_START]);
    let payload = Bytes::from(vec![7u8; 9000]);
    p.server
        .send_media(id, type_id::VIDEO, 0x0100_0000, &payload);
    p.server.notify_unpublished(id);
    p.server.notify_published(id);
    p.pump();
    let media: Vec<&RawMessage> = p
        .client_events
        .iter()
        .filter_map(|e| match e {
            ClientSessionEvent::Media(m) if m.type_id == type_id::VIDEO => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(media.len(), 1);
    assert_eq!(
        (media[0].timestamp, &media[0].payload),
        (0x0100_0000, &payload)
    );
    assert!(p.client_events.contains(&ClientSessionEvent::UserControl(
        UserControlEvent::StreamEof(id)
    )));
    assert_eq!(
        p.statuses(),
        vec![
            status::PLAY_RESET,
            status::PLAY_START,
            status::PLAY_UNPUBLISH_NOTIFY,
            status::PLAY_PUBLISH_NOTIFY
        ]
    );
}

#[test]
fn unknown_command_is_answered_not_fatal() {
    let mut p = Pair::new(false);
    p.connect_and_create();
    let body = encode_values(&["frobnicate".into(), 9.0.into(), amf::Amf0Value::Null]);
    let mut wire = BytesMut::new();
    ChunkEncoder::default().write(3, 0, type_id::COMMAND_AMF0, 0, &body, &mut wire);
    p.server.feed(&wire).expect("feeds");
    assert_eq!(
        p.server.poll_event().expect("not fatal"),
        Some(ServerSessionEvent::UnknownCommand {
            name: "frobnicate".into()
        })
    );
    p.pump();
    assert!(p.statuses().contains(&status::CALL_FAILED));
}

#[test]
fn garbage_amf_command_is_fatal() {
    let mut p = Pair::new(false);
    p.connect_and_create();
    let mut wire = BytesMut::new();
    ChunkEncoder::default().write(
        3,
        0,
        type_id::COMMAND_AMF0,
        0,
        &[0x02, 0x00, 0x09, b'x'],
        &mut wire,
    );
    p.server.feed(&wire).expect("feeds");
    assert!(p.server.poll_event().is_err());
}

#[test]
fn aggregate_messages_become_media_events() {
    let mut p = Pair::new(false);
    let id = p.connect_and_create();
    p.client.publish(id, "cam");
    p.pump();
    let body = build_aggregate(&[
        (type_id::VIDEO, 100, b"\x17v"),
        (type_id::AUDIO, 110, b"\xafa"),
    ]);
    let mut wire = BytesMut::new();
    ChunkEncoder::default().write(7, 500, type_id::AGGREGATE, id, &body, &mut wire);
    p.server.feed(&wire).expect("feeds");
    let mut got = Vec::new();
    while let Some(ev) = p.server.poll_event().expect("decodes") {
        got.push(ev);
    }
    assert_eq!(
        got,
        vec![
            ServerSessionEvent::Video {
                stream_id: id,
                timestamp: 500,
                data: Bytes::from_static(b"\x17v")
            },
            ServerSessionEvent::Audio {
                stream_id: id,
                timestamp: 510,
                data: Bytes::from_static(b"\xafa")
            },
        ]
    );
}

#[test]
fn acknowledgements_follow_the_peer_window() {
    let mut p = Pair::new(false);
    let id = p.connect_and_create();
    p.client.publish(id, "cam");
    p.pump();
    let mut wire = BytesMut::new();
    ChunkEncoder::default().write(
        2,
        0,
        type_id::WINDOW_ACK_SIZE,
        0,
        &1000u32.to_be_bytes(),
        &mut wire,
    );
    p.server.feed(&wire).expect("feeds");
    while p.server.poll_event().expect("decodes").is_some() {}
    p.server.take_output();
    p.client
        .send_media(id, type_id::VIDEO, 0, &Bytes::from(vec![0x27; 1500]));
    let bytes = p.client.take_output();
    p.server.feed(&bytes).expect("feeds");
    let out = p.server.take_output();
    let mut d = ChunkDecoder::default();
    let ack = d
        .decode(&mut BytesMut::from(&out[..]))
        .expect("valid")
        .expect("one message");
    assert_eq!(ack.type_id, type_id::ACKNOWLEDGEMENT);
}

/// A valid chunk stream with several message kinds, a chunk size change and
/// an extended timestamp, plus the messages it encodes.
fn sample_stream() -> (Vec<u8>, Vec<RawMessage>) {
    let mut enc = ChunkEncoder::default();
    let mut wire = BytesMut::new();
    let mut msgs = Vec::new();
    let mut push = |enc: &ChunkEncoder, wire: &mut BytesMut, m: RawMessage| {
        enc.write(
            m.csid,
            m.timestamp,
            m.type_id,
            m.stream_id,
            &m.payload,
            wire,
        );
        msgs.push(m);
    };
    let m = |csid, timestamp, type_id, len: usize| RawMessage {
        csid,
        timestamp,
        type_id,
        stream_id: 1,
        payload: Bytes::from((0..len).map(|i| i as u8).collect::<Vec<u8>>()),
    };
    push(&enc, &mut wire, m(4, 0, 9, 1000));
    push(&enc, &mut wire, m(6, 20, 8, 50));
    push(
        &enc,
        &mut wire,
        RawMessage {
            csid: 2,
            timestamp: 0,
            type_id: 1,
            stream_id: 0,
            payload: Bytes::copy_from_slice(&300u32.to_be_bytes()),
        },
    );
    enc.set_chunk_size(300).expect("valid");
    push(&enc, &mut wire, m(4, 40, 9, 1000));
    push(&enc, &mut wire, m(400, 0x0123_4567, 9, 700));
    push(&enc, &mut wire, m(6, 60, 8, 0));
    (wire.to_vec(), msgs)
}

fn decode_in_pieces(wire: &[u8], cuts: &[usize]) -> Vec<RawMessage> {
    let mut d = ChunkDecoder::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut last = 0;
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    points.sort_unstable();
    points.push(wire.len());
    for p in points {
        buf.extend_from_slice(&wire[last..p.max(last)]);
        last = p.max(last);
        while let Some(m) = d.decode(&mut buf).expect("valid stream") {
            out.push(m);
        }
    }
    out
}

proptest! {
    #[test]
    fn random_splits_decode_identically(cuts in prop::collection::vec(any::<usize>(), 0..40)) {
        let (wire, msgs) = sample_stream();
        prop_assert_eq!(decode_in_pieces(&wire, &cuts), msgs);
    }

    #[test]
    fn garbage_never_panics_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let mut d = ChunkDecoder::new(64 * 1024);
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = d.decode(&mut buf) {}
    }

    #[test]
    fn garbage_never_panics_the_session(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let mut s = ServerSession::new(ServerSessionConfig::default());
        let mut wire = vec![3u8];
        wire.extend_from_slice(&[0u8; 2 * 1536]);
        wire.extend_from_slice(&bytes);
        if s.feed(&wire).is_ok() {
            while let Ok(Some(_)) = s.poll_event() {}
        }
    }
}

/// Sends one AMF0 (or AMF3, type 17) command on `stream_id` and returns the
/// events and the names + codes of the replies.
fn command_exchange(
    p: &mut Pair,
    type_id: u8,
    stream_id: u32,
    values: &[amf::Amf0Value],
) -> (Vec<ServerSessionEvent>, Vec<String>) {
    let mut body = encode_values(values).to_vec();
    if type_id == crate::message::type_id::COMMAND_AMF3 {
        body.insert(0, 0);
    }
    let mut wire = BytesMut::new();
    ChunkEncoder::default().write(3, 0, type_id, stream_id, &body, &mut wire);
    p.server.feed(&wire).expect("feeds");
    let mut events = Vec::new();
    while let Some(ev) = p.server.poll_event().expect("valid command") {
        events.push(ev);
    }
    let out = p.server.take_output();
    let mut d = ChunkDecoder::default();
    d.set_chunk_size(p.server.out_chunk_size())
        .expect("valid size");
    let mut buf = BytesMut::from(&out[..]);
    let mut replies = Vec::new();
    while let Some(m) = d.decode(&mut buf).expect("server output decodes") {
        if m.type_id != type_id::COMMAND_AMF0 {
            continue;
        }
        if let Ok(c) = crate::command::Command::decode(m.type_id, &m.payload) {
            let code = c
                .args
                .first()
                .and_then(|a| a.get("code"))
                .and_then(amf::Amf0Value::as_str);
            replies.push(match code {
                Some(code) => format!("{} {code}", c.name),
                None => c.name,
            });
        }
    }
    (events, replies)
}

#[test]
fn command_replies_and_events() {
    use amf::Amf0Value as V;
    let mut p = Pair::new(false);
    let id = p.connect_and_create();
    let n = |x: f64| V::Number(x);
    // (name, message type, message stream, values, wanted events, wanted replies)
    type Case = (
        &'static str,
        u8,
        u32,
        Vec<V>,
        Vec<ServerSessionEvent>,
        Vec<&'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            "releaseStream",
            20,
            0,
            vec!["releaseStream".into(), n(5.0), V::Null, "cam".into()],
            vec![],
            vec!["_result"],
        ),
        (
            "FCPublish",
            20,
            0,
            vec!["FCPublish".into(), n(6.0), V::Null, "cam".into()],
            vec![],
            vec!["_result", "onFCPublish NetStream.Publish.Start"],
        ),
        (
            "getStreamLength",
            20,
            id,
            vec!["getStreamLength".into(), n(7.0), V::Null, "cam".into()],
            vec![],
            vec!["_result"],
        ),
        (
            "play2 in an AMF3 command message",
            17,
            id,
            vec![
                "play2".into(),
                n(0.0),
                V::Null,
                V::object([("streamName", V::from("cam?x=1"))]),
            ],
            vec![ServerSessionEvent::PlayRequested {
                stream_id: id,
                app: "live".into(),
                name: "cam".into(),
                query: Some("x=1".into()),
                start: -2.0,
                duration: -1.0,
                reset: false,
            }],
            vec!["onStatus NetStream.Play.Start"],
        ),
        (
            "pause",
            20,
            id,
            vec!["pause".into(), n(0.0), V::Null, true.into(), n(100.0)],
            vec![ServerSessionEvent::Paused {
                stream_id: id,
                paused: true,
            }],
            vec!["onStatus NetStream.Pause.Notify"],
        ),
        (
            "unpause",
            20,
            id,
            vec!["pause".into(), n(0.0), V::Null, false.into(), n(100.0)],
            vec![ServerSessionEvent::Paused {
                stream_id: id,
                paused: false,
            }],
            vec!["onStatus NetStream.Unpause.Notify"],
        ),
        (
            "receiveVideo",
            20,
            id,
            vec!["receiveVideo".into(), n(0.0), V::Null, false.into()],
            vec![ServerSessionEvent::ReceiveMedia {
                stream_id: id,
                type_id: 9,
                enabled: false,
            }],
            vec![],
        ),
        (
            "closeStream",
            20,
            id,
            vec!["closeStream".into(), n(0.0), V::Null],
            vec![ServerSessionEvent::PlayStopped { stream_id: id }],
            vec![],
        ),
        (
            "unknown without reply",
            20,
            0,
            vec!["onBWCheck".into(), n(0.0), V::Null],
            vec![ServerSessionEvent::UnknownCommand {
                name: "onBWCheck".into(),
            }],
            vec![],
        ),
        (
            "unknown with reply",
            20,
            0,
            vec!["secureToken".into(), n(9.0), V::Null],
            vec![ServerSessionEvent::UnknownCommand {
                name: "secureToken".into(),
            }],
            vec!["_error NetConnection.Call.Failed"],
        ),
    ];
    for (name, type_id, stream_id, values, want_events, want_replies) in cases {
        let (events, mut replies) = command_exchange(&mut p, type_id, stream_id, &values);
        for ev in &events {
            if let ServerSessionEvent::PlayRequested { stream_id, .. } = ev {
                p.server.accept_play(*stream_id);
                replies.extend(command_exchange(&mut p, 20, 0, &[]).1);
            }
        }
        assert_eq!(events, want_events, "{name}: events");
        assert_eq!(replies, want_replies, "{name}: replies");
    }
}

#[test]
fn connect_echoes_object_encoding_and_strips_app_query() {
    let mut p = Pair::new(false);
    p.pump();
    let obj = amf::Amf0Value::object([
        ("app", amf::Amf0Value::from("live/?vhost=a")),
        ("objectEncoding", amf::Amf0Value::Number(3.0)),
    ]);
    let (events, replies) = command_exchange(&mut p, 20, 0, &["connect".into(), 1.0.into(), obj]);
    assert_eq!(
        events,
        vec![ServerSessionEvent::Connected {
            app: "live".into(),
            tc_url: None,
            query: Some("vhost=a".into()),
            object_encoding: 3.0
        }]
    );
    assert_eq!(replies, vec!["_result NetConnection.Connect.Success"]);
}

/// Bytes a shell reads straight into the session's input buffer reach the bus without a copy:
/// a message that fits one chunk is handed over as a slice of that buffer.
#[test]
fn a_single_chunk_message_is_a_slice_of_the_input_buffer() {
    let mut p = Pair::new(false);
    let id = p.connect_and_create();
    p.client.publish(id, "cam");
    p.pump();
    let audio = Bytes::from_static(&[0xAF, 1, 2, 3, 4, 5]);
    p.client.send_media(id, type_id::AUDIO, 40, &audio);
    let wire = p.client.take_output();
    // As a socket read would: the bytes land in the buffer the session owns.
    let input = p.server.input_buffer();
    input.reserve(wire.len());
    input.extend_from_slice(&wire);
    let range = input.as_ptr() as usize..input.as_ptr() as usize + input.len();
    p.server
        .arrived(wire.len())
        .expect("the bytes are accounted");
    let mut got = None;
    while let Some(ev) = p.server.poll_event().expect("the server decodes") {
        if let ServerSessionEvent::Audio { data, .. } = ev {
            got = Some(data);
        }
    }
    let data = got.expect("the audio message is decoded");
    assert_eq!(data, audio);
    assert!(
        range.contains(&(data.as_ptr() as usize)),
        "the payload was copied out of the input buffer"
    );
}
