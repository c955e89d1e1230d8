//! The token: checked on every page and API call when set (bearer header, or the cookie the
//! sign-in form sets); secrets in URLs are refused whether or not a token is set.

use axum::extract::{Form, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::{ApiError, Shared};

const COOKIE: &str = "rfm_agent_token";

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
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !host.is_empty() && !is_loopback_name(host_of(host)) {
        return ApiError::Forbidden(format!(
            "this service answers only on this machine (localhost), not as `{}`; to serve \
             other names or addresses, start it with a token",
            host_of(host)
        ))
        .into_response();
    }
    let changes = !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
    if changes && let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let authority = origin.split("://").nth(1).unwrap_or("");
        if authority.is_empty() || !authority.eq_ignore_ascii_case(host) {
            return ApiError::Forbidden(format!(
                "a request from the page `{origin}` cannot change anything here; use the \
                 service's own dashboard or call the API directly"
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
    if authorised(token, req.headers()) {
        return next.run(req).await;
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

#[derive(serde::Deserialize)]
pub struct SignIn {
    token: String,
}

/// `POST /sign-in`: the form's token, checked, becomes an HttpOnly cookie.
pub async fn sign_in(State(s): State<Shared>, Form(form): Form<SignIn>) -> Response {
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
