//! The signed-in person's token, kept with their session so the desk can call the scheduler's
//! gRPC as them: sealed with ChaCha20-Poly1305 under a key derived (HKDF-SHA256) from the
//! random session id. The id lives only in the browser's cookie — the row holds its SHA-256 —
//! so a request carrying the cookie opens the token and a dump of `web_sessions` cannot.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf::{HKDF_SHA256, Salt};
use ring::rand::{SecureRandom, SystemRandom};

const SALT: &[u8] = b"junheng web session token v1";
const INFO: &[u8] = b"scheduler bearer token";

fn key(session_id: &str) -> LessSafeKey {
    let prk = Salt::new(HKDF_SHA256, SALT).extract(session_id.as_bytes());
    let okm = prk
        .expand(&[INFO], &CHACHA20_POLY1305)
        .expect("HKDF output of the AEAD's key length");
    LessSafeKey::new(UnboundKey::from(okm))
}

/// `nonce || ciphertext || tag`; the session's digest is the associated data, so a sealed
/// token moved to another row does not open.
pub fn seal(session_id: &str, digest: &[u8], token: &str) -> Vec<u8> {
    let mut nonce = [0u8; 12];
    SystemRandom::new()
        .fill(&mut nonce)
        .expect("the system's random source");
    let mut buf = token.as_bytes().to_vec();
    key(session_id)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(digest),
            &mut buf,
        )
        .expect("sealing a token");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    out
}

/// The token, or none when the sealed bytes are not this session's.
pub fn open(session_id: &str, digest: &[u8], sealed: &[u8]) -> Option<String> {
    if sealed.len() < 12 + CHACHA20_POLY1305.tag_len() {
        return None;
    }
    let (nonce, body) = sealed.split_at(12);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = body.to_vec();
    let plain = key(session_id)
        .open_in_place(nonce, Aad::from(digest), &mut buf)
        .ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_session_id_opens_its_token() {
        let sealed = seal("id-1", b"d1", "tok-secret-123");
        assert!(
            !sealed
                .windows(b"tok-secret".len())
                .any(|w| w == b"tok-secret")
        );
        assert_eq!(
            open("id-1", b"d1", &sealed).as_deref(),
            Some("tok-secret-123")
        );
        assert_eq!(open("id-2", b"d1", &sealed), None);
        assert_eq!(open("id-1", b"d2", &sealed), None);
        assert_eq!(open("id-1", b"d1", &sealed[..10]), None);
    }
}
