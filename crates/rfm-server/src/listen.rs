//! Listening: binds, prints the address, serves HTTP/1.1 until SIGINT or SIGTERM, then stops
//! cleanly (a second signal ends the process at once).
//!
//! Connections are served here rather than by `axum::serve` for the limits it does not
//! offer: a connection limit, a time limit for a request's headers (which also closes
//! connections idle between requests), a time limit for a client that stops reading the
//! answer (stall.rs), and HTTP/1.1 only, so that every request carries the `Host` header the
//! loopback check reads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use signal_hook::consts::{SIGINT, SIGTERM};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::stall::WriteStall;
use super::{AppState, app};
use rfm_run::settings::ServerSettings;

/// Longest wait for requests in flight once the service is asked to stop.
const DRAIN: Duration = Duration::from_secs(30);

/// Serves on the caller's runtime until a signal; runs still computing then are marked
/// failed (they cannot finish without the process, which ends when this returns).
pub async fn serve(state: AppState, bind: SocketAddr) -> Result<()> {
    let state = Arc::new(state);
    super::retention::prune_now(&state);
    let stopping = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, stopping.clone())?;
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let signal_handle = signals.handle();
    let (tx, rx) = oneshot::channel::<i32>();
    let flag = stopping.clone();
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            flag.store(true, Ordering::SeqCst);
            let _ = tx.send(sig);
        }
    });
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    eprintln!(
        "rfm-agent service on http://{}  (open it in a browser for the dashboard; Ctrl-C stops)",
        listener.local_addr()?
    );
    accept(listener, app(state.clone()), &state.settings.server, rx).await;
    signal_handle.close();
    // Runs still computing cannot finish without the process; say so in their status now
    // rather than at the next start. Their tasks end with the runtime.
    state.stop_runs();
    let stopped = state
        .store
        .fail_active("stopped when the service was shut down")
        .context("cannot update the run database")?;
    eprintln!(
        "rfm-agent service stopped{}",
        match stopped {
            0 => String::new(),
            n => format!("; {n} unfinished run(s) marked failed"),
        }
    );
    Ok(())
}

/// Accepts connections, at most `max_connections` at once, until `stop`; then lets requests
/// in flight finish (up to [`DRAIN`]).
async fn accept(
    listener: TcpListener,
    router: Router,
    limits: &ServerSettings,
    mut stop: oneshot::Receiver<i32>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let header_timeout = Duration::from_secs(limits.header_timeout_secs.max(1));
    let stall = Duration::from_secs(limits.body_timeout_secs.max(1));
    let (closing, closed) = watch::channel(false);
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = &mut stop => break,
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("accept error: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = router
            .clone()
            .map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let mut closed = closed.clone();
        connections.spawn(async move {
            let _permit = permit;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let io = WriteStall::new(TokioIo::new(stream), stall);
            let conn = http.serve_connection(io, TowerToHyperService::new(service));
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = closed.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    let _ = closing.send(true);
    let _ = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}
