//! The service's side of a run's process (job.rs is the other): starts it with its limits,
//! hands it its spec, reads its events, watches its memory and ends it.
//!
//! - **Limits**, set in the process before it starts the program: address space (a backstop
//!   for an allocation sized by a number in a file: it fails at once instead of being
//!   overcommitted), CPU time, no core dumps (they would hold customer data), its own process
//!   group (a Ctrl-C at the service's terminal is the service's to handle), and death with
//!   the thread that started it (so with the service).
//! - **Environment**: cleared, but for what a run may need to find things (paths, locale,
//!   proxies, certificates); secrets travel in the spec, never in the environment, and the
//!   service's token never reaches a run.
//! - **Memory** is read from the kernel every [`WATCH`] while the run lives; past its limit
//!   the process is killed and the run fails with that reason.
//! - **Ending**: killed with SIGKILL; the pid is only signalled while the process has not
//!   been reaped, so it can never hit another process.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::spec::{Event, MAX_EVENT, RunSpec};

/// How often a run's resident memory is read.
pub const WATCH: Duration = Duration::from_millis(100);

/// Address space granted beyond the memory limit: thread stacks, the allocator's reserved
/// arenas and the program's own mappings count there, not in resident memory.
const ADDRESS_HEADROOM: u64 = 4 << 30;

/// Lines of a run's standard error kept for the log when it ends badly, and forwarded to
/// the service's log while it runs.
const TAIL: usize = 40;
const FORWARDED: usize = 200;

/// Environment variables a run keeps: where things are, how text and time are read, how
/// to reach the network. Nothing secret (keys and passwords travel in the spec).
const KEPT_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "XDG_CACHE_HOME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
    "PGPASSFILE",
    "PGSSLROOTCERT",
    "POLARS_MAX_THREADS",
    "RAYON_NUM_THREADS",
];

/// What a run may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub memory_bytes: u64,
    pub cpu_secs: u64,
}

/// How the process ended, as `wait4` told it, with its peak resident memory.
#[derive(Debug)]
pub struct Exit {
    pub status: ExitStatus,
}

/// A run's process, from start to reaping.
pub struct RunProcess {
    pid: u32,
    /// False once the process is reaped: its pid is then never signalled again.
    alive: Arc<Mutex<bool>>,
    pub events: tokio::sync::mpsc::Receiver<Event>,
    pub exit: tokio::sync::oneshot::Receiver<std::io::Result<Exit>>,
    /// The last lines of its standard error.
    pub stderr: Arc<Mutex<VecDeque<String>>>,
}

impl RunProcess {
    /// Starts `program run-job` with `limits`, writes `spec` to it and closes its input. The
    /// process is started, waited for and reaped by a thread of its own, which lives as long
    /// as it does (the process dies with that thread).
    pub fn start(
        program: &Path,
        spec: &RunSpec,
        limits: Limits,
        run: &str,
    ) -> std::io::Result<RunProcess> {
        let spec = serde_json::to_vec(spec).map_err(std::io::Error::other)?;
        let mut cmd = std::process::Command::new(program);
        cmd.arg("run-job")
            .env_clear()
            .envs(
                KEPT_ENV
                    .iter()
                    .filter_map(|k| Some((k, std::env::var_os(k)?))),
            )
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let address = limits.memory_bytes.saturating_add(ADDRESS_HEADROOM);
        let cpu = limits.cpu_secs;
        // SAFETY: only async-signal-safe system calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || confine(address, cpu));
        }
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (exit_tx, exit_rx) = tokio::sync::oneshot::channel();
        let (events_tx, events_rx) = tokio::sync::mpsc::channel(64);
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let alive = Arc::new(Mutex::new(true));
        let (tail, alive2, run) = (stderr.clone(), alive.clone(), run.to_string());
        std::thread::Builder::new()
            .name(format!("run {run}"))
            .spawn(move || {
                let mut child = match cmd.spawn() {
                    Ok(c) => c,
                    Err(e) => return drop(started_tx.send(Err(e))),
                };
                let _ = started_tx.send(Ok(child.id()));
                if let Some(mut input) = child.stdin.take() {
                    // A process that ended at once closed its input: its exit says why.
                    let _ = input.write_all(&spec);
                }
                let out = child.stdout.take().map(|o| read_events(o, events_tx));
                let err = child.stderr.take().map(|e| read_stderr(e, tail, run));
                let _ = exit_tx.send(reap(child.id(), &alive2));
                for t in [out, err].into_iter().flatten() {
                    let _ = t.join();
                }
            })?;
        let pid = started_rx
            .recv()
            .map_err(|_| std::io::Error::other("the run's thread ended before it started"))??;
        Ok(RunProcess {
            pid,
            alive,
            events: events_rx,
            exit: exit_rx,
            stderr,
        })
    }

    /// Ends the process at once (SIGKILL), unless it has already been reaped.
    pub fn kill(&self) {
        let alive = self.alive.lock().unwrap_or_else(|e| e.into_inner());
        if *alive {
            // SAFETY: signals our own child, which is not reaped while `alive` is held.
            unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
        }
    }

    /// Its resident memory now, in KiB.
    pub fn resident_kib(&self) -> Option<u64> {
        rfm_core::sysmem::resident_kib(Some(self.pid))
    }

    /// The last lines it wrote on its standard error.
    pub fn stderr_tail(&self) -> Vec<String> {
        let tail = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        tail.iter().cloned().collect()
    }
}

/// In the new process, before the program starts: its limits, its own process group, and
/// death with the thread that started it.
fn confine(address: u64, cpu: u64) -> std::io::Result<()> {
    let set = |resource, soft: u64, hard: u64| {
        let limit = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: a plain system call on a valid struct.
        match unsafe { libc::setrlimit(resource, &limit) } {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        }
    };
    set(libc::RLIMIT_AS, address, address)?;
    set(libc::RLIMIT_CPU, cpu, cpu.saturating_add(10))?;
    set(libc::RLIMIT_CORE, 0, 0)?;
    // SAFETY: plain system calls.
    unsafe {
        if libc::setpgid(0, 0) != 0 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Waits for the process to end without reaping it, marks it gone, then reaps it: a kill
/// between the two would hit a pid the kernel may already have given to another process.
fn reap(pid: u32, alive: &Mutex<bool>) -> std::io::Result<Exit> {
    // SAFETY: waits for our own child; `info` is written by the kernel.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        let r = unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let mut alive = alive.lock().unwrap_or_else(|e| e.into_inner());
    *alive = false;
    let mut status = 0;
    // SAFETY: reaps the child that waitid saw end.
    let r = unsafe { libc::waitpid(pid as i32, &mut status, 0) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Exit {
        status: ExitStatus::from_raw(status),
    })
}

/// Reads the process's events, one JSON line each (a line cut at [`MAX_EVENT`]; what does
/// not parse is skipped), until its output closes.
fn read_events(
    out: impl Read + Send + 'static,
    tx: tokio::sync::mpsc::Sender<Event>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(out);
        let mut line = Vec::new();
        loop {
            line.clear();
            match (&mut reader)
                .take(MAX_EVENT as u64)
                .read_until(b'\n', &mut line)
            {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if !line.ends_with(b"\n") && skip_line(&mut reader).is_err() {
                return;
            }
            if let Ok(event) = serde_json::from_slice::<Event>(&line) {
                // The service stopped listening: keep reading, so the process never blocks.
                let _ = tx.blocking_send(event);
            }
        }
    })
}

/// Discards the rest of a line that was too long.
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|b| *b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

/// Forwards the process's standard error to the service's log (the first [`FORWARDED`]
/// lines, each cut to 2 KB) and keeps the last [`TAIL`] lines.
fn read_stderr(
    err: impl Read + Send + 'static,
    tail: Arc<Mutex<VecDeque<String>>>,
    run: String,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(err);
        let (mut line, mut seen) = (Vec::new(), 0usize);
        loop {
            line.clear();
            match (&mut reader).take(2048).read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if !line.ends_with(b"\n") && skip_line(&mut reader).is_err() {
                return;
            }
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            seen += 1;
            if seen <= FORWARDED {
                tracing::info!(run = %run, "{text}");
            }
            let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
            if tail.len() == TAIL {
                tail.pop_front();
            }
            tail.push_back(text);
        }
    })
}
