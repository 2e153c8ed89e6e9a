//! The RTSP Transport header: whatever alternative the parser picks must format into a header
//! the parser reads back as the same transport (the interleaved channels a TCP client left to
//! the server become the default pair the reply names).

use rtsp::{Lower, Transport};

pub fn run(data: &[u8]) {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(t) = Transport::parse_first_supported(header) else {
        return;
    };
    let formatted = t.format();
    let again = Transport::parse_first_supported(&formatted).expect("our Transport parses");
    let mut want = t;
    // The reply never names a destination (the gateway only sends to the peer).
    want.destination = None;
    if let Lower::Tcp { interleaved } = &mut want.lower {
        interleaved.get_or_insert((0, 1));
    }
    assert_eq!(again, want, "parse(format(t)) == t for {formatted:?}");
}
