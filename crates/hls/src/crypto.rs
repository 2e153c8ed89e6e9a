//! AES-128 segment encryption (RFC 8216 4.3.2.4, 5.2).

use aes::cipher::{block_padding::Pkcs7, BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit};

type CbcEncryptor = cbc::Encryptor<aes::Aes128>;

/// Derives content keys from a secret seeded at construction, so the segmenter needs no
/// randomness source of its own and keys are not predictable from their ids.
#[derive(Clone)]
pub(crate) struct KeyDeriver {
    cipher: aes::Aes128,
}

impl std::fmt::Debug for KeyDeriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyDeriver(..)") // Never print key material.
    }
}

impl KeyDeriver {
    /// Creates a deriver from a 16-byte secret (which the caller draws from the OS RNG).
    pub(crate) fn new(secret: [u8; 16]) -> Self {
        KeyDeriver {
            cipher: aes::Aes128::new(&secret.into()),
        }
    }

    /// The key for `key_id`: AES-128 of the id under the secret, a pseudo-random permutation,
    /// so distinct ids give distinct, independent-looking keys.
    pub(crate) fn key(&self, key_id: u64) -> [u8; 16] {
        let mut block = u128::from(key_id).to_be_bytes().into();
        self.cipher.encrypt_block(&mut block);
        block.into()
    }
}

/// Encrypts a whole segment with AES-128-CBC and PKCS7 padding; the IV is the media sequence
/// number as a big-endian 128-bit integer, as RFC 8216 5.2 specifies when EXT-X-KEY has no
/// IV attribute.
pub(crate) fn encrypt_segment(key: &[u8; 16], sequence: u64, data: &[u8]) -> Vec<u8> {
    let iv = u128::from(sequence).to_be_bytes();
    CbcEncryptor::new(key.into(), &iv.into()).encrypt_padded_vec_mut::<Pkcs7>(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_differ_and_are_stable() {
        let d = KeyDeriver::new([7; 16]);
        assert_eq!(d.key(1), d.key(1));
        assert_ne!(d.key(1), d.key(2));
        assert_ne!(KeyDeriver::new([8; 16]).key(1), d.key(1));
    }

    #[test]
    fn cbc_matches_nist_vector_and_pads() {
        // NIST SP 800-38A F.1.1 (ECB-AES128), block 1: with a zero IV (sequence 0) the first
        // CBC block equals the ECB block.
        let key = [
            0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf,
            0x4f, 0x3c,
        ];
        let pt = [
            0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96, 0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93,
            0x17, 0x2a,
        ];
        let ecb = [
            0x3a, 0xd7, 0x7b, 0xb4, 0x0d, 0x7a, 0x36, 0x60, 0xa8, 0x9e, 0xca, 0xf3, 0x24, 0x66,
            0xef, 0x97,
        ];
        let ct = encrypt_segment(&key, 0, &pt);
        assert_eq!(
            ct.len(),
            32,
            "a full block of PKCS7 padding follows an aligned input"
        );
        assert_eq!(&ct[..16], &ecb);
        assert_eq!(encrypt_segment(&key, 0, &[0; 15]).len(), 16);
    }
}
