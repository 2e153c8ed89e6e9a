//! The ASF object and type GUIDs this muxer writes (ASF specification 1.20.03, section 10).

/// A GUID in ASF wire order: the first three fields little-endian, the last eight bytes as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// Builds a GUID from its textual fields, `{d1-d2-d3-d4}`.
    pub const fn new(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> Guid {
        let a = d1.to_le_bytes();
        let b = d2.to_le_bytes();
        let c = d3.to_le_bytes();
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4],
            d4[5], d4[6], d4[7],
        ])
    }
}

/// ASF_Header_Object, 75B22630-668E-11CF-A6D9-00AA0062CE6C.
pub const HEADER_OBJECT: Guid = Guid::new(
    0x75B2_2630,
    0x668E,
    0x11CF,
    [0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62, 0xCE, 0x6C],
);
/// ASF_Data_Object, 75B22636-668E-11CF-A6D9-00AA0062CE6C.
pub const DATA_OBJECT: Guid = Guid::new(
    0x75B2_2636,
    0x668E,
    0x11CF,
    [0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62, 0xCE, 0x6C],
);
/// ASF_File_Properties_Object, 8CABDCA1-A947-11CF-8EE4-00C00C205365.
pub const FILE_PROPERTIES: Guid = Guid::new(
    0x8CAB_DCA1,
    0xA947,
    0x11CF,
    [0x8E, 0xE4, 0x00, 0xC0, 0x0C, 0x20, 0x53, 0x65],
);
/// ASF_Stream_Properties_Object, B7DC0791-A9B7-11CF-8EE6-00C00C205365.
pub const STREAM_PROPERTIES: Guid = Guid::new(
    0xB7DC_0791,
    0xA9B7,
    0x11CF,
    [0x8E, 0xE6, 0x00, 0xC0, 0x0C, 0x20, 0x53, 0x65],
);
/// ASF_Header_Extension_Object, 5FBF03B5-A92E-11CF-8EE3-00C00C205365.
pub const HEADER_EXTENSION: Guid = Guid::new(
    0x5FBF_03B5,
    0xA92E,
    0x11CF,
    [0x8E, 0xE3, 0x00, 0xC0, 0x0C, 0x20, 0x53, 0x65],
);
/// ASF_Reserved_1, ABD3D211-A9BA-11CF-8EE6-00C00C205365 (Header Extension reserved field).
pub const RESERVED_1: Guid = Guid::new(
    0xABD3_D211,
    0xA9BA,
    0x11CF,
    [0x8E, 0xE6, 0x00, 0xC0, 0x0C, 0x20, 0x53, 0x65],
);
/// ASF_Extended_Stream_Properties_Object, 14E6A5CB-C672-4332-8399-A96952065B5A.
pub const EXTENDED_STREAM_PROPERTIES: Guid = Guid::new(
    0x14E6_A5CB,
    0xC672,
    0x4332,
    [0x83, 0x99, 0xA9, 0x69, 0x52, 0x06, 0x5B, 0x5A],
);
/// The DVR-MS "timing rep data" payload extension system, FD3CC02A-06DB-4CFA-801C-7212D38745E4:
/// 24 bytes per payload whose second 64-bit field is the presentation time in 100 ns units.
pub const PAYLOAD_EXT_DVR_MS_TIMING: Guid = Guid::new(
    0xFD3C_C02A,
    0x06DB,
    0x4CFA,
    [0x80, 0x1C, 0x72, 0x12, 0xD3, 0x87, 0x45, 0xE4],
);
/// ASF_Audio_Media, F8699E40-5B4D-11CF-A8FD-00805F5C442B.
pub const AUDIO_MEDIA: Guid = Guid::new(
    0xF869_9E40,
    0x5B4D,
    0x11CF,
    [0xA8, 0xFD, 0x00, 0x80, 0x5F, 0x5C, 0x44, 0x2B],
);
/// ASF_Video_Media, BC19EFC0-5B4D-11CF-A8FD-00805F5C442B.
pub const VIDEO_MEDIA: Guid = Guid::new(
    0xBC19_EFC0,
    0x5B4D,
    0x11CF,
    [0xA8, 0xFD, 0x00, 0x80, 0x5F, 0x5C, 0x44, 0x2B],
);
/// ASF_No_Error_Correction, 20FB5700-5B55-11CF-A8FD-00805F5C442B.
pub const NO_ERROR_CORRECTION: Guid = Guid::new(
    0x20FB_5700,
    0x5B55,
    0x11CF,
    [0xA8, 0xFD, 0x00, 0x80, 0x5F, 0x5C, 0x44, 0x2B],
);
/// ASF_Audio_Spread, BFC3CD50-618F-11CF-8BB2-00AA00B4E220.
pub const AUDIO_SPREAD: Guid = Guid::new(
    0xBFC3_CD50,
    0x618F,
    0x11CF,
    [0x8B, 0xB2, 0x00, 0xAA, 0x00, 0xB4, 0xE2, 0x20],
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_order_matches_the_spec_examples() {
        // The header object GUID as it appears at byte 0 of every ASF file.
        let cases: &[(Guid, [u8; 16])] = &[
            (
                HEADER_OBJECT,
                [
                    0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA, 0x00,
                    0x62, 0xCE, 0x6C,
                ],
            ),
            (
                DATA_OBJECT,
                [
                    0x36, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA, 0x00,
                    0x62, 0xCE, 0x6C,
                ],
            ),
        ];
        for (guid, bytes) in cases {
            assert_eq!(&guid.0, bytes);
        }
    }
}
