//! The streaming pass: source + column mapping + cleaning rules → per-customer RFM table +
//! ledger, in memory that grows with customers, not lines.
//!
//! One reader thread cuts the input into pieces (blocks of text, row groups) in file order;
//! worker threads parse, type and classify them in parallel; this thread takes the typed
//! chunks back in file order into the [`Accumulator`]. At most [`IN_FLIGHT`] pieces exist at
//! once, so memory is bounded by the pieces in flight plus the per-customer state.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use anyhow::Result;

use crate::clean::typed::{self, Lines, Plan};
use crate::clean::{CleanError, CleanOptions};
use crate::dates::{self, DateFormat};
use crate::ingest::{self, Chunk, Encoding, IngestError, Input, Piece, ReadOptions, SourceInfo};
use crate::progress::Progress;
use crate::rfm::Frequency;
use crate::rfm::accumulate::{Accumulator, Settings, Totals};

/// Pieces read ahead of the accumulator, at most.
const IN_FLIGHT: usize = 4;

/// What a pass needs.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    pub read: ReadOptions,
    pub clean: CleanOptions,
    pub frequency: Frequency,
    /// Keep purchase histories for the predictive models.
    pub histories: Option<crate::rfm::histories::HistorySettings>,
}

/// The result of a pass.
#[derive(Debug, Clone)]
pub struct Scan {
    pub source: SourceInfo,
    pub totals: Totals,
    /// Day/month order could not be told from the data.
    pub date_ambiguous: bool,
}

/// Runs the pass over `input`, telling `progress` how far it has got and stopping when it
/// says so; the input's SHA-256 is computed alongside.
pub fn scan(input: &Input, opts: &ScanOptions, progress: &dyn Progress) -> Result<Scan> {
    let hash = input.hash();
    let result = match pass(input, opts, progress) {
        Err(e) if matches!(e.downcast_ref(), Some(IngestError::Reencode { .. })) => {
            tracing::info!(
                "{}: not UTF-8 after all; reading it again as Latin-1",
                input.name()
            );
            let mut latin1 = opts.clone();
            latin1.read.encoding = Encoding::Latin1;
            pass(input, &latin1, progress)
        }
        other => other,
    };
    let sha = hash
        .join()
        .map_err(|_| anyhow::anyhow!("the hashing thread failed"))?;
    let mut scan = result?;
    scan.source.sha256 = sha?;
    Ok(scan)
}

/// The first chunk that has rows, and the chunks before it (none of them with rows).
fn first_rows(
    pieces: &mut dyn Iterator<Item = Result<Piece, IngestError>>,
) -> Result<Option<Chunk>, IngestError> {
    for piece in pieces {
        let chunk = piece?()?;
        if chunk.rows > 0 {
            return Ok(Some(chunk));
        }
    }
    Ok(None)
}

/// Rows read ahead on this thread to break a day/month tie before the pass goes on.
const TIE_BREAK_ROWS: usize = 1 << 21;

/// The date format: forced, or detected from the first chunk. A day/month tie is broken by
/// reading on until a chunk tells the two orders apart: the chunks read for that are kept
/// (`held`, up to [`TIE_BREAK_ROWS`] rows) and go to the pass; past that, the dates are read
/// on from a second reader.
fn date_format(
    held: &mut Vec<Chunk>,
    pieces: &mut dyn Iterator<Item = Result<Piece, IngestError>>,
    input: &Input,
    opts: &ScanOptions,
    column: &str,
    progress: &dyn Progress,
) -> Result<(DateFormat, bool)> {
    let path = input.name();
    let wrap = |source| CleanError::Date {
        path: path.clone(),
        source,
    };
    if let Some(f) = &opts.clean.date_format {
        return Ok((f.clone(), false));
    }
    let (format, ambiguous) = dates::detect(&held[0].date, column).map_err(wrap)?;
    let Some(twin) = dates::day_month_twin(&format).filter(|_| ambiguous) else {
        return Ok((format, ambiguous));
    };
    let decide = |chunk: &Chunk| {
        let (a, b) = dates::count_parsed(&chunk.date, &format, &twin);
        tracing::debug!("day/month order: {a} against {b} values");
        (a != b).then(|| if a > b { format.clone() } else { twin.clone() })
    };
    loop {
        let rows: usize = held.iter().map(|c| c.rows).sum();
        if rows >= TIE_BREAK_ROWS {
            break;
        }
        let Some(piece) = pieces.next() else {
            return Ok((format, true));
        };
        let chunk = piece?().map_err(|e| e.after_rows(rows))?;
        let decided = decide(&chunk);
        held.push(chunk);
        if let Some(f) = decided {
            return Ok((f, false));
        }
    }
    // Errors past the held rows are left to the pass, which names their rows.
    let mut probe = ingest::open(input, &opts.read, progress)?;
    for piece in probe.pieces.by_ref().skip(held.len()) {
        match piece.map(|p| p()) {
            Ok(Ok(chunk)) => {
                if let Some(f) = decide(&chunk) {
                    return Ok((f, false));
                }
            }
            _ => break,
        }
        progress.checkpoint()?;
    }
    Ok((format, true))
}

fn pass(input: &Input, opts: &ScanOptions, progress: &dyn Progress) -> Result<Scan> {
    let started = std::time::Instant::now();
    let mut stream = ingest::open(input, &opts.read, progress)?;
    let path = stream.source.path.clone();
    let Some(first) = first_rows(stream.pieces.as_mut())? else {
        return Err(IngestError::HeaderOnly { path }.into());
    };
    let column = stream
        .source
        .columns
        .get("date")
        .cloned()
        .unwrap_or_default();
    let emails = first.email.is_some();
    let mut held = vec![first];
    let (date_format, date_ambiguous) = date_format(
        &mut held,
        stream.pieces.as_mut(),
        input,
        opts,
        &column,
        progress,
    )?;
    let plan = Arc::new(Plan {
        path: path.clone(),
        options: opts.clean.clone(),
        date_format: date_format.clone(),
        columns: stream.source.columns.clone(),
        preset: stream.source.preset,
    });
    let mut acc = Accumulator::new(Settings {
        path: path.clone(),
        frequency: opts.frequency,
        returns: opts.clean.returns,
        limits: opts.read.limits,
        emails,
        histories: opts.histories,
    });
    for chunk in held {
        for part in slices(&chunk) {
            acc.add(typed::classify(&part, &plan)?)?;
        }
    }
    run_workers(stream.pieces, &plan, &mut acc, progress)?;
    tracing::debug!(elapsed = ?started.elapsed(), rows = acc.rows(), "pass done");
    check_orders(&acc, opts, &path, &stream.source.columns)?;
    if acc.rows() == 0 {
        return Err(IngestError::HeaderOnly { path }.into());
    }
    let mut source = stream.source;
    if let Some(e) = &stream.encoding {
        source.encoding = Some(e.lock().expect("encoding").to_string());
    }
    let totals = acc
        .finish(opts.clean.snapshot, date_format.describe())
        .ok_or_else(|| CleanError::NoDates {
            path: path.clone(),
            column,
        })?;
    if totals.ledger.rows_kept == 0 || totals.table.is_empty() {
        return Err(crate::clean::nothing_left(&path, &totals.ledger).into());
    }
    Ok(Scan {
        source,
        totals,
        date_ambiguous,
    })
}

/// After the pass: one clock for the dates, one currency for the money.
fn check_orders(
    acc: &Accumulator,
    opts: &ScanOptions,
    path: &str,
    columns: &BTreeMap<String, String>,
) -> Result<(), CleanError> {
    let (currencies, zones) = acc.orders();
    let column = |role: &str| columns.get(role).cloned().unwrap_or_default();
    zones
        .check(&column("date"))
        .map_err(|source| CleanError::Date {
            path: path.to_string(),
            source,
        })?;
    if opts.clean.currency == ingest::CurrencyChoice::One && currencies.len() > 1 {
        let mut counted: Vec<&(Box<str>, u64)> = currencies.iter().collect();
        counted.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut words: Vec<String> = counted
            .iter()
            .take(10)
            .map(|(code, rows)| {
                let code = crate::bounded::value(code, crate::bounded::MAX_VALUE);
                format!("{code}: {} rows", crate::fmt::thousands(*rows as f64, 0))
            })
            .collect();
        return Err(CleanError::Currencies {
            path: path.to_string(),
            column: column("currency"),
            count: currencies.len(),
            list: {
                if counted.len() > words.len() {
                    words.push(format!("… and {} more", counted.len() - words.len()));
                }
                words.join(", ")
            },
        });
    }
    Ok(())
}

/// Rows typed at once: a large piece (a Parquet row group of millions of rows) is typed
/// and handed over in slices, so that only its columns, not its typed rows, are held whole.
const SLICE_ROWS: usize = 1 << 18;

/// `chunk` in slices of at most [`SLICE_ROWS`] rows (no copy).
fn slices(chunk: &Chunk) -> impl Iterator<Item = Chunk> + '_ {
    (0..chunk.rows.max(1))
        .step_by(SLICE_ROWS)
        .map(|offset| chunk.slice(offset, SLICE_ROWS.min(chunk.rows - offset)))
}

/// A typed slice: (piece, slice, whether it is the piece's last, its lines).
type Done = (usize, usize, bool, Result<Lines>);

/// Reader, workers and the in-order accumulator.
fn run_workers(
    pieces: Box<dyn Iterator<Item = Result<Piece, IngestError>> + Send>,
    plan: &Arc<Plan>,
    acc: &mut Accumulator,
    progress: &dyn Progress,
) -> Result<()> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let (token_tx, token_rx) = sync_channel::<()>(IN_FLIGHT);
    let (job_tx, job_rx) = sync_channel::<(usize, Piece)>(1);
    let (done_tx, done_rx) = sync_channel::<Done>(IN_FLIGHT);
    let job_rx = Arc::new(Mutex::new(job_rx));
    std::thread::scope(|s| {
        let reader_done = done_tx.clone();
        s.spawn(move || read(pieces, token_tx, job_tx, reader_done));
        for _ in 0..workers {
            let (jobs, done, plan) = (job_rx.clone(), done_tx.clone(), plan.clone());
            s.spawn(move || work(&jobs, &done, &plan));
        }
        drop(done_tx);
        accumulate(done_rx, token_rx, acc, progress)
    })
}

/// Hands out the pieces in order, each once a slot is free; a read error goes straight to
/// the accumulator in its place.
fn read(
    pieces: Box<dyn Iterator<Item = Result<Piece, IngestError>> + Send>,
    tokens: SyncSender<()>,
    jobs: SyncSender<(usize, Piece)>,
    done: SyncSender<Done>,
) {
    for (seq, piece) in pieces.enumerate() {
        if tokens.send(()).is_err() {
            return;
        }
        let sent = match piece {
            Ok(p) => jobs.send((seq, p)).is_ok(),
            Err(e) => {
                let _ = done.send((seq, 0, true, Err(e.into())));
                false
            }
        };
        if !sent {
            return;
        }
    }
}

fn work(jobs: &Mutex<Receiver<(usize, Piece)>>, done: &SyncSender<Done>, plan: &Plan) {
    loop {
        let job = jobs.lock().expect("job queue").recv();
        let Ok((seq, piece)) = job else { return };
        let chunk = match piece() {
            Ok(chunk) => chunk,
            Err(e) => {
                let _ = done.send((seq, 0, true, Err(e.into())));
                return;
            }
        };
        let count = chunk.rows.max(1).div_ceil(SLICE_ROWS);
        for (sub, part) in slices(&chunk).enumerate() {
            let typed = typed::classify(&part, plan).map_err(anyhow::Error::from);
            let failed = typed.is_err();
            if done
                .send((seq, sub, sub + 1 == count || failed, typed))
                .is_err()
                || failed
            {
                return;
            }
        }
    }
}

/// Takes the typed slices in file order. Returning (on an error) drops the channels, which
/// ends the reader and the workers.
fn accumulate(
    done: Receiver<Done>,
    tokens: Receiver<()>,
    acc: &mut Accumulator,
    progress: &dyn Progress,
) -> Result<()> {
    let mut waiting: BTreeMap<(usize, usize), (bool, Result<Lines>)> = BTreeMap::new();
    let mut next = (0usize, 0usize);
    for (seq, sub, last, lines) in done {
        waiting.insert((seq, sub), (last, lines));
        while let Some((last, lines)) = waiting.remove(&next) {
            progress.checkpoint()?;
            let before = acc.rows() as usize;
            match lines {
                Ok(lines) => acc.add(lines)?,
                Err(e) => return Err(shift(e, before)),
            }
            if last {
                next = (next.0 + 1, 0);
                let _ = tokens.try_recv();
                let rows = crate::fmt::thousands(acc.rows() as f64, 0);
                progress.detail(&format!("{rows} rows"));
            } else {
                next.1 += 1;
            }
        }
    }
    Ok(())
}

/// A row number found inside a chunk, made the file's.
fn shift(e: anyhow::Error, before: usize) -> anyhow::Error {
    match e.downcast::<IngestError>() {
        Ok(e) => e.after_rows(before).into(),
        Err(e) => e,
    }
}

/// Whether `e` ends a run that was asked to stop (Ctrl-C, DELETE).
pub fn was_stopped(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<crate::progress::Stopped>()
            || matches!(
                c.downcast_ref::<crate::ingest::IngestError>(),
                Some(crate::ingest::IngestError::Stopped)
            )
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::progress::Stopped;
    use crate::sample::{SampleSpec, generate};

    /// A sink that keeps what it is told and stops when asked to.
    #[derive(Default)]
    struct Heard {
        details: Mutex<Vec<String>>,
        stop: AtomicBool,
    }

    impl Progress for Heard {
        fn detail(&self, text: &str) {
            self.details.lock().unwrap().push(text.to_string());
        }
        fn checkpoint(&self) -> Result<(), Stopped> {
            match self.stop.load(Ordering::Relaxed) {
                true => Err(Stopped),
                false => Ok(()),
            }
        }
    }

    fn sample() -> Input {
        Input::Bytes {
            bytes: generate(&SampleSpec::default()).into(),
            name: "sample".into(),
        }
    }

    fn options() -> ScanOptions {
        ScanOptions {
            read: ReadOptions::default(),
            clean: CleanOptions::default(),
            frequency: Frequency::Invoices,
            histories: None,
        }
    }

    #[test]
    fn the_pass_reports_to_the_sink_it_is_given_and_stops_when_it_says() {
        let heard = Heard::default();
        let scan = scan(&sample(), &options(), &heard).unwrap();
        let details = heard.details.lock().unwrap().clone();
        let last = details
            .last()
            .expect("the pass told the sink how far it got");
        let rows = crate::fmt::thousands(scan.totals.rows as f64, 0);
        assert_eq!(last, &format!("{rows} rows"), "{details:?}");
        let stopped = Heard::default();
        stopped.stop.store(true, Ordering::Relaxed);
        let e = super::scan(&sample(), &options(), &stopped).unwrap_err();
        assert!(was_stopped(&e), "{e:#}");
    }
}
