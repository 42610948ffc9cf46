//! The limit: a server that reads each request's body and writes back the same response
//! bytes the gateway gave, so the ratio of the two rates says how close the gateway comes
//! to what this machine's HTTP stack can do at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::Response;

/// A recorded answer: its body bytes and whether it was Xpress-encoded.
#[derive(Clone)]
pub struct Answer {
    pub body: Vec<u8>,
    pub xpress: bool,
}

/// Serves `answer` to every request on `port` (read the body first) until killed.
pub async fn serve(port: u16, answer: Answer) -> anyhow::Result<()> {
    let answer = Arc::new(answer);
    let app = axum::Router::new().fallback(move |req: Request| {
        let answer = answer.clone();
        async move {
            let _ = to_bytes(req.into_body(), 64 * 1024 * 1024).await;
            let mut r = Response::new(Body::from(answer.body.clone()));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml; charset=utf-8"));
            if answer.xpress {
                r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("xpress"));
            }
            r
        }
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// One request to send again and again.
#[derive(Clone)]
pub struct Request1 {
    pub url: String,
    pub action: String,
    pub body: String,
}

/// The request as a Windows client sends it.
fn post(http: &reqwest::Client, request: &Request1) -> reqwest::RequestBuilder {
    http.post(&request.url)
        .header("Content-Type", "text/xml; charset=utf-8")
        .header("User-Agent", wsus_e2e::agent::USER_AGENT)
        .header("SOAPAction", &request.action)
        .header("Accept-Encoding", "xpress")
        .body(request.body.clone())
}

/// Sends `request` from `concurrency` loops for `duration`; returns answers per second.
pub async fn blast(request: &Request1, concurrency: usize, duration: Duration) -> f64 {
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().expect("HTTP client");
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, request, done) = (http.clone(), request.clone(), done.clone());
        tasks.spawn(async move {
            while Instant::now() < deadline {
                let sent = post(&http, &request).send().await;
                if let Ok(r) = sent
                    && r.status().is_success()
                    && r.bytes().await.is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// The raw answer the server gives `request` (as sent on the wire).
pub async fn record(request: &Request1) -> anyhow::Result<Answer> {
    let r = post(&reqwest::Client::new(), request).send().await?;
    anyhow::ensure!(r.status().is_success(), "the gateway answered {}", r.status());
    let xpress = r.headers().get(header::CONTENT_ENCODING).is_some_and(|v| v == "xpress");
    Ok(Answer { body: r.bytes().await?.to_vec(), xpress })
}
