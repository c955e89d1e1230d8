//! The token: checked on every page and API call when set (bearer header, or the cookie the
//! sign-in form sets); secrets in URLs are refused whether or not a token is set.

use std::net::SocketAddr;

use axum::extract::{Form, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::throttle::{ClientIp, client_ip};
use super::{ApiError, Shared};

const COOKIE: &str = "rfm_agent_token";

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

fn presents_credentials(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION)
        || headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains(COOKIE))
}

/// Query parameters that would carry a secret into logs and browser history.
const SECRET_PARAMS: [&str; 8] = [
    "token",
    "access_token",
    "key",
    "api_key",
    "apikey",
    "gemini_api_key",
    "openai_api_key",
    "authorization",
];

/// Refuses any URL with a key or token in its query string.
pub async fn refuse_secrets_in_url(req: Request, next: Next) -> Response {
    if let Some(q) = req.uri().query() {
        for pair in q.split('&') {
            let name = pair.split('=').next().unwrap_or("").to_ascii_lowercase();
            if SECRET_PARAMS.contains(&name.as_str()) {
                return ApiError::BadRequest(format!(
                    "`{name}` is not accepted in a URL, where it would be logged: send the \
                     service token as `Authorization: Bearer TOKEN`; API keys belong in the \
                     server's environment or config"
                ))
                .into_response();
            }
        }
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

/// Without a token (loopback only), web pages of other sites must not drive the service
/// through the user's browser:
/// - requests must name a loopback host, which defeats DNS rebinding and refuses a proxy
///   that would expose the service without a token;
/// - a browser request that changes something must come from the service's own page (its
///   `Origin` matches `Host`), which defeats cross-site form posts.
///
/// With a token neither is needed: the sign-in cookie is SameSite=Strict and a bearer header
/// cannot be sent by another site's page.
pub async fn same_origin_only(State(s): State<Shared>, req: Request, next: Next) -> Response {
    if s.token.is_some() {
        return next.run(req).await;
    }
    let headers = req.headers();
    // HTTP/2 names the host in the URI (`:authority`), not in a Host header.
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    if !host.is_empty() && !is_loopback_name(host_of(host)) {
        return ApiError::Forbidden(format!(
            "this service answers only on this machine (localhost), not as `{}`; to serve \
             other names or addresses, start it with a token",
            crate::bounded::value(host_of(host), crate::bounded::MAX_VALUE)
        ))
        .into_response();
    }
    let changes = !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
    if changes && let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let authority = origin.split("://").nth(1).unwrap_or("");
        if authority.is_empty() || !authority.eq_ignore_ascii_case(host) {
            return ApiError::Forbidden(format!(
                "a request from the page `{}` cannot change anything here; use the \
                 service's own dashboard or call the API directly",
                crate::bounded::value(origin, crate::bounded::MAX_VALUE)
            ))
            .into_response();
        }
    }
    next.run(req).await
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the request carries the token.
pub fn authorised(token: &str, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|b| same(b.as_bytes(), token.as_bytes())) {
        return true;
    }
    let want = hex(token.as_bytes());
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .any(|v| same(v.as_bytes(), want.as_bytes()))
}

/// Lets a request through when no token is set or it carries the token. Otherwise pages get
/// the sign-in form and API calls a JSON 401.
pub async fn require_token(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let Some(token) = &s.token else {
        return next.run(req).await;
    };
    let ip = client_ip(&req);
    if let Some(wait) = s.attempts.blocked(ip) {
        return ApiError::TooManyAttempts(wait).into_response();
    }
    if authorised(token, req.headers()) {
        return next.run(req).await;
    }
    if presents_credentials(req.headers()) {
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

/// `POST /sign-in`: the form's token, checked, becomes an HttpOnly cookie. The form is
/// small (its route has a body limit of [`SIGN_IN_BODY`]) and failures are rate-limited.
pub async fn sign_in(
    State(s): State<Shared>,
    ClientIp(ip): ClientIp,
    Form(form): Form<SignIn>,
) -> Response {
    if let Some(wait) = s.attempts.blocked(ip) {
        return ApiError::TooManyAttempts(wait).into_response();
    }
    if s.token
        .as_ref()
        .is_some_and(|t| !same(form.token.trim().as_bytes(), t.as_bytes()))
    {
        s.attempts.failed(ip);
    }
    match &s.token {
        Some(token) if same(form.token.trim().as_bytes(), token.as_bytes()) => {
            let cookie = format!(
                "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
                hex(token.as_bytes())
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Some(_) => sign_in_page(
            StatusCode::UNAUTHORIZED,
            "That token is not right. Ask whoever started the service for it.",
        ),
        None => Redirect::to("/").into_response(),
    }
}

/// `POST /sign-out`: forgets the cookie.
pub async fn sign_out() -> Response {
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}
