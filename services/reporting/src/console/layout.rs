//! The console's page frame (head, header, navigation, sign-out) and the small
//! formatting pieces the pages share.

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

const STYLESHEET: &str = "/console/static/console.css";
const SCRIPT: &str = "/console/static/console.js";

/// The navigation entries; the current one is marked `aria-current="page"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Computers,
    Updates,
    Groups,
    Sync,
    Downstream,
    Notifications,
}

impl Nav {
    pub const ALL: [Nav; 7] =
        [Nav::Overview, Nav::Computers, Nav::Updates, Nav::Groups, Nav::Sync, Nav::Downstream, Nav::Notifications];

    pub fn href(self) -> &'static str {
        match self {
            Nav::Overview => "/console/",
            Nav::Computers => "/console/computers",
            Nav::Updates => "/console/updates",
            Nav::Groups => "/console/groups",
            Nav::Sync => "/console/sync",
            Nav::Downstream => "/console/downstream",
            Nav::Notifications => "/console/notifications",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Nav::Overview => "Overview",
            Nav::Computers => "Computers",
            Nav::Updates => "Updates",
            Nav::Groups => "Groups",
            Nav::Sync => "Synchronizations",
            Nav::Downstream => "Downstream servers",
            Nav::Notifications => "Notifications",
        }
    }
}

/// A whole console page. `title` names the document (browser tab, history); the body
/// brings its own `<h1>`, which may say more (e.g. the computer's name).
pub fn page(title: &str, role: &str, csrf: &str, current: Nav, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href=(Nav::Overview.href()) { "WSUS" }
                    nav id="nav" aria-label="Main" {
                        ul {
                            @for n in Nav::ALL {
                                li { a href=(n.href()) aria-current=[(n == current).then_some("page")] { (n.label()) } }
                            }
                        }
                    }
                    div class="who" {
                        span class="role-label" { "Role: " } span id="role" { (role) }
                        form id="logout" method="post" action="/console/logout" {
                            input type="hidden" name="_csrf" value=(csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}

/// A page outside the signed-in frame (an error, a refusal, "starting").
pub fn plain_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { main id="main" { (body) } }
        }
    }
}

/// The sign-in page: one password field for an API token, and the reason for a failed
/// attempt when there is one.
pub fn login_page(error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in"))
            body class="login" {
                main id="main" {
                    h1 { "WSUS" }
                    form id="login" class="card" method="post" action="/console/login" {
                        h2 { "Sign in" }
                        @if let Some(error) = error {
                            p class="error" role="alert" { (error) }
                        }
                        label for="token" { "API token" }
                        input id="token" name="token" type="password" autocomplete="current-password" required autofocus;
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            title { (title) " · WSUS" }
            // No icon to fetch (a browser would ask for /favicon.ico and log the 404).
            link rel="icon" href="data:,";
            link rel="stylesheet" href=(STYLESHEET);
            script src=(SCRIPT) defer {}
        }
    }
}

/// A link to the next page of a list: `base` with `params` as a URL-encoded query.
pub fn next_link(base: &str, params: &[(&str, String)]) -> Markup {
    let mut href = base.to_string();
    for (i, (key, value)) in params.iter().enumerate() {
        let sep = if i > 0 || base.contains('?') { '&' } else { '?' };
        href.push(sep);
        href.push_str(&encode(key));
        href.push('=');
        href.push_str(&encode(value));
    }
    html! { a class="next" rel="next" href=(href) { "Next page →" } }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so the result is safe
/// in any query component ('+' and ' ' included) and as one path segment.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A timestamp in UTC to the minute ("2026-11-26 10:04"), or "never".
pub fn when(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        None => "never".to_string(),
    }
}

/// A size in binary units: "512 B", "1.5 KiB", "3.2 GiB".
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    let sign = if n < 0 { "-" } else { "" };
    let magnitude = n.unsigned_abs();
    if magnitude < 1024 {
        return format!("{sign}{magnitude} B");
    }
    let mut value = magnitude as f64 / 1024.0;
    let mut unit = 0;
    // Move up while the one-decimal rendering would reach 1024.0.
    while value >= 1023.95 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{sign}{value:.1} {}", UNITS[unit])
}

/// A status word as a coloured badge. Accepts the API's snake_case ("installed_pending_reboot")
/// and the PascalCase of update states ("InstalledPendingReboot").
pub fn status_badge(status: &str) -> Markup {
    let words = words(status);
    let key = words.join("_");
    let class = match key.as_str() {
        "installed" | "succeeded" | "success" | "ok" | "up_to_date" | "approved" | "online" => "s-ok",
        "needed" | "downloaded" | "installed_pending_reboot" | "pending_reboot" | "pending" | "running" => "s-needed",
        "failed" | "error" | "errors" | "with_errors" | "declined" | "offline" => "s-failed",
        "not_applicable" | "cancelled" | "canceled" | "none" | "not_approved" => "s-none",
        _ => "s-unknown",
    };
    let mut text = words.join(" ");
    if let Some(first) = text.get(..1) {
        text.replace_range(..1, &first.to_ascii_uppercase());
    }
    html! { span class={ "badge " (class) } { (text) } }
}

/// Lower-case words of a snake_case, kebab-case, spaced or PascalCase status.
fn words(status: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut prev_lower = false;
    for c in status.trim().chars() {
        if matches!(c, '_' | '-' | ' ') {
            words.push(String::new());
            prev_lower = false;
            continue;
        }
        if words.is_empty() || (c.is_uppercase() && prev_lower) {
            words.push(String::new());
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        words.last_mut().expect("pushed above").extend(c.to_lowercase());
    }
    words.retain(|w| !w.is_empty());
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn page_has_the_shared_frame() {
        let s = page("Computers", "admin", "tok<en>", Nav::Computers, html! { p { "body" } }).into_string();
        assert!(s.starts_with("<!DOCTYPE html>"));
        assert!(s.contains("<title>Computers · WSUS</title>"));
        assert!(s.contains(r#"<meta name="color-scheme" content="light dark">"#));
        assert!(s.contains(r#"<link rel="stylesheet" href="/console/static/console.css">"#));
        assert!(s.contains(r#"<script src="/console/static/console.js" defer></script>"#));
        assert!(s.contains(r#"<nav id="nav""#) && s.contains(r#"<span id="role">admin</span>"#));
        assert!(s.contains(r#"<form id="logout" method="post" action="/console/logout">"#));
        assert!(s.contains(r#"<input type="hidden" name="_csrf" value="tok&lt;en&gt;">"#));
        assert!(s.contains(r#"<main id="main"><p>body</p></main>"#));
        assert!(!s.contains("style=") && !s.contains("<script>") && !s.contains("onclick") && !s.contains("onsubmit"));
        for n in Nav::ALL {
            assert!(s.contains(&format!(r#"href="{}""#, n.href())), "{n:?} missing");
        }
        assert_eq!(s.matches("aria-current").count(), 1);
        assert!(s.contains(r#"<a href="/console/computers" aria-current="page">Computers</a>"#));
    }

    #[test]
    fn login_page_shows_the_error_only_when_given() {
        let plain = login_page(None).into_string();
        assert!(plain.contains(r#"<form id="login" class="card" method="post" action="/console/login">"#));
        assert!(plain.contains(r#"name="token" type="password""#));
        assert!(!plain.contains("role=\"alert\"") && !plain.contains("id=\"nav\""));
        let failed = login_page(Some("Unknown <token>")).into_string();
        assert!(failed.contains(r#"<p class="error" role="alert">Unknown &lt;token&gt;</p>"#));
    }

    #[test]
    fn client_chosen_ids_are_one_path_segment() {
        assert_eq!(encode("a/b c%?#"), "a%2Fb%20c%25%3F%23");
        assert_eq!(encode("4b1e-Host.x_~"), "4b1e-Host.x_~");
    }

    #[test]
    fn next_link_encodes_the_query() {
        let s = next_link("/console/computers", &[("cursor", "a+b/c=".into()), ("q", "x & y é".into())]).into_string();
        assert_eq!(
            s,
            r#"<a class="next" rel="next" href="/console/computers?cursor=a%2Bb%2Fc%3D&amp;q=x%20%26%20y%20%C3%A9">Next page →</a>"#
        );
        assert!(next_link("/console/sync?x=1", &[("p", "2".into())]).into_string().contains("?x=1&amp;p=2"));
        assert!(next_link("/b", &[]).into_string().contains(r#"href="/b""#));
    }

    #[test]
    fn when_is_utc_to_the_minute() {
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 10, 4, 59).unwrap();
        assert_eq!(when(Some(t)), "2026-11-26 10:04");
        assert_eq!(when(None), "never");
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(bytes(5 * 1024 * 1024 * 1024 + 1024 * 1024 * 512), "5.5 GiB");
        assert_eq!(bytes(-2048), "-2.0 KiB");
        assert_eq!(bytes(i64::MIN), "-8192.0 PiB");
    }

    #[test]
    fn status_badges_pick_a_class_and_read_well() {
        let cases = [
            ("installed", "s-ok", "Installed"),
            ("InstalledPendingReboot", "s-needed", "Installed pending reboot"),
            ("installed_pending_reboot", "s-needed", "Installed pending reboot"),
            ("failed", "s-failed", "Failed"),
            ("NotApplicable", "s-none", "Not applicable"),
            ("succeeded", "s-ok", "Succeeded"),
            ("something-new", "s-unknown", "Something new"),
            ("<x>", "s-unknown", "&lt;x&gt;"),
        ];
        for (status, class, text) in cases {
            let s = status_badge(status).into_string();
            assert_eq!(s, format!(r#"<span class="badge {class}">{text}</span>"#), "{status}");
        }
        assert_eq!(status_badge("").into_string(), r#"<span class="badge s-unknown"></span>"#);
    }
}
