//! Progress on long work: an indicatif spinner on stderr, hidden when stderr is not a
//! terminal (scripts, CI) or when running quietly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

static HIDDEN: AtomicBool = AtomicBool::new(false);

type Observer = std::sync::Arc<dyn Fn(usize, usize, &str) + Send + Sync>;

thread_local! {
    /// Who else hears of each step on this thread (the service's run status).
    static OBSERVER: std::cell::RefCell<Option<Observer>> = const { std::cell::RefCell::new(None) };
    /// The spinner of the step running on this thread and its message, for [`detail`].
    static CURRENT: std::cell::RefCell<Option<(ProgressBar, String)>> = const { std::cell::RefCell::new(None) };
    /// Set from another thread to stop the work on this one at its next step.
    static STOP: std::cell::RefCell<Option<std::sync::Arc<AtomicBool>>> = const { std::cell::RefCell::new(None) };
}

/// The error a stopped run ends with.
#[derive(Debug, thiserror::Error)]
#[error("the run was stopped")]
pub struct Stopped;

/// Work on this thread stops at its next step once `flag` is set (until the guard drops).
pub fn stop_on(flag: std::sync::Arc<AtomicBool>) -> StopGuard {
    STOP.with(|s| *s.borrow_mut() = Some(flag));
    StopGuard(())
}

/// Ends [`stop_on`] when dropped.
pub struct StopGuard(());

impl Drop for StopGuard {
    fn drop(&mut self) {
        STOP.with(|s| *s.borrow_mut() = None);
    }
}

/// Where the pass reports how far it has got and learns that it should stop. The pass is
/// given one and hands it to its reader, its workers and its accumulator, whichever threads
/// they run on; it never reaches for a thread's globals itself.
pub trait Progress: Send + Sync {
    /// How far the running step has got (e.g. "54,000,000 rows").
    fn detail(&self, _text: &str) {}
    /// `Err(Stopped)` once the work was asked to stop.
    fn checkpoint(&self) -> Result<(), Stopped> {
        Ok(())
    }
}

/// Reports nowhere and never stops (tests, tools).
pub struct Silent;

impl Progress for Silent {}

/// The step running on the calling thread, with its spinner and stop flag (what [`Steps`]
/// and [`Watch`] set up there), as a sink any thread can use.
pub struct ThisStep {
    bar: Option<(ProgressBar, String)>,
    stop: Option<std::sync::Arc<AtomicBool>>,
}

/// The calling thread's step, for the pass it is about to run.
pub fn this_step() -> ThisStep {
    ThisStep {
        bar: CURRENT.with(|c| c.borrow().clone()),
        stop: STOP.with(|s| s.borrow().clone()),
    }
}

impl Progress for ThisStep {
    fn detail(&self, text: &str) {
        if let Some((bar, message)) = &self.bar {
            bar.set_message(format!("{message}: {text}"));
        }
    }

    fn checkpoint(&self) -> Result<(), Stopped> {
        stopped_by(self.stop.as_deref())
    }
}

/// `Err(Stopped)` once `stop` is set; `Ok` without a flag.
fn stopped_by(stop: Option<&AtomicBool>) -> Result<(), Stopped> {
    match stop.is_some_and(|f| f.load(Ordering::Relaxed)) {
        true => Err(Stopped),
        false => Ok(()),
    }
}

/// `Err(Stopped)` once this thread's work was asked to stop.
pub fn checkpoint() -> Result<(), Stopped> {
    STOP.with(|s| stopped_by(s.borrow().as_deref()))
}

/// Calls `f(step, total, what)` for every step started on this thread until the guard drops.
pub fn observe(f: impl Fn(usize, usize, &str) + Send + Sync + 'static) -> ObserverGuard {
    install_observer(std::sync::Arc::new(f))
}

fn install_observer(f: Observer) -> ObserverGuard {
    OBSERVER.with(|o| *o.borrow_mut() = Some(f));
    ObserverGuard(())
}

/// Who hears of a piece of work's steps and what stops it, carried into async code and
/// installed on whichever blocking thread runs each CPU-bound part ([`Watch::blocking`]).
/// The default watches nothing: the command line's steps show on the terminal only.
#[derive(Clone, Default)]
pub struct Watch {
    observer: Option<Observer>,
    stop: Option<std::sync::Arc<AtomicBool>>,
    /// Held while a blocking part runs, so that [`Watch::idle`] can wait for it.
    busy: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Watch {
    /// Watches nothing but `stop` (the command line's Ctrl-C).
    pub fn stoppable(stop: std::sync::Arc<AtomicBool>) -> Watch {
        Watch {
            observer: None,
            stop: Some(stop),
            busy: Default::default(),
        }
    }

    pub fn new(
        observer: impl Fn(usize, usize, &str) + Send + Sync + 'static,
        stop: std::sync::Arc<AtomicBool>,
    ) -> Watch {
        Watch {
            observer: Some(std::sync::Arc::new(observer)),
            stop: Some(stop),
            busy: Default::default(),
        }
    }

    /// Runs `f` on a blocking thread with this watch's observer and stop flag.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let busy = self.busy.clone().lock_owned().await;
        let (observer, stop) = (self.observer.clone(), self.stop.clone());
        tokio::task::spawn_blocking(move || {
            let _busy = busy;
            let _observing = observer.map(install_observer);
            let _stopping = stop.map(stop_on);
            f()
        })
        .await
        .map_err(|e| anyhow::anyhow!("the run stopped unexpectedly: {e}"))
    }

    /// `Err(Stopped)` once the work was asked to stop.
    pub fn checkpoint(&self) -> Result<(), Stopped> {
        stopped_by(self.stop.as_deref())
    }

    /// Tells the observer of a stage (as [`announce`]); a stopped run ends here.
    pub fn announce(&self, what: &str) -> Result<(), Stopped> {
        self.checkpoint()?;
        match &self.observer {
            Some(f) => f(0, 0, what),
            None => return announce(what),
        }
        Ok(())
    }

    /// Waits until no blocking part of the work runs any more.
    pub async fn idle(&self) {
        drop(self.busy.lock().await);
    }
}

/// Tells this thread's observer of a stage outside a numbered sequence (step 0 of 0);
/// a stage is also where a stopped run ends.
pub fn announce(what: &str) -> Result<(), Stopped> {
    checkpoint()?;
    OBSERVER.with(|o| {
        if let Some(f) = o.borrow().as_ref() {
            f(0, 0, what)
        }
    });
    Ok(())
}

/// Ends [`observe`] when dropped.
pub struct ObserverGuard(());

impl Drop for ObserverGuard {
    fn drop(&mut self) {
        OBSERVER.with(|o| *o.borrow_mut() = None);
    }
}

/// Hides every progress display (for `--quiet`).
pub fn hide_all() {
    HIDDEN.store(true, Ordering::Relaxed);
}

/// A numbered sequence of steps shown as one spinner line.
pub struct Steps {
    bar: ProgressBar,
    total: usize,
    done: std::cell::Cell<usize>,
}

impl Steps {
    pub fn new(total: usize) -> Steps {
        let target = if HIDDEN.load(Ordering::Relaxed) {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed}] {msg}").expect("valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        Steps {
            bar,
            total,
            done: std::cell::Cell::new(0),
        }
    }

    /// Starts the next step; a stopped run ends here.
    pub fn start(&self, what: &str) -> Result<(), Stopped> {
        checkpoint()?;
        let n = self.done.get() + 1;
        self.done.set(n);
        let message = format!("{n}/{} {what}", self.total);
        self.bar.set_message(message.clone());
        CURRENT.with(|c| *c.borrow_mut() = Some((self.bar.clone(), message)));
        OBSERVER.with(|o| {
            if let Some(f) = o.borrow().as_ref() {
                f(n, self.total, what)
            }
        });
        Ok(())
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Steps {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
        self.bar.finish_and_clear();
    }
}

/// A bar over a known number of items (the k sweep, LLM requests); thread-safe.
pub struct Counter {
    bar: ProgressBar,
}

impl Counter {
    pub fn new(what: &str, total: u64) -> Counter {
        let target = if HIDDEN.load(Ordering::Relaxed) {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{elapsed}] {bar:30} {pos}/{len} {msg}")
                .expect("valid template"),
        );
        bar.set_prefix(what.to_string());
        Counter { bar }
    }

    /// Marks the start of the next item.
    pub fn step(&self, msg: &str) {
        self.bar.set_message(msg.to_string());
        self.bar.inc(1);
    }

    /// Counts one finished item.
    pub fn inc(&self) {
        self.bar.inc(1);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A watch follows the work onto the blocking thread that runs it, and is gone after.
    #[tokio::test]
    async fn a_watch_reports_and_stops_work_on_its_blocking_thread() {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let log = heard.clone();
        let watch = Watch::new(
            move |_, _, what| log.lock().unwrap().push(what.to_string()),
            stop.clone(),
        );
        let steps = watch
            .blocking(|| {
                let steps = Steps::new(2);
                steps.start("reading").and_then(|_| announce("writing"))
            })
            .await
            .unwrap();
        assert!(steps.is_ok());
        assert_eq!(*heard.lock().unwrap(), ["reading", "writing"]);
        stop.store(true, Ordering::Relaxed);
        let stopped = watch.blocking(checkpoint).await.unwrap();
        assert!(stopped.is_err());
        assert!(watch.announce("later").is_err());
        watch.idle().await;
        // Another blocking thread, unwatched: nothing heard, nothing stopped.
        let free = Watch::default().blocking(checkpoint).await.unwrap();
        assert!(free.is_ok());
        assert_eq!(heard.lock().unwrap().len(), 2);
    }
}
