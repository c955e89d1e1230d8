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
