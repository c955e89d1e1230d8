//! The token: checked on every page and API call when set (bearer header, or the session
//! the sign-in form starts); secrets in URLs, targets that are not paths, bodies over a
//! route's limit and requests from other sites that change something are refused whether
//! or not a token is set.

use std::net::SocketAddr;

use axum::extract::{Form, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::throttle::client_ip;
use super::{ApiError, AppState, Shared};

/// The sign-in cookie: a session id (sessions.rs), never the token.
const COOKIE: &str = "rfm_agent_session";

/// Shortest token accepted for a service reachable beyond this machine.
pub const MIN_TOKEN: usize = 16;

/// The token as given (`--token`, `RFM_AGENT_TOKEN`), refused when empty or blank: an unset
/// shell variable must not turn authentication off.
pub fn checked_token(token: Option<String>) -> anyhow::Result<Option<String>> {
    match token {
        Some(t) if t.trim().is_empty() => anyhow::bail!(
            "the service token is empty (RFM_AGENT_TOKEN or --token set to nothing, perhaps an \
             unset shell variable); set a token of at least {MIN_TOKEN} characters, e.g. \
             `export RFM_AGENT_TOKEN=$(openssl rand -hex 16)`, or leave it out to serve this \
             machine only"
        ),
        other => Ok(other),
    }
}

/// Listening beyond loopback needs a token of at least [`MIN_TOKEN`] characters.
pub fn check_bind(bind: SocketAddr, token: Option<&str>) -> anyhow::Result<()> {
    if bind.ip().is_loopback() {
        return Ok(());
    }
    match token {
        None => anyhow::bail!(
            "--bind {bind} listens beyond this machine: set a token with RFM_AGENT_TOKEN"
        ),
        Some(t) if t.trim().chars().count() < MIN_TOKEN => anyhow::bail!(
            "--bind {bind} listens beyond this machine: the token must have at least \
             {MIN_TOKEN} characters (e.g. `openssl rand -hex 16`)"
        ),
        Some(_) => Ok(()),
    }
}

/// A bearer header is a guess at the token; a session cookie is not (a session id is 256
/// random bits, and a stale one is no attack).
fn guesses(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION)
}

/// Query parameter names (lower case, letters and digits only) that would carry a secret
/// into logs and browser history.
const SECRET_PARAMS: [&str; 8] = [
    "token",
    "accesstoken",
    "key",
    "apikey",
    "geminiapikey",
    "openaiapikey",
    "authorization",
    "password",
];

/// A query parameter's name as it is meant, whatever its spelling: percent-decoded (twice
/// over too), lower case, letters and digits only (`%74oken`, `Token`, `api-key`, `token[]`).
fn plain_name(raw: &str) -> String {
    let mut name = raw.to_string();
    for _ in 0..3 {
        let decoded: String = form_urlencoded::parse(format!("{name}=").as_bytes())
            .next()
            .map(|(k, _)| k.into_owned())
            .unwrap_or_default();
        if decoded == name {
            break;
        }
        name = decoded;
    }
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// The query's secret-looking parameter, if any.
fn secret_in(query: &str) -> Option<String> {
    query
        .split(['&', ';'])
        .map(|pair| plain_name(pair.split('=').next().unwrap_or("")))
        .find(|name| SECRET_PARAMS.contains(&name.as_str()))
}

/// What every request is checked for before anything reads it:
/// - its target is a path (origin-form), not `http://elsewhere/…`;
/// - no key or token in its query string, however spelled;
/// - a declared body larger than the route takes gets 413 at once (before any
///   `100 Continue`).
pub async fn check_request(State(s): State<Shared>, req: Request, next: Next) -> Response {
    if req.uri().scheme().is_some() || req.uri().authority().is_some() {
        return ApiError::BadRequest(
            "the request target must be a path on this service (origin-form), not a full URL"
                .into(),
        )
        .into_response();
    }
    if let Some(name) = req.uri().query().and_then(secret_in) {
        return ApiError::BadRequest(format!(
            "`{name}` is not accepted in a URL, where it would be logged: send the service \
             token as `Authorization: Bearer TOKEN`; API keys belong in the server's \
             environment or config"
        ))
        .into_response();
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = declared
        && len > s.body_limit(req.method(), req.uri().path()) as u64
    {
        return ApiError::TooLarge(s.settings.server.max_upload_mb).into_response();
    }
    next.run(req).await
}

/// The host part of a `Host` header or an origin's authority (`[::1]:8080` → `[::1]`).
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest
            .split(']')
            .next()
            .map_or(authority, |h| &authority[..h.len() + 2]);
    }
    authority.split(':').next().unwrap_or(authority)
}

fn is_loopback_name(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `scheme://authority` of a URL, lower case (`https://rfm.example.com/x` →
/// `https://rfm.example.com`).
fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{authority}").to_ascii_lowercase()
}

/// Web pages of other sites must not drive the service through a user's browser:
/// - a request that changes something (anything but GET, HEAD, OPTIONS) must come from the
///   service's own pages: its `Origin` is the service's host or `[server] public_url`; a
///   browser that sends no Origin must not say it is cross-site (`Sec-Fetch-Site`). This
///   holds with a token too: SameSite does not cover a sibling subdomain.
/// - without a token (loopback only), requests must name a loopback host, which defeats DNS
///   rebinding and refuses a proxy that would expose the service without a token.
pub async fn same_origin_only(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if s.token.is_none() && !host.is_empty() && !is_loopback_name(host_of(host)) {
        return ApiError::Forbidden(format!(
            "this service answers only on this machine (localhost), not as `{}`; to serve \
             other names or addresses, start it with a token",
            rfm_core::bounded::value(host_of(host), rfm_core::bounded::MAX_VALUE)
        ))
        .into_response();
    }
    let changes = !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
    if !changes {
        return next.run(req).await;
    }
    let public = &s.settings.server.public_url;
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let authority = origin.split("://").nth(1).unwrap_or("");
        let own = !authority.is_empty() && authority.eq_ignore_ascii_case(host);
        let public = !public.is_empty() && origin_of(origin) == origin_of(public);
        if !own && !public {
            return ApiError::Forbidden(format!(
                "a request from the page `{}` cannot change anything here; use the \
                 service's own dashboard or call the API directly",
                rfm_core::bounded::value(origin, rfm_core::bounded::MAX_VALUE)
            ))
            .into_response();
        }
    } else if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return ApiError::Forbidden(format!(
            "a request from another site ({}) cannot change anything here; use the service's \
             own dashboard or call the API directly",
            rfm_core::bounded::value(site, 32)
        ))
        .into_response();
    }
    next.run(req).await
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The session id the request's cookie carries, if any.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// Whether the request carries the token (bearer header) or a live session.
fn authorised(s: &AppState, token: &str, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer.is_some_and(|b| same(b.as_bytes(), token.as_bytes()))
        || session_cookie(headers).is_some_and(|id| s.sessions.valid(id))
}

/// Lets a request through when no token is set or it carries the token or a live session:
/// whatever others guessed before it. A wrong bearer token counts against its client, which
/// gets 429 past its attempts; a request without credentials gets the sign-in form (pages)
/// or a JSON 401 (the API).
pub async fn require_token(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let Some(token) = &s.token else {
        return next.run(req).await;
    };
    if authorised(&s, token, req.headers()) {
        return next.run(req).await;
    }
    if guesses(req.headers()) {
        let ip = client_ip(&req, &s.proxies);
        if let Some(wait) = s.attempts.blocked(ip) {
            return ApiError::TooManyAttempts(wait).into_response();
        }
        s.attempts.failed(ip);
    }
    if req.uri().path() == "/" {
        return sign_in_page(StatusCode::UNAUTHORIZED, "");
    }
    ApiError::Unauthorized.into_response()
}

/// The sign-in form; `message` is one of this file's fixed texts, never request data.
fn sign_in_page(status: StatusCode, message: &'static str) -> Response {
    let note = if message.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\" role=\"alert\">{message}</p>")
    };
    let page = include_str!("assets/sign-in.html").replace("<!--message-->", &note);
    (status, Html(page)).into_response()
}

/// Largest sign-in form read.
pub const SIGN_IN_BODY: usize = 4096;

#[derive(serde::Deserialize)]
pub struct SignIn {
    token: String,
}

/// The session cookie: HttpOnly, SameSite=Strict, `Secure` when the service is reached by
/// HTTPS (`[server] public_url`) or told so.
fn cookie(s: &AppState, value: &str, max_age: u64) -> String {
    let server = &s.settings.server;
    let secure = server.secure_cookies || server.public_url.starts_with("https://");
    format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// `POST /sign-in`: the right token starts a session whose id the cookie holds. Wrong tokens
/// count against the client (429 past its attempts); the right one is never refused.
pub async fn sign_in(State(s): State<Shared>, req: Request) -> Response {
    let ip = client_ip(&req, &s.proxies);
    let Form(form) = match Form::<SignIn>::from_request(req, &()).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let Some(token) = &s.token else {
        return Redirect::to("/").into_response();
    };
    if same(form.token.trim().as_bytes(), token.as_bytes()) {
        let id = s.sessions.start();
        let c = cookie(&s, &id, s.sessions.lifetime().as_secs());
        return ([(header::SET_COOKIE, c)], Redirect::to("/")).into_response();
    }
    if let Some(wait) = s.attempts.blocked(ip) {
        return ApiError::TooManyAttempts(wait).into_response();
    }
    s.attempts.failed(ip);
    sign_in_page(
        StatusCode::UNAUTHORIZED,
        "That token is not right. Ask whoever started the service for it.",
    )
}

/// `POST /sign-out`: ends the session (its cookie is then worthless) and forgets the cookie.
pub async fn sign_out(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(id) = session_cookie(&headers) {
        s.sessions.end(id);
    }
    ([(header::SET_COOKIE, cookie(&s, "", 0))], Redirect::to("/")).into_response()
}
