//! Literal encoding helpers.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{DateTime, Timelike, Utc};

/// Escapes character data for element content.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `<name>escaped text</name>`, or `<name/>` when empty, as the real server writes them.
pub fn element(out: &mut String, name: &str, text: &str) {
    if text.is_empty() {
        let _ = write!(out, "<{name}/>");
    } else {
        let _ = write!(out, "<{name}>{}</{name}>", escape(text));
    }
}

/// A dateTime as .NET writes it: UTC, `Z`, fraction digits without trailing zeros
/// (`2026-10-04T13:17:07.59Z`), none when whole.
pub fn datetime(t: DateTime<Utc>) -> String {
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    // .NET keeps 100 ns ticks; Postgres keeps microseconds.
    let ticks = t.nanosecond() % 1_000_000_000 / 100;
    if ticks != 0 {
        let frac = format!("{ticks:07}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn datetimes_look_like_dotnet() {
        let t = Utc.with_ymd_and_hms(2026, 10, 4, 13, 17, 7).unwrap();
        assert_eq!(datetime(t), "2026-10-04T13:17:07Z");
        assert_eq!(datetime(t + chrono::Duration::milliseconds(590)), "2026-10-04T13:17:07.59Z");
        assert_eq!(datetime(t + chrono::Duration::nanoseconds(942_573_300)), "2026-10-04T13:17:07.9425733Z");
    }

    #[test]
    fn escaping() {
        let mut s = String::new();
        element(&mut s, "Value", r"\\srv\share & <x>");
        element(&mut s, "Parameter", "");
        assert_eq!(s, r"<Value>\\srv\share &amp; &lt;x&gt;</Value><Parameter/>");
    }
}
