//! What a `/Content/` request asks for: the file (by its WSUS path) and the byte range,
//! read without I/O so every hostile path and header can be checked (and fuzzed) here.

/// `(sha1, extension)` from a content path, or None when it is not one.
pub fn parse_path(path: &str) -> Option<([u8; 20], String)> {
    let rest = path.get(..9).filter(|p| p.eq_ignore_ascii_case("/content/")).map(|_| &path[9..])?;
    let (folder, name) = rest.split_once('/')?;
    let (hex_name, ext) = name.split_once('.')?;
    let valid_ext = !ext.is_empty() && ext.len() <= 16 && ext.bytes().all(|b| b.is_ascii_alphanumeric());
    if folder.len() != 2 || hex_name.len() != 40 || !valid_ext {
        return None;
    }
    let sha1: [u8; 20] = hex::decode(hex_name).ok()?.try_into().ok()?;
    // The folder is the last two hex digits of the digest.
    if !folder.eq_ignore_ascii_case(&hex_name[38..]) {
        return None;
    }
    Some((sha1, ext.to_owned()))
}

/// A requested byte range, resolved against the file size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Whole,
    /// Inclusive bounds.
    Part(u64, u64),
    Unsatisfiable,
}

/// Reads a `Range` header: one `bytes=` range (first-last, first-, or -suffix). Several
/// ranges, or anything unreadable, are ignored (the whole file), as HTTP allows.
pub fn parse_range(header: Option<&str>, size: u64) -> Range {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Range::Whole };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Range::Whole };
    let (first, last) = (first.trim(), last.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        (false, _) => {
            let Some(a) = parse(first) else { return Range::Whole };
            let b = if last.is_empty() { Some(u64::MAX) } else { parse(last) };
            let Some(b) = b else { return Range::Whole };
            if a > b {
                Range::Whole
            } else if a >= size {
                Range::Unsatisfiable
            } else {
                Range::Part(a, b.min(size - 1))
            }
        }
        (true, false) => match parse(last) {
            Some(n) if n > 0 && size > 0 => Range::Part(size - n.min(size), size - 1),
            Some(_) => Range::Unsatisfiable,
            None => Range::Whole,
        },
        (true, true) => Range::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_paths() {
        let (sha1, ext) = parse_path("/Content/49/A379D5526FB3A7A0423DA1CD7FC3182A8D448449.exe").unwrap();
        assert_eq!(
            (hex::encode_upper(sha1).as_str(), ext.as_str()),
            ("A379D5526FB3A7A0423DA1CD7FC3182A8D448449", "exe")
        );
        assert!(parse_path("/content/49/a379d5526fb3a7a0423da1cd7fc3182a8d448449.exe").is_some(), "any case");
        for bad in [
            "/Content/48/A379D5526FB3A7A0423DA1CD7FC3182A8D448449.exe",
            "/Content/49/../../etc/passwd",
            "/Content/49/A379D5526FB3A7A0423DA1CD7FC3182A8D448449",
            "/Content/49/A379D5526FB3A7A0423DA1CD7FC3182A8D448449.e/x",
            "/Content/49/A379D5526FB3A7A0423DA1CD7FC3182A8D44844.exe",
            "/Content/49/Z379D5526FB3A7A0423DA1CD7FC3182A8D448449.exe",
            "/Contents/49/A379D5526FB3A7A0423DA1CD7FC3182A8D448449.exe",
        ] {
            assert!(parse_path(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 100), Range::Whole);
        assert_eq!(parse_range(Some("bytes=0-918943"), 918_944), Range::Part(0, 918_943));
        assert_eq!(parse_range(Some("bytes=204472320-204745167"), 204_745_168), Range::Part(204_472_320, 204_745_167));
        assert_eq!(parse_range(Some("bytes=10-"), 100), Range::Part(10, 99));
        assert_eq!(parse_range(Some("bytes=-10"), 100), Range::Part(90, 99));
        assert_eq!(parse_range(Some("bytes=0-1000"), 100), Range::Part(0, 99));
        assert_eq!(parse_range(Some("bytes=100-200"), 100), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 100), Range::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-2"), 100), Range::Whole);
        assert_eq!(parse_range(Some("bytes=0-1,5-9"), 100), Range::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 100), Range::Whole);
        assert_eq!(parse_range(Some("bytes=18446744073709551615-"), 100), Range::Unsatisfiable);
    }
}
