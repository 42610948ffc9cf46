//! What a notification says: a title and a few lines made from its event's payload, in
//! the language of the notification settings, and the shape each kind of channel takes.

use serde_json::{Value, json};
use wsus_api::ChannelKind;
use wsus_store::notifications::Delivery;

/// The most lines of text a Teams card carries (a card has a size limit).
const TEAMS_LINES: usize = 60;

/// The languages messages are written in.
pub const LANGUAGES: [&str; 3] = ["en", "de", "fr"];

/// The words of one language. `{n}`, `{d}` and the like are filled in.
struct Words {
    new_updates: &'static str,
    and_more: &'static str,
    sync_failed: &'static str,
    cleanup_failed: &'static str,
    test: &'static str,
    test_text: &'static str,
    summary: &'static str,
    computers: &'static str,
    up_to_date: &'static str,
    needs_updates: &'static str,
    with_errors: &'static str,
    never_reported: &'static str,
    silent: &'static str,
    most_needed: &'static str,
    needed_by: &'static str,
    installs_failed: &'static str,
    downstream_silent: &'static str,
    last_rollup: &'static str,
    certificate_expiring: &'static str,
    certificate_expired: &'static str,
    certificate_within_a_day: &'static str,
    certificate_text: &'static str,
}

const EN: Words = Words {
    new_updates: "WSUS: {n} new updates synchronized",
    and_more: "and {n} more",
    sync_failed: "WSUS: a synchronization failed",
    cleanup_failed: "WSUS: cleanup failed",
    test: "WSUS: a test notification",
    test_text: "This channel is set up right.",
    summary: "WSUS status summary",
    computers: "{n} computers",
    up_to_date: "up to date",
    needs_updates: "needing updates",
    with_errors: "with errors",
    never_reported: "never reported",
    silent: "not reported for {d} days",
    most_needed: "Updates needed by most computers:",
    needed_by: "{n} computers",
    installs_failed: "WSUS: installs newly failed on {n} computers",
    downstream_silent: "WSUS: {n} downstream servers stopped rolling up",
    last_rollup: "last roll-up",
    certificate_expiring: "WSUS: the signing certificate expires in {n} days",
    certificate_expired: "WSUS: the signing certificate has expired",
    certificate_within_a_day: "WSUS: the signing certificate expires within a day",
    certificate_text: "Thumbprint {t}, valid until {d}. Renew it and give clients the new one.",
};

const DE: Words = Words {
    new_updates: "WSUS: {n} neue Updates synchronisiert",
    and_more: "und {n} weitere",
    sync_failed: "WSUS: Eine Synchronisierung ist fehlgeschlagen",
    cleanup_failed: "WSUS: Die Bereinigung ist fehlgeschlagen",
    test: "WSUS: Eine Testbenachrichtigung",
    test_text: "Dieser Kanal ist richtig eingerichtet.",
    summary: "WSUS-Statusbericht",
    computers: "{n} Computer",
    up_to_date: "auf dem neuesten Stand",
    needs_updates: "benötigen Updates",
    with_errors: "mit Fehlern",
    never_reported: "nie gemeldet",
    silent: "seit {d} Tagen nicht gemeldet",
    most_needed: "Von den meisten Computern benötigte Updates:",
    needed_by: "{n} Computer",
    installs_failed: "WSUS: Neue Installationsfehler auf {n} Computern",
    downstream_silent: "WSUS: {n} nachgeschaltete Server übermitteln keine Berichte mehr",
    last_rollup: "letzte Übermittlung",
    certificate_expiring: "WSUS: Das Signaturzertifikat läuft in {n} Tagen ab",
    certificate_expired: "WSUS: Das Signaturzertifikat ist abgelaufen",
    certificate_within_a_day: "WSUS: Das Signaturzertifikat läuft innerhalb eines Tages ab",
    certificate_text: "Fingerabdruck {t}, gültig bis {d}. Erneuern Sie es und verteilen Sie das neue an die Clients.",
};

const FR: Words = Words {
    new_updates: "WSUS : {n} nouvelles mises à jour synchronisées",
    and_more: "et {n} de plus",
    sync_failed: "WSUS : une synchronisation a échoué",
    cleanup_failed: "WSUS : le nettoyage a échoué",
    test: "WSUS : une notification de test",
    test_text: "Ce canal est correctement configuré.",
    summary: "WSUS : rapport d'état",
    computers: "{n} ordinateurs",
    up_to_date: "à jour",
    needs_updates: "nécessitant des mises à jour",
    with_errors: "avec des erreurs",
    never_reported: "n'ayant jamais rendu compte",
    silent: "sans rapport depuis {d} jours",
    most_needed: "Mises à jour requises par le plus d'ordinateurs :",
    needed_by: "{n} ordinateurs",
    installs_failed: "WSUS : nouveaux échecs d'installation sur {n} ordinateurs",
    downstream_silent: "WSUS : {n} serveurs en aval ne remontent plus leurs rapports",
    last_rollup: "dernière remontée",
    certificate_expiring: "WSUS : le certificat de signature expire dans {n} jours",
    certificate_expired: "WSUS : le certificat de signature a expiré",
    certificate_within_a_day: "WSUS : le certificat de signature expire dans moins d'un jour",
    certificate_text: "Empreinte {t}, valide jusqu'au {d}. Renouvelez-le et distribuez le nouveau aux clients.",
};

fn words(language: &str) -> &'static Words {
    match language {
        "de" => &DE,
        "fr" => &FR,
        _ => &EN,
    }
}

fn with_n(template: &str, n: impl std::fmt::Display) -> String {
    template.replace("{n}", &n.to_string())
}

fn count(p: &Value, key: &str) -> u64 {
    p[key].as_u64().unwrap_or(0)
}

/// An update as a line: `KB<n> <title>` or the title alone.
fn update_line(u: &Value) -> String {
    let title = u["title"].as_str().unwrap_or("(untitled)");
    match u["kb_article_id"].as_str() {
        Some(kb) => format!("KB{kb} {title}"),
        None => title.to_owned(),
    }
}

/// `{n} computers: a up to date, b needing updates, …` for one set of counts.
fn compliance_line(w: &Words, c: &Value, days: u64) -> String {
    format!(
        "{}: {} {}, {} {}, {} {}, {} {}, {} {}",
        with_n(w.computers, count(c, "total")),
        count(c, "up_to_date"),
        w.up_to_date,
        count(c, "needs_updates"),
        w.needs_updates,
        count(c, "with_errors"),
        w.with_errors,
        count(c, "not_reported"),
        w.never_reported,
        count(c, "silent"),
        w.silent.replace("{d}", &days.to_string()),
    )
}

/// A title and a few lines of text saying what an event means, in `language`.
pub fn summary(event: &str, p: &Value, language: &str) -> (String, String) {
    let w = words(language);
    match event {
        "updates_synchronized" => {
            let count = count(p, "count");
            let mut by: Vec<(String, u64)> = p["by_classification"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
                .unwrap_or_default();
            by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let counts: Vec<String> = by.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            let mut lines = vec![counts.join(", ")];
            lines.extend(p["updates"].as_array().into_iter().flatten().take(20).map(update_line));
            if count > 20 {
                lines.push(with_n(w.and_more, count - 20));
            }
            (with_n(w.new_updates, count), lines.join("\n"))
        }
        "sync_failed" => (
            w.sync_failed.to_owned(),
            format!("{}: {}", p["upstream_url"].as_str().unwrap_or("upstream"), p["error"].as_str().unwrap_or("")),
        ),
        "cleanup_failed" => (
            w.cleanup_failed.to_owned(),
            format!("{}: {}", p["job"].as_str().unwrap_or("cleanup"), p["error"].as_str().unwrap_or("")),
        ),
        "status_summary" => {
            let days = count(p, "not_reported_days");
            let mut lines = vec![compliance_line(w, &p["computers"], days)];
            for g in p["groups"].as_array().into_iter().flatten() {
                lines.push(format!("{}: {}", g["name"].as_str().unwrap_or("?"), compliance_line(w, g, days)));
            }
            let needed = p["most_needed"].as_array().map(Vec::as_slice).unwrap_or_default();
            if !needed.is_empty() {
                lines.push(w.most_needed.to_owned());
                lines.extend(
                    needed
                        .iter()
                        .map(|u| format!("{} ({})", update_line(u), with_n(w.needed_by, count(u, "computers")))),
                );
            }
            (w.summary.to_owned(), lines.join("\n"))
        }
        "installs_failed" => {
            let computers = count(p, "computers");
            let mut lines = Vec::new();
            for c in p["named"].as_array().into_iter().flatten() {
                let name = c["name"].as_str().or(c["computer_id"].as_str()).unwrap_or("?");
                let updates: Vec<String> = c["updates"].as_array().into_iter().flatten().map(update_line).collect();
                lines.push(format!("{name}: {}", updates.join("; ")));
            }
            let named = p["named"].as_array().map_or(0, Vec::len) as u64;
            if computers > named {
                lines.push(with_n(w.and_more, computers - named));
            }
            (with_n(w.installs_failed, computers), lines.join("\n"))
        }
        "downstream_silent" => {
            let servers = p["servers"].as_array().map(Vec::as_slice).unwrap_or_default();
            let lines: Vec<String> = servers
                .iter()
                .map(|s| {
                    let fqdn = s["fqdn"].as_str().unwrap_or("?");
                    format!("{fqdn}: {} {}", w.last_rollup, s["last_rollup_time"].as_str().unwrap_or("?"))
                })
                .collect();
            (with_n(w.downstream_silent, servers.len()), lines.join("\n"))
        }
        "certificate_expiring" => {
            let left = p["days_left"].as_i64().unwrap_or(0);
            let title = match left {
                ..0 => w.certificate_expired.to_owned(),
                0 => w.certificate_within_a_day.to_owned(),
                n => with_n(w.certificate_expiring, n),
            };
            let text = w
                .certificate_text
                .replace("{t}", p["thumbprint"].as_str().unwrap_or("?"))
                .replace("{d}", p["not_after"].as_str().unwrap_or("?"));
            (title, text)
        }
        "test" => (w.test.to_owned(), w.test_text.to_owned()),
        other => (format!("WSUS: {other}"), p.to_string()),
    }
}

fn escape_slack(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn escape_html(s: &str) -> String {
    escape_slack(s).replace('"', "&quot;")
}

/// An e-mail's subject, plain text and HTML.
pub fn mail_bodies(d: &Delivery, language: &str) -> (String, String, String) {
    let (title, text) = summary(&d.event_kind, &d.payload, language);
    let html = format!(
        "<html><body><h3>{}</h3><p>{}</p></body></html>",
        escape_html(&title),
        escape_html(&text).replace('\n', "<br>")
    );
    (title, text, html)
}

/// The message a channel of `kind` gets: the documented JSON for a webhook, a line of text
/// for Slack, an Adaptive Card for Teams (in the message-with-attachments shape that both
/// a Teams Workflows webhook and a classic incoming webhook take; one text block a line,
/// as Teams does not break lines inside one).
pub fn message(kind: ChannelKind, d: &Delivery, language: &str) -> Value {
    let (title, text) = summary(&d.event_kind, &d.payload, language);
    match kind {
        ChannelKind::Webhook => json!({
            "event": d.event_kind,
            "notification_id": d.notification_id,
            "created_at": d.created_at,
            "title": title,
            "data": d.payload,
        }),
        // Slack reads `<...>` as links and mentions, Teams reads HTML: titles are escaped.
        ChannelKind::Slack => json!({ "text": format!("*{}*\n{}", escape_slack(&title), escape_slack(&text)) }),
        // An e-mail is made by `mail`; this is what a webhook of that kind would get.
        ChannelKind::Email => json!({ "title": title, "text": text }),
        ChannelKind::Teams => {
            let mut body =
                vec![json!({ "type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": true })];
            body.extend(
                text.lines()
                    .filter(|l| !l.is_empty())
                    .take(TEAMS_LINES)
                    .map(|l| json!({ "type": "TextBlock", "text": l, "wrap": true, "spacing": "None" })),
            );
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": body,
                    },
                }],
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_updates_are_summed_up_per_classification() {
        let payload = json!({
            "count": 3,
            "by_classification": { "Updates": 1, "Security Updates": 2 },
            "updates": [
                { "title": "Contoso Notes 2.4.1", "kb_article_id": null },
                { "title": "2026-11 Cumulative Update", "kb_article_id": "5070000" },
            ],
        });
        let (title, text) = summary("updates_synchronized", &payload, "en");
        assert_eq!(title, "WSUS: 3 new updates synchronized");
        assert!(text.starts_with("Security Updates: 2, Updates: 1\n"), "{text}");
        assert!(text.contains("KB5070000 2026-11 Cumulative Update"), "{text}");
        let (title, _) = summary("updates_synchronized", &payload, "de");
        assert_eq!(title, "WSUS: 3 neue Updates synchronisiert");
    }

    #[test]
    fn the_status_summary_counts_every_computer_and_each_group() {
        let counts = json!({ "total": 5, "up_to_date": 1, "needs_updates": 2, "with_errors": 1, "not_reported": 1, "silent": 3 });
        let mut group = counts.clone();
        group["name"] = json!("Pilot");
        let payload = json!({
            "not_reported_days": 7,
            "computers": counts,
            "groups": [group],
            "most_needed": [{ "title": "2026-11 Cumulative Update", "kb_article_id": "5070000", "computers": 2 }],
        });
        let (title, text) = summary("status_summary", &payload, "en");
        assert_eq!(title, "WSUS status summary");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "5 computers: 1 up to date, 2 needing updates, 1 with errors, 1 never reported, 3 not reported for 7 days"
        );
        assert!(lines[1].starts_with("Pilot: 5 computers"), "{text}");
        assert_eq!(lines[3], "KB5070000 2026-11 Cumulative Update (2 computers)");
        let (title, text) = summary("status_summary", &payload, "fr");
        assert_eq!(title, "WSUS : rapport d'état");
        assert!(text.contains("sans rapport depuis 7 jours"), "{text}");
    }

    #[test]
    fn a_teams_message_is_an_adaptive_card_a_block_a_line() {
        let d = Delivery {
            notification_id: 7,
            claim: uuid::Uuid::nil(),
            channel_id: uuid::Uuid::nil(),
            event_kind: "sync_failed".into(),
            payload: json!({ "upstream_url": "https://uss.example", "error": "refused <cookie>" }),
            attempts: 1,
            created_at: chrono::Utc::now(),
        };
        let m = message(ChannelKind::Teams, &d, "en");
        assert_eq!(m["type"], "message");
        let card = &m["attachments"][0];
        assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        let body = card["content"]["body"].as_array().unwrap();
        assert_eq!(body[0]["text"], "WSUS: a synchronization failed");
        assert_eq!(body[1]["text"], "https://uss.example: refused <cookie>");
    }

    #[test]
    fn an_unknown_language_is_english() {
        assert_eq!(summary("test", &json!({}), "xx").0, "WSUS: a test notification");
    }
}
