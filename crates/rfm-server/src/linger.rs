//! Lingering close: a request body left unread (a 413, a 401 on an upload) is drained in the
//! background, so the client reads our answer instead of a connection reset.
//!
//! When a server stops reading and closes while the client is still sending, the kernel answers
//! the unread bytes with a TCP reset, which can discard the response before the client reads it.
//! Like nginx's `lingering_close`, the rest of the body is read and thrown away, for a bounded
//! time, after the response is sent.
//!
//! The wrapper also bounds how long a body may stall: no bytes for `[server]
//! body_timeout_secs` ends it with an error, so a client that stops sending half-way
//! cannot hold a connection (and a handler) for ever.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use hyper::body::{Body as HttpBody, Bytes, Frame, SizeHint};

/// How long an abandoned body is read and discarded at most.
const LINGER: Duration = Duration::from_secs(30);

/// Wraps every request body so that dropping it unread starts the drain.
pub async fn lingering_close(State(s): State<super::Shared>, req: Request, next: Next) -> Response {
    let stall = Duration::from_secs(s.settings.server.body_timeout_secs.max(1));
    let req = req.map(|body| {
        Body::new(Lingering {
            inner: Some(body),
            ended: false,
            stall,
            timer: None,
        })
    });
    next.run(req).await
}

struct Lingering {
    inner: Option<Body>,
    ended: bool,
    /// Longest wait for the next bytes.
    stall: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl HttpBody for Lingering {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let stall = self.stall;
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if polled.is_ready() {
            self.timer = None;
        } else {
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
            if timer.as_mut().poll(cx).is_ready() {
                self.ended = true;
                self.inner = None;
                return Poll::Ready(Some(Err(axum::Error::new(format!(
                    "no data arrived for {} s (setting [server] body_timeout_secs)",
                    stall.as_secs()
                )))));
            }
        }
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(body) = self.inner.take() else {
            return;
        };
        if self.ended || body.is_end_stream() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut rest = body.into_data_stream();
                let drained = tokio::time::timeout(LINGER, async {
                    let mut bytes = 0usize;
                    while let Some(Ok(chunk)) = rest.next().await {
                        bytes += chunk.len();
                    }
                    bytes
                })
                .await;
                tracing::debug!("unread request body drained: {drained:?} bytes");
            });
        }
    }
}
