//! Cookies the server hands out and reads back, sealed with ChaCha20-Poly1305 so a
//! client can neither read nor forge them, and no database is needed to check them.
//!
//! Sealed form: `version (1) | key id length (1) | key id | nonce (12) | ciphertext+tag`.
//! The key id names the key that sealed it: the first configured key seals, every key
//! opens, so keys rotate without invalidating cookies in flight. The purpose (an
//! authorization cookie, a client cookie, a console session) is bound as associated data,
//! so one cannot stand in for another.

use std::collections::HashMap;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use uuid::Uuid;

const FORMAT: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    /// Not one of ours: wrong format, unknown key, forged or damaged.
    #[error("the cookie cannot be opened")]
    Invalid,
}

/// The keys of `WSUS_COOKIE_KEYS`: the first seals, all open.
#[derive(Clone)]
pub struct Keys {
    sealing: (String, ChaCha20Poly1305),
    opening: HashMap<String, ChaCha20Poly1305>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys(seal {}, open {})", self.sealing.0, self.opening.len())
    }
}

/// What a sealed cookie is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// SimpleAuth GetAuthorizationCookie's CookieData.
    Authorization,
    /// The Cookie's EncryptedData, renewed on every client call.
    Client,
    /// MS-WSUSSS cookies of downstream servers.
    Server,
    /// MS-WSUSSS authorization cookies of downstream servers.
    ServerAuthorization,
    /// A signed-in session of the web console (reporting).
    ConsoleSession,
}

impl Purpose {
    fn aad(self) -> &'static [u8] {
        match self {
            Purpose::Authorization => b"wsus/authorization",
            Purpose::Client => b"wsus/client",
            Purpose::Server => b"wsus/server",
            Purpose::ServerAuthorization => b"wsus/server-authorization",
            Purpose::ConsoleSession => b"wsus/console-session",
        }
    }
}

impl Keys {
    /// `keys` in order (the first seals). Key ids are at most 255 bytes.
    pub fn new(keys: &[(String, [u8; 32])]) -> Option<Self> {
        let (first_id, first_key) = keys.first()?;
        if keys.iter().any(|(id, _)| id.is_empty() || id.len() > 255) {
            return None;
        }
        let cipher = |k: &[u8; 32]| ChaCha20Poly1305::new(&Key::from(*k));
        Some(Self {
            sealing: (first_id.clone(), cipher(first_key)),
            opening: keys.iter().map(|(id, k)| (id.clone(), cipher(k))).collect(),
        })
    }

    pub fn seal(&self, purpose: Purpose, plaintext: &[u8]) -> Vec<u8> {
        let (id, cipher) = &self.sealing;
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).expect("the operating system provides randomness");
        let sealed = cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad: purpose.aad() })
            .expect("sealing in memory cannot fail");
        let mut out = Vec::with_capacity(2 + id.len() + 12 + sealed.len());
        out.push(FORMAT);
        out.push(id.len() as u8);
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, purpose: Purpose, sealed: &[u8]) -> Result<Vec<u8>, CookieError> {
        let [FORMAT, id_len, rest @ ..] = sealed else { return Err(CookieError::Invalid) };
        let id_len = *id_len as usize;
        if rest.len() < id_len + 12 + 16 {
            return Err(CookieError::Invalid);
        }
        let (id, rest) = rest.split_at(id_len);
        let (nonce, ciphertext) = rest.split_at(12);
        let id = std::str::from_utf8(id).map_err(|_| CookieError::Invalid)?;
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| CookieError::Invalid)?;
        let cipher = self.opening.get(id).ok_or(CookieError::Invalid)?;
        cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: ciphertext, aad: purpose.aad() })
            .map_err(|_| CookieError::Invalid)
    }
}

/// A small, versioned binary encoding for cookie contents.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn uuid(&mut self, v: &Uuid) -> &mut Self {
        self.0.extend_from_slice(v.as_bytes());
        self
    }
    fn bytes16(&mut self, v: &[u8; 16]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
    fn str(&mut self, v: &str) -> &mut Self {
        let bytes = &v.as_bytes()[..v.len().min(u16::MAX as usize)];
        self.0.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        self.0.extend_from_slice(bytes);
        self
    }
    /// A presence byte, then the string when present.
    fn opt_str(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(s) => self.u8(1).str(s),
            None => self.u8(0),
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CookieError> {
        if self.0.len() < n {
            return Err(CookieError::Invalid);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, CookieError> {
        Ok(self.take(1)?[0])
    }
    fn i64(&mut self) -> Result<i64, CookieError> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn u32(&mut self) -> Result<u32, CookieError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn uuid(&mut self) -> Result<Uuid, CookieError> {
        Ok(Uuid::from_slice(self.take(16)?).expect("16 bytes"))
    }
    fn bytes16(&mut self) -> Result<[u8; 16], CookieError> {
        Ok(self.take(16)?.try_into().expect("16 bytes"))
    }
    fn str(&mut self) -> Result<String, CookieError> {
        let n = u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| CookieError::Invalid)
    }
    fn opt_str(&mut self) -> Result<Option<String>, CookieError> {
        Ok(if self.u8()? == 1 { Some(self.str()?) } else { None })
    }
    /// The format version every cookie starts with.
    fn version(&mut self, expected: u8) -> Result<(), CookieError> {
        if self.u8()? != expected { Err(CookieError::Invalid) } else { Ok(()) }
    }
}

/// What SimpleAuth's CookieData carries: who the client is and the group it asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCookie {
    pub server_id: Uuid,
    pub client_id: String,
    pub dns_name: String,
    /// Client-side targeting: the group name the client asked for, if any.
    pub target_group_name: Option<String>,
    /// Unix seconds.
    pub issued_at: i64,
}

impl AuthorizationCookie {
    /// Sealed as a client's SimpleAuth cookie.
    pub fn seal(&self, keys: &Keys) -> Vec<u8> {
        self.seal_for(keys, Purpose::Authorization)
    }

    pub fn open(keys: &Keys, sealed: &[u8]) -> Result<Self, CookieError> {
        Self::open_for(keys, Purpose::Authorization, sealed)
    }

    /// Sealed for `purpose` (a downstream server's authorization uses [`Purpose::ServerAuthorization`]).
    pub fn seal_for(&self, keys: &Keys, purpose: Purpose) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(1)
            .uuid(&self.server_id)
            .str(&self.client_id)
            .str(&self.dns_name)
            .opt_str(self.target_group_name.as_deref())
            .i64(self.issued_at);
        keys.seal(purpose, &w.0)
    }

    pub fn open_for(keys: &Keys, purpose: Purpose, sealed: &[u8]) -> Result<Self, CookieError> {
        let plain = keys.open(purpose, sealed)?;
        let mut r = Reader(&plain);
        r.version(1)?;
        Ok(Self {
            server_id: r.uuid()?,
            client_id: r.str()?,
            dns_name: r.str()?,
            target_group_name: r.opt_str()?,
            issued_at: r.i64()?,
        })
    }
}

/// What a client's Cookie (EncryptedData) carries between calls.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientCookie {
    /// The server that issued it: another server's cookie is refused (ServerChanged).
    pub server_id: Uuid,
    pub client_id: String,
    /// Client-side targeting group name, from the authorization cookie.
    pub target_group_name: Option<String>,
    /// Client protocol version (major, minor).
    pub protocol_version: (u32, u32),
    /// The configuration LastChange the client saw, Unix microseconds (ConfigChanged).
    pub config_last_change: i64,
    /// Unix seconds; the clear-text Expiration mirrors it.
    pub expires_at: i64,
    /// Last completed software / driver scan, Unix seconds (0 = never).
    pub last_sync: i64,
    pub last_driver_sync: i64,
    /// The change marker of the software pass: the catalog version at which the client was
    /// last told the deployments of everything it holds (0 = none: tell them all).
    pub catalog_version: i64,
    /// Digest of the groups the last scan's approvals came from (0 = not recorded): when
    /// the groups change, approvals are told again.
    pub groups_digest: i64,
    /// The marker of category-filtered scans, valid for the filter and groups whose digest
    /// `filter_digest` holds: such a scan covers only part of the catalog, so it moves this
    /// marker and leaves the full one alone.
    pub filter_version: i64,
    pub filter_digest: i64,
    /// The driver pass's marker, valid for the groups whose digest `driver_digest` holds.
    pub driver_version: i64,
    pub driver_digest: i64,
    /// The trace this cookie's scan belongs to, (trace id, parent span id); 0 = none. Set
    /// at GetCookie, so the calls of one scan form one trace.
    pub trace: (u128, u64),
}

impl ClientCookie {
    /// Sealed as a client's Cookie.
    pub fn seal(&self, keys: &Keys) -> Vec<u8> {
        self.seal_for(keys, Purpose::Client)
    }

    pub fn open(keys: &Keys, sealed: &[u8]) -> Result<Self, CookieError> {
        Self::open_for(keys, Purpose::Client, sealed)
    }

    /// Sealed for `purpose` (a downstream server's Cookie uses [`Purpose::Server`]).
    pub fn seal_for(&self, keys: &Keys, purpose: Purpose) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(1)
            .uuid(&self.server_id)
            .str(&self.client_id)
            .opt_str(self.target_group_name.as_deref())
            .u32(self.protocol_version.0)
            .u32(self.protocol_version.1)
            .i64(self.config_last_change)
            .i64(self.expires_at)
            .i64(self.last_sync)
            .i64(self.last_driver_sync)
            .i64(self.catalog_version)
            .i64(self.groups_digest)
            .uuid(&Uuid::from_u128(self.trace.0))
            .i64(self.trace.1 as i64)
            .i64(self.filter_version)
            .i64(self.filter_digest)
            .i64(self.driver_version)
            .i64(self.driver_digest);
        keys.seal(purpose, &w.0)
    }

    pub fn open_for(keys: &Keys, purpose: Purpose, sealed: &[u8]) -> Result<Self, CookieError> {
        let plain = keys.open(purpose, sealed)?;
        let mut r = Reader(&plain);
        r.version(1)?;
        Ok(Self {
            server_id: r.uuid()?,
            client_id: r.str()?,
            target_group_name: r.opt_str()?,
            protocol_version: (r.u32()?, r.u32()?),
            config_last_change: r.i64()?,
            expires_at: r.i64()?,
            last_sync: r.i64()?,
            last_driver_sync: r.i64()?,
            catalog_version: r.i64()?,
            // Absent from cookies sealed before they were kept.
            groups_digest: if r.0.is_empty() { 0 } else { r.i64()? },
            trace: if r.0.is_empty() { (0, 0) } else { (r.uuid()?.as_u128(), r.i64()? as u64) },
            filter_version: if r.0.is_empty() { 0 } else { r.i64()? },
            filter_digest: if r.0.is_empty() { 0 } else { r.i64()? },
            driver_version: if r.0.is_empty() { 0 } else { r.i64()? },
            driver_digest: if r.0.is_empty() { 0 } else { r.i64()? },
        })
    }
}

/// How long a console session lasts: a working day, then the token is asked for again.
pub const CONSOLE_SESSION_SECONDS: i64 = 8 * 3600;

/// How far in the future a session's issue time may lie: replicas' clocks differ a little.
const CLOCK_SKEW_SECONDS: i64 = 60;

/// What the web console's session cookie carries. Not the token: a fingerprint of it, so
/// the role is looked up afresh on every request and removing a token ends its sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// The first 16 bytes of the SHA-256 of the token that signed in.
    pub fingerprint: [u8; 16],
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// The session's CSRF token, echoed by every form it posts.
    pub csrf: [u8; 16],
}

impl ConsoleSession {
    const VERSION: u8 = 1;

    /// A fresh session issued at `now` (Unix seconds), with a random CSRF token.
    pub fn new(fingerprint: [u8; 16], now: i64) -> Self {
        let mut csrf = [0u8; 16];
        getrandom::fill(&mut csrf).expect("the operating system provides randomness");
        Self { fingerprint, issued_at: now, expires_at: now.saturating_add(CONSOLE_SESSION_SECONDS), csrf }
    }

    /// False once expired, or when issued further in the future than clocks drift.
    pub fn is_valid_at(&self, now: i64) -> bool {
        now < self.expires_at && self.issued_at <= now.saturating_add(CLOCK_SKEW_SECONDS)
    }

    pub fn seal(&self, keys: &Keys) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(Self::VERSION).bytes16(&self.fingerprint).i64(self.issued_at).i64(self.expires_at).bytes16(&self.csrf);
        keys.seal(Purpose::ConsoleSession, &w.0)
    }

    pub fn open(keys: &Keys, sealed: &[u8]) -> Result<Self, CookieError> {
        let plain = keys.open(Purpose::ConsoleSession, sealed)?;
        let mut r = Reader(&plain);
        r.version(Self::VERSION)?;
        let session = Self { fingerprint: r.bytes16()?, issued_at: r.i64()?, expires_at: r.i64()?, csrf: r.bytes16()? };
        if !r.0.is_empty() {
            return Err(CookieError::Invalid);
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ids: &[(&str, u8)]) -> Keys {
        Keys::new(&ids.iter().map(|(id, b)| (id.to_string(), [*b; 32])).collect::<Vec<_>>()).unwrap()
    }

    fn client() -> ClientCookie {
        ClientCookie {
            server_id: Uuid::from_u128(7),
            client_id: "e1da06a3-5601-43c9-bac3-52d5db701494".into(),
            target_group_name: Some("Pilot".into()),
            protocol_version: (2, 90),
            config_last_change: 1_791_119_827_590_000,
            expires_at: 1_791_130_000,
            last_sync: 0,
            last_driver_sync: 0,
            catalog_version: 42,
            groups_digest: 7,
            trace: (0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c, 0xb7ad_6b71_6920_3331),
            filter_version: 40,
            filter_digest: 11,
            driver_version: 41,
            driver_digest: 7,
        }
    }

    #[test]
    fn round_trips_and_rotation() {
        let old = keys(&[("k1", 1)]);
        let sealed = client().seal(&old);
        assert_eq!(ClientCookie::open(&old, &sealed).unwrap(), client());
        // A new key seals; the old one still opens cookies in flight.
        let rotated = keys(&[("k2", 2), ("k1", 1)]);
        assert_eq!(ClientCookie::open(&rotated, &sealed).unwrap(), client());
        let fresh = client().seal(&rotated);
        assert_eq!(ClientCookie::open(&old, &fresh), Err(CookieError::Invalid), "k2 unknown to the old set");
        let auth = AuthorizationCookie {
            server_id: Uuid::from_u128(7),
            client_id: "c".into(),
            dns_name: "pc.lab".into(),
            target_group_name: None,
            issued_at: 5,
        };
        assert_eq!(AuthorizationCookie::open(&rotated, &auth.seal(&rotated)).unwrap(), auth);
    }

    #[test]
    fn tampering_and_confusion_are_refused() {
        let k = keys(&[("k1", 1)]);
        let sealed = client().seal(&k);
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert_eq!(ClientCookie::open(&k, &t), Err(CookieError::Invalid), "byte {i}");
        }
        assert_eq!(ClientCookie::open(&k, &sealed[..sealed.len() - 1]), Err(CookieError::Invalid));
        assert_eq!(ClientCookie::open(&k, &[]), Err(CookieError::Invalid));
        assert_eq!(ClientCookie::open(&k, &[0u8; 372]), Err(CookieError::Invalid), "the captures' blanked cookies");
        // An authorization cookie is not a client cookie.
        let auth = AuthorizationCookie {
            server_id: Uuid::nil(),
            client_id: "c".into(),
            dns_name: "d".into(),
            target_group_name: None,
            issued_at: 0,
        };
        assert_eq!(ClientCookie::open(&k, &auth.seal(&k)), Err(CookieError::Invalid));
        assert_eq!(ClientCookie::open(&keys(&[("k1", 9)]), &sealed), Err(CookieError::Invalid), "same id, other key");
        assert_ne!(client().seal(&k), sealed, "a fresh nonce every time");
    }

    #[test]
    fn console_sessions_round_trip_and_expire() {
        let k = keys(&[("k1", 1)]);
        let session = ConsoleSession::new([3u8; 16], 1_000_000);
        assert_eq!(session.expires_at, 1_000_000 + 8 * 3600);
        assert_ne!(ConsoleSession::new([3u8; 16], 0).csrf, session.csrf, "a random CSRF token per session");
        let sealed = session.seal(&k);
        assert_eq!(ConsoleSession::open(&k, &sealed).unwrap(), session);
        assert!(session.is_valid_at(1_000_000));
        assert!(session.is_valid_at(session.expires_at - 1));
        assert!(!session.is_valid_at(session.expires_at), "expired");
        assert!(!session.is_valid_at(1_000_000 - 3600), "issued in the future");
    }

    #[test]
    fn console_sessions_refuse_tampering_and_other_purposes() {
        let k = keys(&[("k1", 1)]);
        let sealed = ConsoleSession::new([3u8; 16], 5).seal(&k);
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x80;
            assert_eq!(ConsoleSession::open(&k, &t), Err(CookieError::Invalid), "byte {i}");
        }
        assert_eq!(ConsoleSession::open(&keys(&[("k1", 2)]), &sealed), Err(CookieError::Invalid), "other key");
        // A client's cookie never opens as a session, nor a session as a client cookie,
        // even when the plaintext would parse.
        let as_client = k.seal(Purpose::Client, &k.open(Purpose::ConsoleSession, &sealed).unwrap());
        assert_eq!(ConsoleSession::open(&k, &as_client), Err(CookieError::Invalid));
        assert_eq!(ConsoleSession::open(&k, &client().seal(&k)), Err(CookieError::Invalid));
        assert_eq!(ClientCookie::open(&k, &sealed), Err(CookieError::Invalid));
        // Another format version is not read as this one.
        let mut plain = k.open(Purpose::ConsoleSession, &sealed).unwrap();
        plain[0] = 2;
        assert_eq!(ConsoleSession::open(&k, &k.seal(Purpose::ConsoleSession, &plain)), Err(CookieError::Invalid));
    }
}
