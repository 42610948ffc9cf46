//! Signing in to the web console with a management API token (`WSUS_API_TOKENS`), the
//! session cookie that follows, and the checks every console form passes.
//!
//! The cookie (`wsus_console`) is sealed with the cookie keys and holds a fingerprint of
//! the token, never the token. The role is looked up from the configured tokens on every
//! request, so removing a token ends its sessions at once. Forms carry the session's CSRF
//! token in a hidden `_csrf` field and must not come from another site.
//!
//! State: the extractors work in any router whose state `S` has `Arc<Sessions>:
//! FromRef<S>`; the handlers take `State<Arc<Sessions>>` the same way.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Form, FromRef, FromRequest, FromRequestParts, RawForm, Request, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use maud::{Markup, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use wsus_config::{ApiToken, CookieKey, Role};
use wsus_cookie::{CONSOLE_SESSION_SECONDS, ConsoleSession, Keys};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "wsus_console";
/// Where the sign-in form lives; requests without a session are sent here.
pub const LOGIN_PATH: &str = "/console/login";
/// Where a fresh session lands.
pub const HOME_PATH: &str = "/console/";
/// The hidden form field that carries the CSRF token (as `CsrfField` reads it).
pub const CSRF_FIELD: &str = "_csrf";

/// A wrong token is answered this much later, so guessing is slow.
const REFUSAL_DELAY: Duration = Duration::from_millis(500);
/// A sealed session is ~80 bytes; anything much longer is not ours and is not decoded.
const MAX_COOKIE_CHARS: usize = 512;

/// The cookie keys of the console: `WSUS_COOKIE_KEYS` when set, else the key generated
/// in the database that the gateways fall back to, so every replica opens every session.
pub async fn session_keys(config_keys: &[CookieKey], pool: &wsus_store::PgPool) -> anyhow::Result<Keys> {
    let keys: Vec<(String, [u8; 32])> = if config_keys.is_empty() {
        vec![("generated".to_owned(), wsus_store::settings::generated_cookie_key(pool).await?)]
    } else {
        config_keys.iter().map(|k| (k.id.clone(), k.key)).collect()
    };
    Keys::new(&keys).ok_or_else(|| anyhow::anyhow!("WSUS_COOKIE_KEYS: no usable key"))
}

/// Opens and issues console sessions against the configured API tokens.
pub struct Sessions {
    /// Loaded once the database answers when they come from it: reporting serves before
    /// its database is reachable, and the console is "starting" until then.
    keys: arc_swap::ArcSwapOption<Keys>,
    tokens: crate::api::TokenTable,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sessions({:?}, {} tokens)", self.keys.load(), self.tokens.len())
    }
}

impl Sessions {
    pub fn new(keys: Option<Keys>, tokens: &[ApiToken]) -> Self {
        Self { keys: arc_swap::ArcSwapOption::from_pointee(keys), tokens: crate::api::TokenTable::new(tokens) }
    }

    /// The keys, once known (see `session_keys`).
    pub fn set_keys(&self, keys: Keys) {
        self.keys.store(Some(Arc::new(keys)));
    }

    /// Whether sessions can be issued and opened yet.
    pub fn ready(&self) -> bool {
        self.keys.load().is_some()
    }

    /// The role of a presented token (in constant time).
    pub fn role_of(&self, token: &str) -> Option<Role> {
        self.tokens.role_of(token)
    }

    /// The role of the token a session was opened with, if it is still configured.
    fn role_of_fingerprint(&self, fingerprint: &[u8; 16]) -> Option<Role> {
        self.tokens.role_matching(fingerprint)
    }

    /// A sealed session for a valid token, as the cookie's value; `None` for any other.
    pub fn issue(&self, token: &str, now: i64) -> Option<(Role, String)> {
        let keys = self.keys.load_full()?;
        let role = self.role_of(token)?;
        let session = ConsoleSession::new(fingerprint(token), now);
        Some((role, URL_SAFE_NO_PAD.encode(session.seal(&keys))))
    }

    /// The session a cookie value stands for, if it opens, is current, and its token is
    /// still configured.
    pub fn open(&self, cookie_value: &str, now: i64) -> Option<Session> {
        if cookie_value.len() > MAX_COOKIE_CHARS {
            return None;
        }
        let keys = self.keys.load_full()?;
        let sealed = URL_SAFE_NO_PAD.decode(cookie_value).ok()?;
        let session = ConsoleSession::open(&keys, &sealed).ok()?;
        if !session.is_valid_at(now) {
            return None;
        }
        let role = self.role_of_fingerprint(&session.fingerprint)?;
        Some(Session { role, csrf: URL_SAFE_NO_PAD.encode(session.csrf) })
    }

    /// The session of a request's cookies: the first `wsus_console` cookie that opens
    /// (a stale one from another path may come first).
    fn of_headers(&self, headers: &HeaderMap, now: i64) -> Option<Session> {
        session_cookies(headers).find_map(|value| self.open(value, now))
    }
}

/// The first 16 bytes of the token's SHA-256: enough to tell tokens apart. The cookie is
/// sealed, so not even this much of the hash is visible without the keys.
fn fingerprint(token: &str) -> [u8; 16] {
    let hash = Sha256::digest(token.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&hash[..16]);
    out
}

/// Equal-length comparison whose time does not depend on where the bytes differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Every `wsus_console` value in the request's `Cookie` headers (HTTP/2 may send several).
fn session_cookies(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim_matches('"'))
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Whether the request came in on the HTTPS listener.
fn is_https(extensions: &Extensions) -> bool {
    extensions.get::<wsus_service::tls::Scheme>().is_some_and(|s| s.0 == "https")
}

/// The `Set-Cookie` value that starts a session.
pub fn session_cookie(value: &str, secure: bool) -> String {
    cookie_with(value, CONSOLE_SESSION_SECONDS, secure)
}

/// The `Set-Cookie` value that ends a session.
pub fn cleared_cookie(secure: bool) -> String {
    cookie_with("", 0, secure)
}

fn cookie_with(value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// Whether a request plainly comes from another site: an `Origin` that is not this host,
/// or the browser saying so in `Sec-Fetch-Site`. Requests with neither (older browsers,
/// scripts) are left to the CSRF token and SameSite.
pub fn is_cross_site(headers: &HeaderMap, uri: &Uri) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site.is_some_and(|v| v.eq_ignore_ascii_case("cross-site")) {
        return true;
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return false };
    let own = headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| uri.authority().map(|a| a.as_str()));
    match (origin.to_str().ok(), own) {
        (Some(origin), Some(own)) => !same_host(origin, own),
        // `Origin: null`, an unreadable origin, or no host to compare with.
        _ => true,
    }
}

/// Whether an `Origin` (`scheme://host[:port]`) names the host a request was sent to
/// (`Host`), default ports counted as written.
fn same_host(origin: &str, host: &str) -> bool {
    let Ok(origin) = origin.parse::<Uri>() else { return false };
    let (Some(scheme), Some(authority)) = (origin.scheme_str(), origin.authority()) else { return false };
    let Ok(host) = host.parse::<axum::http::uri::Authority>() else { return false };
    let default = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return false,
    };
    authority.host().eq_ignore_ascii_case(host.host())
        && authority.port_u16().unwrap_or(default) == host.port_u16().unwrap_or(default)
}

/// A signed-in console user. Extracting it without a valid session sends a page view
/// to the sign-in form and refuses anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub role: Role,
    /// Goes in the `_csrf` hidden field of every form the page shows.
    pub csrf: String,
}

impl Session {
    /// Whether the session may change things (pages show their forms only then).
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A signed-in console user with the admin role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin(pub Session);

/// Why a console request is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No valid session on a page view: sign in first.
    SignIn,
    /// No valid session on a change.
    NoSession,
    /// A reader asked for a change.
    Reader,
    /// The form's CSRF token is missing or not this session's.
    BadCsrf,
    /// The request came from another site.
    CrossSite,
    /// The form body could not be read.
    BadForm,
}

impl Refusal {
    fn message(self) -> &'static str {
        match self {
            Refusal::SignIn | Refusal::NoSession => "sign in to the console first",
            Refusal::Reader => "the reader role cannot change anything",
            Refusal::BadCsrf => {
                "the form is out of date or was not sent by this console: reload the page and try again"
            }
            Refusal::CrossSite => "requests from other sites are refused",
            Refusal::BadForm => "the form could not be read",
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = match self {
            Refusal::SignIn => return see_other(LOGIN_PATH, None),
            Refusal::BadForm => StatusCode::BAD_REQUEST,
            _ => StatusCode::FORBIDDEN,
        };
        (status, no_store(), message_page(status, self.message())).into_response()
    }
}

fn reads(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

impl<S> FromRequestParts<S> for Session
where
    Arc<Sessions>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Arc::<Sessions>::from_ref(state).of_headers(&parts.headers, now()).ok_or(if reads(&parts.method) {
            Refusal::SignIn
        } else {
            Refusal::NoSession
        })
    }
}

impl<S> FromRequestParts<S> for Admin
where
    Arc<Sessions>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        if !session.is_admin() {
            return Err(Refusal::Reader);
        }
        Ok(Admin(session))
    }
}

/// An `application/x-www-form-urlencoded` form posted by this console: from this site,
/// with a session, and with that session's CSRF token in `_csrf`. Fields of `T` are
/// read by serde; unknown fields (`_csrf` among them) are ignored unless `T` denies them.
#[derive(Debug, Clone)]
pub struct CsrfForm<T>(pub T);

#[derive(Deserialize)]
struct CsrfField {
    #[serde(rename = "_csrf")]
    csrf: String,
}

impl<T, S> FromRequest<S> for CsrfForm<T>
where
    T: DeserializeOwned,
    Arc<Sessions>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Refusal;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        if is_cross_site(&parts.headers, &parts.uri) {
            return Err(Refusal::CrossSite);
        }
        let session = Session::from_request_parts(&mut parts, state).await?;
        let RawForm(bytes) =
            RawForm::from_request(Request::from_parts(parts, body), &()).await.map_err(|_| Refusal::BadForm)?;
        let Form(CsrfField { csrf }) = parse_form(bytes.clone()).await.map_err(|_| Refusal::BadCsrf)?;
        if !constant_time_eq(csrf.as_bytes(), session.csrf.as_bytes()) {
            return Err(Refusal::BadCsrf);
        }
        let Form(value) = parse_form(bytes).await.map_err(|_| Refusal::BadForm)?;
        Ok(CsrfForm(value))
    }
}

/// Reads a form body already taken from its request (read once, parsed twice).
async fn parse_form<T: DeserializeOwned>(bytes: axum::body::Bytes) -> Result<Form<T>, ()> {
    let request = Request::builder()
        .method(Method::POST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(bytes))
        .map_err(|_| ())?;
    Form::from_request(request, &()).await.map_err(|_| ())
}

/// GET /console/login: the sign-in form (or home, when already signed in).
pub async fn login_page(State(sessions): State<Arc<Sessions>>, headers: HeaderMap) -> Response {
    if sessions.of_headers(&headers, now()).is_some() {
        return see_other(HOME_PATH, None);
    }
    (no_store(), login_form(false)).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

/// POST /console/login (`token`): a session cookie and home, or the form again with 401.
pub async fn login(State(sessions): State<Arc<Sessions>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if is_cross_site(&parts.headers, &parts.uri) {
        return Refusal::CrossSite.into_response();
    }
    if !sessions.ready() {
        let wait = (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], no_store(), starting_page());
        return wait.into_response();
    }
    let secure = is_https(&parts.extensions);
    let form = Form::<LoginForm>::from_request(Request::from_parts(parts, body), &()).await;
    let issued = form.ok().and_then(|Form(f)| sessions.issue(f.token.trim(), now()));
    match issued {
        Some((role, value)) => {
            tracing::info!(role = ?role, "console session started");
            see_other(HOME_PATH, Some(session_cookie(&value, secure)))
        }
        None => {
            // The token is never logged, not even in part.
            tracing::info!("console sign-in refused");
            tokio::time::sleep(REFUSAL_DELAY).await;
            (StatusCode::UNAUTHORIZED, no_store(), login_form(true)).into_response()
        }
    }
}

#[derive(Deserialize)]
struct NoFields {}

/// POST /console/logout (with `_csrf`): clears the cookie and goes to the sign-in form.
/// A request whose session is already gone is simply sent there too.
pub async fn logout(State(sessions): State<Arc<Sessions>>, request: Request) -> Response {
    let secure = is_https(request.extensions());
    match CsrfForm::<NoFields>::from_request(request, &sessions).await {
        Ok(_) | Err(Refusal::NoSession) => see_other(LOGIN_PATH, Some(cleared_cookie(secure))),
        Err(refusal) => refusal.into_response(),
    }
}

/// A 303 to `location`, setting `cookie` when given.
fn see_other(location: &'static str, cookie: Option<String>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, no_store()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_static(location));
    if let Some(value) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::SET_COOKIE, value);
    }
    response
}

/// Pages that depend on who asks are never cached.
fn no_store() -> [(header::HeaderName, &'static str); 1] {
    [(header::CACHE_CONTROL, "no-store")]
}

fn page(title: &str, body: Markup) -> Markup {
    super::layout::plain_page(title, body)
}

fn login_form(refused: bool) -> Markup {
    super::layout::login_page(refused.then_some("That is not a valid token."))
}

fn starting_page() -> Markup {
    page("Starting", html! { h1 { "Starting" } p { "The console is starting; try again in a few seconds." } })
}

fn message_page(status: StatusCode, message: &str) -> Markup {
    page(
        status.canonical_reason().unwrap_or("Refused"),
        html! {
            h1 { (status.canonical_reason().unwrap_or("Refused")) }
            p { (message) }
            p { a href=(HOME_PATH) { "Back to the console" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    const ADMIN: &str = "admin-token-0001";
    const READER: &str = "reader-token-0001";

    fn keys(byte: u8) -> Keys {
        Keys::new(&[("k1".to_owned(), [byte; 32])]).unwrap()
    }

    fn token(role: Role, token: &str) -> ApiToken {
        ApiToken { role, token: token.to_owned() }
    }

    fn sessions() -> Arc<Sessions> {
        Arc::new(Sessions::new(Some(keys(9)), &[token(Role::Admin, ADMIN), token(Role::Reader, READER)]))
    }

    fn cookie_of(sessions: &Sessions, token: &str) -> String {
        sessions.issue(token, now()).expect("a configured token").1
    }

    fn request(method: Method, cookie: Option<&str>, headers: &[(&str, &str)], body: &str) -> Request {
        let mut builder = Request::builder().method(method).uri("/console/x").header(header::HOST, "wsus.lab:8080");
        if let Some(value) = cookie {
            builder = builder.header(header::COOKIE, format!("theme=dark; {COOKIE_NAME}={value}"));
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::from(body.to_owned())).unwrap()
    }

    fn form(cookie: Option<&str>, headers: &[(&str, &str)], body: &str) -> Request {
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        request(Method::POST, cookie, &all, body)
    }

    async fn session_of(state: &Arc<Sessions>, request: Request) -> Result<Session, Refusal> {
        Session::from_request_parts(&mut request.into_parts().0, state).await
    }

    async fn body_text(response: Response) -> String {
        String::from_utf8(to_bytes(response.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap()
    }

    fn header_of(response: &Response, name: header::HeaderName) -> Option<&str> {
        response.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn cookie_attributes() {
        assert_eq!(
            session_cookie("abc", false),
            "wsus_console=abc; Path=/console; HttpOnly; SameSite=Strict; Max-Age=28800"
        );
        assert_eq!(
            session_cookie("abc", true),
            "wsus_console=abc; Path=/console; HttpOnly; SameSite=Strict; Max-Age=28800; Secure"
        );
        assert_eq!(cleared_cookie(false), "wsus_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0");
        assert!(cleared_cookie(true).ends_with("; Max-Age=0; Secure"));
    }

    #[test]
    fn tokens_give_their_roles() {
        let s = sessions();
        assert_eq!(s.role_of(ADMIN), Some(Role::Admin));
        assert_eq!(s.role_of(READER), Some(Role::Reader));
        for wrong in ["", "admin-token-000", "admin-token-00011", "ADMIN-TOKEN-0001"] {
            assert_eq!(s.role_of(wrong), None, "{wrong:?}");
        }
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"sane"));
        assert!(!constant_time_eq(b"same", b"sam"), "lengths differ");
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn sessions_open_while_current_and_their_token_is_configured() {
        let s = sessions();
        let (role, value) = s.issue(READER, 1_000_000).unwrap();
        assert_eq!(role, Role::Reader);
        assert!(!value.contains(READER), "the cookie does not carry the token");
        let session = s.open(&value, 1_000_000).unwrap();
        assert_eq!(session.role, Role::Reader);
        assert_eq!(session.csrf.len(), 22, "16 random bytes, base64url");
        assert_ne!(s.open(&s.issue(READER, 1_000_000).unwrap().1, 1_000_000).unwrap().csrf, session.csrf);
        assert!(s.issue("not-a-token", 0).is_none());

        assert!(s.open(&value, 1_000_000 + 8 * 3600 - 1).is_some());
        assert!(s.open(&value, 1_000_000 + 8 * 3600).is_none(), "expired after 8 hours");
        // Removing the token from WSUS_API_TOKENS ends its sessions; the others go on.
        let fewer = Sessions::new(Some(keys(9)), &[token(Role::Admin, ADMIN)]);
        assert!(fewer.open(&value, 1_000_000).is_none());
        assert_eq!(fewer.open(&s.issue(ADMIN, 1_000_000).unwrap().1, 1_000_000).unwrap().role, Role::Admin);
        // A token moved to another role takes its sessions with it.
        let demoted = Sessions::new(Some(keys(9)), &[token(Role::Reader, ADMIN)]);
        assert_eq!(demoted.open(&s.issue(ADMIN, 1_000_000).unwrap().1, 1_000_000).unwrap().role, Role::Reader);
        // Other keys, damaged or foreign values are not sessions.
        assert!(Sessions::new(Some(keys(8)), &[token(Role::Reader, READER)]).open(&value, 1_000_000).is_none());
        assert!(s.open("", 1_000_000).is_none());
        assert!(s.open("%%%", 1_000_000).is_none());
        assert!(s.open(&"A".repeat(100_000), 1_000_000).is_none());
        let sealed = URL_SAFE_NO_PAD.decode(&value).unwrap();
        let plain = keys(9).open(wsus_cookie::Purpose::ConsoleSession, &sealed).unwrap();
        let as_client = URL_SAFE_NO_PAD.encode(keys(9).seal(wsus_cookie::Purpose::Client, &plain));
        assert!(s.open(&as_client, 1_000_000).is_none(), "a client cookie is never a session");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let s = sessions();
        let good = cookie_of(&s, ADMIN);
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; wsus_console=stale"));
        headers.append(header::COOKIE, HeaderValue::from_str(&format!("b=2;{COOKIE_NAME}={good} ;c=3")).unwrap());
        assert_eq!(session_cookies(&headers).collect::<Vec<_>>(), vec!["stale", good.as_str()]);
        assert_eq!(s.of_headers(&headers, now()).unwrap().role, Role::Admin);
        let mut other = HeaderMap::new();
        other.insert(header::COOKIE, HeaderValue::from_str(&format!("not_{COOKIE_NAME}={good}")).unwrap());
        assert!(s.of_headers(&other, now()).is_none());
    }

    #[test]
    fn cross_site_requests_are_recognised() {
        let uri: Uri = "/console/login".parse().unwrap();
        let check = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, HeaderValue::from_static(value));
            }
            is_cross_site(&headers, &uri)
        };
        assert!(!check(&[("host", "wsus.lab:8080")]), "no Origin: left to the CSRF token");
        assert!(!check(&[("host", "wsus.lab:8080"), ("origin", "http://wsus.lab:8080")]));
        assert!(!check(&[("host", "WSUS.lab:8080"), ("origin", "http://wsus.LAB:8080")]));
        assert!(!check(&[("host", "wsus.lab"), ("origin", "https://wsus.lab:443")]));
        assert!(!check(&[("host", "wsus.lab:443"), ("origin", "https://wsus.lab")]));
        assert!(!check(&[("host", "wsus.lab"), ("sec-fetch-site", "same-origin")]));
        assert!(check(&[("host", "wsus.lab:8080"), ("origin", "http://evil.example")]));
        assert!(check(&[("host", "wsus.lab:8080"), ("origin", "http://wsus.lab:8081")]));
        assert!(check(&[("host", "wsus.lab:8080"), ("origin", "null")]));
        assert!(check(&[("origin", "http://wsus.lab:8080")]), "no host to compare with");
        assert!(check(&[("host", "wsus.lab"), ("sec-fetch-site", "cross-site")]));
        // HTTP/2 carries the host in the URI's authority.
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://wsus.lab:8443"));
        assert!(!is_cross_site(&headers, &"https://wsus.lab:8443/console/".parse().unwrap()));
        assert!(is_cross_site(&headers, &"https://other.lab:8443/console/".parse().unwrap()));
    }

    #[tokio::test]
    async fn pages_without_a_session_go_to_sign_in_and_changes_are_refused() {
        let s = sessions();
        assert_eq!(session_of(&s, request(Method::GET, None, &[], "")).await, Err(Refusal::SignIn));
        assert_eq!(session_of(&s, request(Method::GET, Some("junk"), &[], "")).await, Err(Refusal::SignIn));
        assert_eq!(session_of(&s, request(Method::POST, None, &[], "")).await, Err(Refusal::NoSession));
        let response = Refusal::SignIn.into_response();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(header_of(&response, header::LOCATION), Some("/console/login"));
        assert_eq!(Refusal::NoSession.into_response().status(), StatusCode::FORBIDDEN);

        let reader = cookie_of(&s, READER);
        let session = session_of(&s, request(Method::GET, Some(&reader), &[], "")).await.unwrap();
        assert_eq!(session.role, Role::Reader);
        let mut parts = request(Method::GET, Some(&reader), &[], "").into_parts().0;
        assert_eq!(Admin::from_request_parts(&mut parts, &s).await, Err(Refusal::Reader));
        let response = Refusal::Reader.into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(body_text(response).await.contains("the reader role cannot change anything"));
        let admin_cookie = cookie_of(&s, ADMIN);
        let mut parts = request(Method::POST, Some(&admin_cookie), &[], "").into_parts().0;
        assert_eq!(Admin::from_request_parts(&mut parts, &s).await.unwrap().0.role, Role::Admin);
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Approval {
        group: String,
        deadline_days: u32,
    }

    #[tokio::test]
    async fn forms_need_this_sessions_csrf_token_and_this_site() {
        let s = sessions();
        let cookie = cookie_of(&s, ADMIN);
        let csrf = s.open(&cookie, now()).unwrap().csrf;
        let body = format!("group=Pilot+ring&deadline_days=3&_csrf={csrf}");
        let parse = |request: Request| {
            let s = s.clone();
            async move { CsrfForm::<Approval>::from_request(request, &s).await.map(|CsrfForm(a)| a) }
        };
        let expected = Approval { group: "Pilot ring".into(), deadline_days: 3 };
        assert_eq!(parse(form(Some(&cookie), &[], &body)).await.unwrap(), expected);
        let same_site = [("origin", "http://wsus.lab:8080"), ("sec-fetch-site", "same-origin")];
        assert_eq!(parse(form(Some(&cookie), &same_site, &body)).await.unwrap(), expected);

        let other_session = s.open(&cookie_of(&s, ADMIN), now()).unwrap().csrf;
        for bad in [
            "group=Pilot&deadline_days=3".to_owned(),
            "group=Pilot&deadline_days=3&_csrf=".to_owned(),
            format!("group=Pilot&deadline_days=3&_csrf={other_session}"),
            format!("group=Pilot&deadline_days=3&_csrf={}", &csrf[..21]),
        ] {
            assert_eq!(parse(form(Some(&cookie), &[], &bad)).await.unwrap_err(), Refusal::BadCsrf, "{bad}");
        }
        let evil = [("origin", "http://evil.example")];
        assert_eq!(parse(form(Some(&cookie), &evil, &body)).await.unwrap_err(), Refusal::CrossSite);
        let fetch = [("sec-fetch-site", "cross-site")];
        assert_eq!(parse(form(Some(&cookie), &fetch, &body)).await.unwrap_err(), Refusal::CrossSite);
        assert_eq!(parse(form(None, &[], &body)).await.unwrap_err(), Refusal::NoSession);
        let json = request(Method::POST, Some(&cookie), &[("content-type", "application/json")], &body);
        assert_eq!(parse(json).await.unwrap_err(), Refusal::BadForm);
        let missing = format!("group=Pilot&_csrf={csrf}");
        assert_eq!(parse(form(Some(&cookie), &[], &missing)).await.unwrap_err(), Refusal::BadForm);
        assert_eq!(Refusal::BadCsrf.into_response().status(), StatusCode::FORBIDDEN);
        assert_eq!(Refusal::CrossSite.into_response().status(), StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn signing_in_sets_the_cookie_and_a_wrong_token_is_refused_slowly() {
        let s = sessions();
        let page = login_page(State(s.clone()), HeaderMap::new()).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = body_text(page).await;
        assert!(html.contains(r#"id="login""#) && html.contains(r#"action="/console/login""#), "{html}");
        assert!(html.contains(r#"name="token" type="password""#), "{html}");
        assert!(!html.contains("not a valid token"));

        let mut https = form(None, &[("origin", "http://wsus.lab:8080")], &format!("token={ADMIN}"));
        https.extensions_mut().insert(wsus_service::tls::Scheme("https"));
        let response = login(State(s.clone()), https).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(header_of(&response, header::LOCATION), Some("/console/"));
        let set = header_of(&response, header::SET_COOKIE).unwrap();
        assert!(set.ends_with("; Path=/console; HttpOnly; SameSite=Strict; Max-Age=28800; Secure"), "{set}");
        let value = set.strip_prefix("wsus_console=").unwrap().split(';').next().unwrap();
        assert_eq!(s.open(value, now()).unwrap().role, Role::Admin);
        let response = login(State(s.clone()), form(None, &[], &format!("token={READER}"))).await;
        assert!(!header_of(&response, header::SET_COOKIE).unwrap().contains("Secure"), "plain HTTP");

        // Signed in already: the form sends you home.
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(&format!("{COOKIE_NAME}={value}")).unwrap());
        let page = login_page(State(s.clone()), headers).await;
        assert_eq!(header_of(&page, header::LOCATION), Some("/console/"));

        for body in ["token=wrong-token-1", "token=", "nothing=here"] {
            let started = std::time::Instant::now();
            let response = login(State(s.clone()), form(None, &[], body)).await;
            assert!(started.elapsed() >= Duration::from_millis(450), "{body}: refused without delay");
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{body}");
            assert!(response.headers().get(header::SET_COOKIE).is_none());
            let html = body_text(response).await;
            assert!(html.contains("not a valid token") && html.contains(r#"id="login""#), "{html}");
        }
        let cross = form(None, &[("origin", "http://evil.example")], &format!("token={ADMIN}"));
        let response = login(State(s.clone()), cross).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response.headers().get(header::SET_COOKIE).is_none());
    }

    #[tokio::test]
    async fn signing_out_clears_the_cookie_with_the_csrf_token() {
        let s = sessions();
        let cookie = cookie_of(&s, READER);
        let csrf = s.open(&cookie, now()).unwrap().csrf;
        let response = logout(State(s.clone()), form(Some(&cookie), &[], &format!("_csrf={csrf}"))).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(header_of(&response, header::LOCATION), Some("/console/login"));
        assert_eq!(header_of(&response, header::SET_COOKIE), Some(cleared_cookie(false).as_str()));

        let forged = logout(State(s.clone()), form(Some(&cookie), &[], "_csrf=guess")).await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        assert!(forged.headers().get(header::SET_COOKIE).is_none());
        let gone = logout(State(s.clone()), form(None, &[], "_csrf=whatever")).await;
        assert_eq!(header_of(&gone, header::LOCATION), Some("/console/login"), "no session: nothing to protect");
    }
}
