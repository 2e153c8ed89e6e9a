//! NetConnection and NetStream command messages (7.2): decoding a command
//! body into its name, transaction id, command object and arguments, and
//! building the replies Flash-derived clients expect.

use amf::{decode_amf0_all, encode_amf0, Amf0Value, AmfError};
use bytes::Bytes;

use crate::message::type_id;

/// A decoded command message.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Command name, e.g. `connect`.
    pub name: String,
    /// Transaction id; 0 means no reply is expected.
    pub transaction_id: f64,
    /// The command object (often `null`).
    pub object: Amf0Value,
    /// The remaining arguments.
    pub args: Vec<Amf0Value>,
}

impl Command {
    /// Decodes a command body of message type 20 (AMF0) or 17 (AMF3). An
    /// AMF3 command starts with one format byte (0) followed by AMF0 values
    /// (7.1.1); values that need AMF3 are switched with the avmplus marker.
    pub fn decode(type_id: u8, payload: &[u8]) -> Result<Command, AmfError> {
        let body = strip_amf3_format_byte(type_id, payload);
        let mut values = decode_amf0_all(body)?.into_iter();
        let name = values
            .next()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let transaction_id = values.next().and_then(|v| v.as_f64()).unwrap_or(0.0);
        let object = values.next().unwrap_or(Amf0Value::Null);
        Ok(Command {
            name,
            transaction_id,
            object,
            args: values.collect(),
        })
    }

    /// The argument at `i` as a string.
    pub fn arg_str(&self, i: usize) -> Option<&str> {
        self.args.get(i).and_then(Amf0Value::as_str)
    }

    /// The argument at `i` as a number.
    pub fn arg_f64(&self, i: usize) -> Option<f64> {
        self.args.get(i).and_then(Amf0Value::as_f64)
    }

    /// The argument at `i` as a boolean.
    pub fn arg_bool(&self, i: usize) -> Option<bool> {
        match self.args.get(i) {
            Some(Amf0Value::Boolean(b)) => Some(*b),
            Some(Amf0Value::Number(n)) => Some(*n != 0.0),
            _ => None,
        }
    }
}

/// AMF3 command and data messages carry a leading format byte of 0.
pub(crate) fn strip_amf3_format_byte(type_id: u8, payload: &[u8]) -> &[u8] {
    match (type_id, payload.first()) {
        (type_id::COMMAND_AMF3 | type_id::DATA_AMF3, Some(0)) => &payload[1..],
        _ => payload,
    }
}

/// Encodes AMF0 values into a message body.
pub fn encode_values(values: &[Amf0Value]) -> Bytes {
    let mut out = Vec::with_capacity(128);
    for v in values {
        // Every value we build has short property names and strings, so the
        // only encode error (a length that does not fit) cannot occur.
        encode_amf0(v, &mut out).expect("replies built by the session fit AMF0 length fields");
    }
    Bytes::from(out)
}

/// Builds an `onStatus` info object.
pub fn status_object(level: &str, code: &str, description: &str) -> Amf0Value {
    Amf0Value::object([
        ("level", Amf0Value::from(level)),
        ("code", Amf0Value::from(code)),
        ("description", Amf0Value::from(description)),
    ])
}

/// Builds an `onStatus` command body.
pub fn on_status(level: &str, code: &str, description: &str) -> Bytes {
    encode_values(&[
        "onStatus".into(),
        Amf0Value::Number(0.0),
        Amf0Value::Null,
        status_object(level, code, description),
    ])
}

/// Status codes we send (7.2.2 and the Flash NetStatusEvent documentation).
pub mod status {
    /// connect succeeded.
    pub const CONNECT_SUCCESS: &str = "NetConnection.Connect.Success";
    /// A call failed (unknown command).
    pub const CALL_FAILED: &str = "NetConnection.Call.Failed";
    /// Publishing started.
    pub const PUBLISH_START: &str = "NetStream.Publish.Start";
    /// The stream is already being published (or the name is refused).
    pub const PUBLISH_BAD_NAME: &str = "NetStream.Publish.BadName";
    /// The client may not publish this stream (access control). librtmp (OBS) closes the
    /// connection on it; ffmpeg prints the description.
    pub const PUBLISH_DENIED: &str = "NetStream.Publish.Denied";
    /// Unpublishing succeeded.
    pub const UNPUBLISH_SUCCESS: &str = "NetStream.Unpublish.Success";
    /// The play list was reset.
    pub const PLAY_RESET: &str = "NetStream.Play.Reset";
    /// Playback started.
    pub const PLAY_START: &str = "NetStream.Play.Start";
    /// The stream does not exist.
    pub const PLAY_STREAM_NOT_FOUND: &str = "NetStream.Play.StreamNotFound";
    /// Playback failed for another reason, "such as the subscriber not having read access"
    /// (the NetStatusEvent documentation): the access-control refusal of a play.
    pub const PLAY_FAILED: &str = "NetStream.Play.Failed";
    /// The publisher left.
    pub const PLAY_UNPUBLISH_NOTIFY: &str = "NetStream.Play.UnpublishNotify";
    /// A publisher (re)joined.
    pub const PLAY_PUBLISH_NOTIFY: &str = "NetStream.Play.PublishNotify";
    /// Playback paused.
    pub const PAUSE_NOTIFY: &str = "NetStream.Pause.Notify";
    /// Playback resumed.
    pub const UNPAUSE_NOTIFY: &str = "NetStream.Unpause.Notify";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_amf0_and_amf3_commands() {
        let body = encode_values(&[
            "play".into(),
            Amf0Value::Number(4.0),
            Amf0Value::Null,
            "cam?k=1".into(),
        ]);
        let amf3 = [&[0u8][..], &body].concat();
        for (t, b) in [
            (type_id::COMMAND_AMF0, &body[..]),
            (type_id::COMMAND_AMF3, &amf3[..]),
        ] {
            let c = Command::decode(t, b).expect("decodes");
            assert_eq!(
                (c.name.as_str(), c.transaction_id, c.arg_str(0)),
                ("play", 4.0, Some("cam?k=1"))
            );
        }
        assert!(
            Command::decode(type_id::COMMAND_AMF0, &[0x02, 0x00]).is_err(),
            "garbage AMF is an error"
        );
    }
}
