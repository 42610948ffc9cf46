//! The management REST API (JSON) under `/api/v1/`, described by the OpenAPI document
//! served at `/api/openapi.json`, behind bearer tokens (`WSUS_API_TOKENS`, roles admin
//! and reader). Every list is a keyset page: `limit` (1..1000, default 100) and the
//! opaque `cursor` a previous page returned as `next_cursor`.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, get, on};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use wsus_api::{Page, PageQuery};
use wsus_config::{ApiToken, Role};
use wsus_rpc::SyncClient;

use crate::admin::Admin;
use wsus_store::{ErrorKind, HasKind, PgPool, StoreError};

mod cleanup;
mod computers;
mod groups;
mod notifications;
pub mod openapi;
mod publishing;
mod reports;
mod rules;
mod settings;
mod sync;
mod updates;
mod wire;

pub struct Api {
    pool: PgPool,
    admin: Admin,
    tokens: TokenTable,
}

impl Api {
    pub fn new(pool: PgPool, sync: SyncClient, tokens: &[ApiToken]) -> Self {
        Self { admin: Admin::new(pool.clone(), sync), pool, tokens: TokenTable::new(tokens) }
    }

    /// Publications go through `client`, whose calls may last as long as an upload.
    pub fn with_publishing(mut self, client: SyncClient) -> Self {
        self.admin = self.admin.with_publishing(client);
        self
    }

    /// E-mail can be sent (WSUS_SMTP_URL is set): e-mail channels are accepted.
    pub fn with_mail(mut self, mail: bool) -> Self {
        self.admin = self.admin.with_mail(mail);
        self
    }
}

/// The configured tokens by their SHA-256 (the tokens themselves are not kept), for the
/// API's bearer tokens and the console's sessions alike.
#[derive(Clone)]
pub struct TokenTable(Vec<(Role, [u8; 32])>);

impl TokenTable {
    pub fn new(tokens: &[ApiToken]) -> Self {
        Self(tokens.iter().map(|t| (t.role, Sha256::digest(t.token.as_bytes()).into())).collect())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The role of a presented token. Compares with every configured token in constant time.
    pub fn role_of(&self, presented: &str) -> Option<Role> {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.role_matching(&presented)
    }

    /// The role of the token whose hash starts with `presented` (a whole hash, or the
    /// fingerprint a console session keeps; at most 32 bytes). Every hash is compared, so
    /// timing tells nothing.
    pub fn role_matching(&self, presented: &[u8]) -> Option<Role> {
        let mut found = None;
        for (role, hash) in &self.0 {
            let Some(prefix) = hash.get(..presented.len()) else { continue };
            let differs = prefix.iter().zip(presented).fold(0u8, |acc, (x, y)| acc | (x ^ y));
            if differs == 0 {
                found = Some(*role);
            }
        }
        found
    }
}

/// What the API answers when something is wrong: `{"error": "..."}` with the status of
/// its kind.
#[derive(Debug)]
pub struct ApiError {
    kind: ErrorKind,
    message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Invalid, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::NotFound, message: message.into() }
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Conflict, message: message.into() }
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Unavailable, message: message.into() }
    }

    /// The answer to an error of the store or of the administration layer.
    pub fn of<E: HasKind + std::fmt::Display>(e: E) -> Self {
        let kind = e.kind();
        let message = match kind {
            ErrorKind::Internal => {
                tracing::error!(error = %e, "management API: request failed");
                wsus_service::edge::INTERNAL_MESSAGE.to_owned()
            }
            _ => e.to_string(),
        };
        Self { kind, message }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (wsus_service::edge::http_status(self.kind), Json(wsus_api::Error { error: self.message })).into_response()
    }
}

/// Store and administration errors answer with their kind.
macro_rules! answered_by_kind {
    ($($error:ty),*) => {$(
        impl From<$error> for ApiError {
            fn from(e: $error) -> Self {
                ApiError::of(e)
            }
        }
    )*};
}
answered_by_kind!(
    StoreError,
    crate::admin::AdminError,
    wsus_store::approvals::ApprovalError,
    wsus_store::approvals::GroupError,
    wsus_store::computers::MembershipError
);

pub type ApiResult<T> = Result<T, ApiError>;

/// A query string, with a JSON 400 when it does not parse.
pub struct Q<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Q(q.0))
            .map_err(|e| ApiError::bad_request(format!("query: {}", e.body_text())))
    }
}

/// Path parameters, with a JSON 400 when they do not parse.
pub struct P<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| P(p.0))
            .map_err(|e| ApiError::bad_request(format!("path: {}", e.body_text())))
    }
}

/// A JSON body, with a JSON 400 when it does not parse.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(req, state)
            .await
            .map(|j| Body(j.0))
            .map_err(|e| ApiError::bad_request(format!("body: {}", e.body_text())))
    }
}

/// The page size and position a list request asks for.
pub trait Paging {
    /// The page size: 1..1000, 100 when not given.
    fn limit(&self) -> ApiResult<i64>;
    /// The key the cursor carries.
    fn after<K: DeserializeOwned>(&self) -> ApiResult<Option<K>>;
}

impl Paging for PageQuery {
    fn limit(&self) -> ApiResult<i64> {
        match self.limit {
            None => Ok(100),
            Some(n @ 1..=1000) => Ok(n),
            Some(n) => Err(ApiError::bad_request(format!("limit {n} is not within 1..1000"))),
        }
    }

    fn after<K: DeserializeOwned>(&self) -> ApiResult<Option<K>> {
        let Some(cursor) = &self.cursor else { return Ok(None) };
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("cursor: not one this API returned"))
    }
}

/// One page of `items`, with the cursor of the page after `next` (None on the last).
pub fn page<T, K: Serialize>(items: Vec<T>, next: Option<K>) -> Page<T> {
    let next_cursor = next
        .map(|k| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&k).unwrap_or_default()));
    Page { items, next_cursor }
}

/// The router and the (method, path) pairs it serves, so the OpenAPI document can be
/// checked against what is really routed.
pub struct Routes {
    router: Router<Arc<Api>>,
    pub served: Vec<(&'static str, &'static str)>,
}

impl Routes {
    fn new() -> Self {
        Self { router: Router::new(), served: Vec::new() }
    }

    fn add<H, T>(mut self, method: &'static str, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, Arc<Api>>,
        T: 'static,
    {
        let filter = match method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "PATCH" => MethodFilter::PATCH,
            "DELETE" => MethodFilter::DELETE,
            other => panic!("unsupported method {other}"),
        };
        self.router = self.router.route(path, on(filter, handler));
        self.served.push((method, path));
        self
    }
}

/// Every operation under `/api/v1/`.
pub fn routes() -> Routes {
    let r = Routes::new();
    let r = computers::routes(r);
    let r = groups::routes(r);
    let r = updates::routes(r);
    let r = rules::routes(r);
    let r = settings::routes(r);
    let r = sync::routes(r);
    let r = cleanup::routes(r);
    let r = publishing::routes(r);
    let r = notifications::routes(r);
    reports::routes(r)
}

pub fn api_router(api: Arc<Api>) -> Router {
    let v1 = routes()
        .router
        .fallback(|| async { ApiError::not_found("no such endpoint (see /api/openapi.json)") })
        .route_layer(axum::middleware::from_fn_with_state(api.clone(), authenticate))
        .with_state(api);
    Router::new()
        .route("/api/openapi.json", get(|| async { Json(openapi::document()) }))
        .route("/api/v1", get(|| async { Json(index()) }))
        .route("/api/v1/", get(|| async { Json(index()) }))
        // Someone who opens the server's address in a browser wants the console.
        .route("/", get(|| async { axum::response::Redirect::to("/console/") }))
        .merge(v1)
}

/// What `/api/v1/` holds, for someone who opens it: the collections, where the full
/// description is, and how to authenticate (the index itself needs no token).
fn index() -> serde_json::Value {
    let mut collections: Vec<String> = routes()
        .served
        .iter()
        .filter_map(|(_, path)| path.strip_prefix("/api/v1/")?.split('/').next().map(|c| format!("/api/v1/{c}")))
        .collect();
    collections.sort();
    collections.dedup();
    serde_json::json!({
        "api": "WSUS management API, version 1",
        "openapi": "/api/openapi.json",
        "console": "/console/",
        "authentication": "Authorization: Bearer <a token of WSUS_API_TOKENS>",
        "collections": collections,
    })
}

/// Any valid token may read; changes need the admin role.
async fn authenticate(State(api): State<Arc<Api>>, mut request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        // The scheme's name is case-insensitive (RFC 9110 11.1).
        .and_then(|(scheme, token)| scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()));
    let Some(role) = presented.and_then(|t| api.tokens.role_of(t)) else {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            Json(wsus_api::Error { error: "a valid bearer token is required (WSUS_API_TOKENS)".into() }),
        )
            .into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        return r;
    };
    let reads = matches!(*request.method(), axum::http::Method::GET | axum::http::Method::HEAD);
    if !reads && role != Role::Admin {
        return (
            StatusCode::FORBIDDEN,
            Json(wsus_api::Error { error: "the reader role cannot change anything".into() }),
        )
            .into_response();
    }
    request.extensions_mut().insert(role);
    next.run(request).await
}
