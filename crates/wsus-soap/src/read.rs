//! Decoding helpers for request and response elements, shared by every message module:
//! required vs optional children, absent vs empty arrays, numbers, booleans, GUIDs, times.

use chrono::{DateTime, Utc};

use crate::{DecodeError, Element};

pub fn child<'a>(e: &'a Element, name: &str, path: &str) -> Result<&'a Element, DecodeError> {
    e.child(name).filter(|c| !c.is_nil()).ok_or_else(|| DecodeError::new(path, "is required"))
}

pub fn text(e: &Element, name: &str, path: &str) -> Result<String, DecodeError> {
    Ok(child(e, name, path)?.value().to_owned())
}

pub fn opt_text(e: &Element, name: &str) -> Option<String> {
    e.child(name).filter(|c| !c.is_nil()).map(|c| c.value().to_owned())
}

pub fn bool_or(e: &Element, name: &str, path: &str, default: bool) -> Result<bool, DecodeError> {
    match e.child(name).filter(|c| !c.is_nil()).map(|c| c.value()) {
        None => Ok(default),
        Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(DecodeError::new(path, format!("{other:?} is not a boolean"))),
    }
}

pub fn num<T: std::str::FromStr>(raw: &str, path: &str) -> Result<T, DecodeError> {
    raw.trim().parse().map_err(|_| DecodeError::new(path, format!("{raw:?} is not a number in range")))
}

pub fn opt_num<T: std::str::FromStr>(e: &Element, name: &str, path: &str) -> Result<Option<T>, DecodeError> {
    opt_text(e, name).filter(|s| !s.is_empty()).map(|s| num(&s, path)).transpose()
}

/// An array of `item` children; an absent array is empty.
pub fn items<'a>(e: &'a Element, name: &str) -> impl Iterator<Item = &'a Element> + 'a {
    e.child(name).into_iter().flat_map(|a| a.children.iter())
}

pub fn ints(e: &Element, name: &str, path: &str) -> Result<Vec<i32>, DecodeError> {
    items(e, name).map(|i| num(i.value(), path)).collect()
}

pub fn strings(e: &Element, name: &str) -> Vec<String> {
    items(e, name).map(|i| i.text.clone()).collect()
}

pub fn guid(raw: &str, path: &str) -> Result<uuid::Uuid, DecodeError> {
    uuid::Uuid::parse_str(raw.trim()).map_err(|_| DecodeError::new(path, format!("{raw:?} is not a GUID")))
}

pub fn time(raw: &str, path: &str) -> Result<DateTime<Utc>, DecodeError> {
    let v = raw.trim();
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc()))
        .map_err(|_| DecodeError::new(path, format!("{raw:?} is not a dateTime")))
}

/// A required number child.
pub fn required_num<T: std::str::FromStr>(e: &Element, name: &str, path: &str) -> Result<T, DecodeError> {
    num(&text(e, name, path)?, path)
}

/// A number attribute; absent or blank is None.
pub fn attr_num<T: std::str::FromStr>(e: &Element, name: &str, path: &str) -> Result<Option<T>, DecodeError> {
    e.attr(name).filter(|s| !s.trim().is_empty()).map(|s| num(s, path)).transpose()
}

/// A required boolean child.
pub fn required_bool(e: &Element, name: &str, path: &str) -> Result<bool, DecodeError> {
    match text(e, name, path)?.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(DecodeError::new(path, format!("{other:?} is not a boolean"))),
    }
}

/// Rejects arrays longer than the batch size the upstream announced.
pub fn at_most<T>(items: Vec<T>, limit: usize, path: &str) -> Result<Vec<T>, DecodeError> {
    if items.len() > limit {
        return Err(DecodeError::new(path, format!("{} items, more than the batch size {limit}", items.len())));
    }
    Ok(items)
}

/// "Never" on the wire: WSUS writes SQL Server's smallest datetime; samples show year 1.
fn never_is_none(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (t.format("%Y").to_string().parse::<i32>().unwrap_or(0) > 1753).then_some(t)
}

/// An optional time; "never" (SQL Server's smallest datetime, or earlier) is None.
pub fn optional_time(raw: Option<&str>, path: &str) -> Result<Option<DateTime<Utc>>, DecodeError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => time(s, path).map(never_is_none),
    }
}
