//! Listening: binds, prints the address, serves until SIGINT or SIGTERM, then stops cleanly
//! (a second signal ends the process at once).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM};

use super::{AppState, app};

pub fn serve(state: AppState, bind: SocketAddr) -> Result<()> {
    let state = Arc::new(state);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let stopping = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, stopping.clone())?;
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let signal_handle = signals.handle();
    let (tx, rx) = tokio::sync::oneshot::channel::<i32>();
    let flag = stopping.clone();
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            flag.store(true, Ordering::SeqCst);
            let _ = tx.send(sig);
        }
    });
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen on {bind}"))?;
        eprintln!(
            "rfm-agent service on http://{}  (open it in a browser for the dashboard; Ctrl-C stops)",
            listener.local_addr()?
        );
        axum::serve(listener, app(state.clone()))
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .context("the service stopped with an error")
    })?;
    signal_handle.close();
    // Runs still computing cannot finish without the process; say so in their status now
    // rather than at the next start.
    runtime.shutdown_timeout(Duration::from_secs(1));
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
