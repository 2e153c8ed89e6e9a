//! Temporary stand-in for the `flv` crate's writer helpers while that crate is being written.

pub const FILE_HEADER_LEN: usize = 9;

pub fn file_header(audio: bool, video: bool) -> [u8; 9] {
    let flags = (u8::from(audio) << 2) | u8::from(video);
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9]
}

pub fn tag_header(tag_type: u8, data_size: u32, timestamp: u32) -> [u8; 11] {
    let s = data_size.to_be_bytes();
    let t = timestamp.to_be_bytes();
    [tag_type, s[1], s[2], s[3], t[1], t[2], t[3], t[0], 0, 0, 0]
}

pub fn previous_tag_size(size: u32) -> [u8; 4] {
    size.to_be_bytes()
}
