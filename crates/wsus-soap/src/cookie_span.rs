//! Where a request's cookie sits in its bytes, found without parsing the envelope, so
//! that a request sent again with only a new cookie is recognised by its other bytes. A
//! scan storm is made of such requests: a SyncUpdates carries ~100 KB of cached update
//! ids that stay the same across rescans and across machines alike, and only its cookie
//! differs.

use memchr::memmem;

use crate::read;
use crate::wusp::Cookie;

/// A request's bytes around its cookie, and the cookie.
#[derive(Debug, PartialEq, Eq)]
pub struct CookieSpan<'a> {
    /// The bytes before `<cookie>`.
    pub before: &'a [u8],
    /// The bytes after `</cookie>`.
    pub after: &'a [u8],
    pub cookie: Cookie,
}

const OPEN: &[u8] = b"<cookie><Expiration>";
const MIDDLE: &[u8] = b"</Expiration><EncryptedData>";
const CLOSE: &[u8] = b"</EncryptedData></cookie>";

/// The cookie of `body` when it is written as Windows writes it
/// (`<cookie><Expiration>…</Expiration><EncryptedData>…</EncryptedData></cookie>`, no
/// prefix, no whitespace, no character references: captures/wsus-m0/000005) and it is the
/// only element of the body whose tag ends in `cookie>`; None otherwise, and the request
/// is parsed as any other. Two bodies whose `before` and `after` are equal then parse to
/// the same request but for the cookie's two values.
pub fn find_cookie(body: &[u8]) -> Option<CookieSpan<'_>> {
    let mut ends = memmem::find_iter(body, b"cookie>");
    let (first, second) = (ends.next()?, ends.next()?);
    if ends.next().is_some() {
        return None;
    }
    let start = first.checked_sub(1)?;
    let rest = body.get(start..)?.strip_prefix(OPEN)?;
    let expiration_len = rest.iter().position(|&b| b == b'<')?;
    let (expiration, rest) = rest.split_at(expiration_len);
    let rest = rest.strip_prefix(MIDDLE)?;
    let data_len = rest.iter().position(|&b| b == b'<')?;
    let (data, rest) = rest.split_at(data_len);
    rest.strip_prefix(CLOSE)?;
    let end = start + OPEN.len() + expiration_len + MIDDLE.len() + data_len + CLOSE.len();
    // The closing tag found must be the second "cookie>" of the body.
    if end != second + "cookie>".len() {
        return None;
    }
    let is_time = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'+' | b'-');
    let is_base64 = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
    if !expiration.iter().all(is_time) || !data.iter().all(is_base64) {
        return None;
    }
    let expiration = std::str::from_utf8(expiration).ok()?;
    let data = std::str::from_utf8(data).ok()?;
    let cookie = Cookie {
        expiration: read::time(expiration, "cookie.Expiration").ok()?,
        encrypted_data: (!data.is_empty()).then(|| data.to_owned()),
    };
    Some(CookieSpan { before: &body[..start], after: &body[end..], cookie })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wusp::request_cookie;

    /// A SyncUpdates a Windows 11 client sent a real WSUS (captures/wsus-m0/000005).
    const CAPTURED: &str = include_str!("../../../testdata/captures/wsus-m0/000005/request.body");

    #[test]
    fn finds_the_cookie_of_a_captured_sync_updates_as_the_parser_reads_it() {
        let span = find_cookie(CAPTURED.as_bytes()).expect("the captured cookie");
        let parsed = crate::parse_request(CAPTURED.as_bytes(), &crate::Limits::default()).expect("parses");
        assert_eq!(span.cookie, request_cookie(&parsed.operation).expect("cookie"));
        assert!(span.before.ends_with(b"ClientWebService\">"));
        assert!(span.after.starts_with(b"<parameters>"));
    }

    #[test]
    fn the_same_request_with_another_cookie_has_the_same_bytes_around_it() {
        let other =
            CAPTURED.replacen("2026-10-04T15:49:04.9425733Z", "2027-01-01T00:00:00Z", 1).replacen("AAAA=", "BBBB=", 1);
        let (a, b) = (find_cookie(CAPTURED.as_bytes()).unwrap(), find_cookie(other.as_bytes()).unwrap());
        assert_eq!((a.before, a.after), (b.before, b.after));
        assert_ne!(a.cookie, b.cookie);
    }

    #[test]
    fn a_cookie_written_otherwise_is_left_to_the_parser() {
        let cases = [
            // A prefix, whitespace, a character reference, a second cookie, none at all.
            CAPTURED.replace("<cookie>", "<w:cookie>").replace("</cookie>", "</w:cookie>"),
            CAPTURED.replace("<cookie><Expiration>", "<cookie> <Expiration>"),
            CAPTURED.replace("AAAA=", "AA&#65;A="),
            CAPTURED.replace("<parameters>", "<!--<cookie></cookie>--><parameters>"),
            CAPTURED.replace("<cookie>", "<biscuit>").replace("</cookie>", "</biscuit>"),
            CAPTURED.replace("2026-10-04T15:49:04.9425733Z", "tomorrow"),
        ];
        for body in cases {
            assert_eq!(find_cookie(body.as_bytes()), None, "{body}");
        }
    }
}
