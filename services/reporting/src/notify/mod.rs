//! Sends what the notification outbox holds: every few seconds each replica claims the
//! due notifications (no two claim the same one), posts each to its channel, and records
//! the outcome; a channel that fails is tried again later and in the end given up. A dead
//! endpoint delays only its own notifications: syncs and ingestion never wait on it.

use std::time::Duration;

use aws_lc_rs::hmac;
use wsus_api::ChannelKind;
use wsus_store::PgPool;
use wsus_store::notifications::{self, Channel, Delivery, Retry};

pub use message::LANGUAGES;
use message::{mail_bodies, message};

mod message;
pub mod watch;

/// How often the outbox is looked at.
const POLL: Duration = Duration::from_secs(2);
/// How long a claimed notification is held before another sender may take it: well over
/// one send's limit, as a batch is sent at once.
const HOLD_SECONDS: i64 = 120;
/// Notifications claimed (and sent at once) per round.
const BATCH: i64 = 10;
/// How long one delivery may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// The header a signed webhook carries: `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-WSUS-Signature";

/// The mail server, when e-mail is set up.
pub struct Mailer {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl Mailer {
    pub fn new(config: &wsus_config::SmtpConfig) -> anyhow::Result<Self> {
        let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(&config.url)
            .map_err(|e| anyhow::anyhow!("WSUS_SMTP_URL: {e}"))?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        let from = config.from.parse().map_err(|e| anyhow::anyhow!("WSUS_SMTP_FROM: {e}"))?;
        Ok(Self { transport, from })
    }
}

/// Sends until `stop`.
pub async fn run(pool: PgPool, retry: Retry, mailer: Option<Mailer>, stop: tokio_util::sync::CancellationToken) {
    let http = match reqwest::Client::builder().timeout(SEND_TIMEOUT).build() {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "notifications: no HTTP client; nothing will be sent");
            return;
        }
    };
    loop {
        if let Err(e) = round(&pool, &http, mailer.as_ref(), retry).await {
            tracing::warn!(error = %e, "notifications: the outbox cannot be read now");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn round(
    pool: &PgPool,
    http: &reqwest::Client,
    mailer: Option<&Mailer>,
    retry: Retry,
) -> Result<(), wsus_store::StoreError> {
    let due = notifications::claim_due(pool, BATCH, chrono::Duration::seconds(HOLD_SECONDS)).await?;
    if due.is_empty() {
        return Ok(());
    }
    let channels = notifications::channels(pool).await?;
    let channels = &channels;
    let language = &watch::settings(pool).await?.language;
    // At once, each within its own limit: a slow endpoint holds back no other channel.
    let outcomes = futures_util::future::join_all(due.iter().map(|delivery| async move {
        let Some(channel) = channels.iter().find(|c| c.channel_id == delivery.channel_id) else {
            return (delivery, None, Err("the channel is gone".to_owned()));
        };
        let sent = match ChannelKind::parse(&channel.kind) {
            Some(ChannelKind::Email) => mail(mailer, channel, delivery, language).await,
            Some(kind) => send(http, kind, channel, delivery, language).await,
            None => Err(format!("a channel of kind {:?} is not sent here", channel.kind)),
        };
        (delivery, Some(channel.name.as_str()), sent)
    }))
    .await;
    for (delivery, channel, sent) in outcomes {
        // One outcome that cannot be recorded does not keep the others unrecorded.
        let recorded = match &sent {
            Ok(()) => notifications::sent(pool, delivery).await.map(|()| false),
            Err(why) => notifications::attempt_failed(pool, delivery, why, retry).await,
        };
        match (sent, recorded) {
            (Ok(()), Ok(_)) => {}
            (Err(why), Ok(given_up)) => {
                tracing::warn!(
                    channel,
                    event = delivery.event_kind,
                    error = why,
                    given_up,
                    "notification not delivered"
                );
            }
            (_, Err(e)) => {
                tracing::warn!(error = %e, "a notification's outcome cannot be recorded now; it is tried again")
            }
        }
    }
    Ok(())
}

async fn send(
    http: &reqwest::Client,
    kind: ChannelKind,
    channel: &Channel,
    delivery: &Delivery,
    language: &str,
) -> Result<(), String> {
    let body = serde_json::to_vec(&message(kind, delivery, language)).map_err(|e| e.to_string())?;
    // A URL kept in a Secret is read where it is kept, as the key is.
    let url = match &channel.target_env {
        Some(variable) => std::env::var(variable).map_err(|_| format!("its URL variable {variable} is not set"))?,
        None => channel.target.clone(),
    };
    let mut request = http
        .post(&url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("X-WSUS-Event", &delivery.event_kind);
    if let Some(variable) = &channel.secret_env {
        // The key is read where it is kept (the process's environment, from a Secret).
        let key = std::env::var(variable).map_err(|_| format!("its secret {variable} is not set"))?;
        request = request.header(SIGNATURE_HEADER, signature(key.as_bytes(), &body));
    }
    // Without the URL: a Slack or Teams URL is its token.
    let response = request.body(body).send().await.map_err(|e| e.without_url().to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("{} answered {}", host_of(&url), response.status()))
    }
}

/// An e-mail to the channel's recipients: the summary as plain text and as HTML.
async fn mail(mailer: Option<&Mailer>, channel: &Channel, delivery: &Delivery, language: &str) -> Result<(), String> {
    use lettre::AsyncTransport as _;
    use lettre::message::MultiPart;
    let mailer = mailer.ok_or("e-mail is not set up (WSUS_SMTP_URL, WSUS_SMTP_FROM)")?;
    let (title, text, html) = mail_bodies(delivery, language);
    let mut builder = lettre::Message::builder().from(mailer.from.clone()).subject(&title);
    for to in channel.target.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        builder = builder.to(to.parse().map_err(|e| format!("recipient {to:?}: {e}"))?);
    }
    let message = builder.multipart(MultiPart::alternative_plain_html(text, html)).map_err(|e| e.to_string())?;
    mailer.transport.send(message).await.map(|_| ()).map_err(|e| e.to_string())
}

/// `sha256=<hex>`: HMAC-SHA256 of `body` under `key`, as GitHub-style receivers check it.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), body).as_ref()))
}

/// A channel's destination as it may be shown: e-mail recipients as they are, a webhook's
/// URL by scheme and host only (Slack and Teams put the token in the path), nothing for a
/// URL kept in an environment variable.
pub fn shown_target(c: &Channel) -> String {
    match (c.kind.as_str(), &c.target_env) {
        ("email", _) => c.target.clone(),
        (_, Some(_)) => String::new(),
        _ => format!("{}://{}/…", c.target.split("://").next().unwrap_or("https"), host_of(&c.target)),
    }
}

/// Where a URL points, without its path (which may carry a token) or credentials.
pub fn host_of(url: &str) -> &str {
    let authority = url.split("://").nth(1).and_then(|rest| rest.split(['/', '?', '#']).next()).unwrap_or("");
    match authority.rsplit_once('@') {
        Some((_, host)) => host,
        None if authority.is_empty() => "the endpoint",
        None => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
