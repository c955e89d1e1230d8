//! Spark through Spark Connect: the cleaning rules and the RFM aggregation run as Spark SQL
//! on the cluster, over a file the cluster reads (Parquet or CSV), a catalog table or a
//! query; only the ledger's counts and one row per customer come back, as Arrow batches.
//! The client (`apache-spark-connect`) blocks on its own runtime: call [`scan`] off the
//! async threads.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{ArrowPrimitiveType, DataType as Arrow, Float64Type, Int64Type};
use spark_connect::types::DataType;
use spark_connect::{SparkSession, SparkSessionBuilder};

use super::EngineError;
use super::sql::{Columns, Dialect, Sql};
use crate::dates::DateFormat;
use crate::ingest::{FileFormat, Resolved, Role, resolve_columns};
use crate::rfm::accumulate::{Accumulator, Aggregate};
use crate::scan::{Scan, ScanOptions};

/// The first rows of a CSV read to recognise its date format (the scan stops there), and
/// the most distinct date texts kept from them.
const DATE_ROWS: usize = 200_000;
const DATE_SAMPLE: usize = 20_000;

/// Partitions of a CSV's parsed rows (a gzipped CSV is read by one task).
const CSV_PARTITIONS: usize = 8;

/// What the cluster reads.
#[derive(Debug, Clone)]
enum Source {
    /// A file or folder the cluster can reach, by path.
    File { path: String, csv: bool },
    /// A catalog table.
    Table(String),
    /// A Spark SQL query of the caller's choosing.
    Query(String),
}

/// Where to read: the Spark Connect endpoint and the source.
pub struct Target {
    /// The endpoint as given (it may hold a token: never shown).
    remote: String,
    /// `spark sc://host:port`, for messages.
    pub name: String,
    host: String,
    port: u16,
    source: Source,
    timeout: Duration,
    /// The CSV reader's field delimiter.
    delimiter: char,
}

impl Target {
    /// `remote` is `sc://HOST:PORT[/;param=value…]`; exactly one of `path`, `table` and
    /// `query` names the data.
    pub fn new(
        remote: &str,
        path: &str,
        table: &str,
        query: &str,
        delimiter: Option<char>,
        timeout: Duration,
    ) -> Result<Target> {
        let (host, port) = endpoint(remote)?;
        let name = format!("spark sc://{host}:{port}");
        let source = match (path.trim(), table.trim(), query.trim()) {
            (p, "", "") if !p.is_empty() => file_source(p),
            ("", t, "") if !t.is_empty() => Source::Table(t.to_string()),
            ("", "", q) if !q.is_empty() => Source::Query(q.to_string()),
            ("", "", "") => bail!(
                "{name}: name the data with --input PATH (a Parquet or CSV file the cluster reads), --table NAME or --query \"SELECT …\""
            ),
            _ => bail!("{name}: give one of --input PATH, --table and --query"),
        };
        Ok(Target {
            remote: remote.trim().to_string(),
            name,
            host,
            port,
            source,
            timeout,
            delimiter: delimiter.unwrap_or(','),
        })
    }
}

/// The host and port of `sc://HOST:PORT/;…` (Spark Connect's default port is 15002).
fn endpoint(remote: &str) -> Result<(String, u16)> {
    let bad = || {
        anyhow::anyhow!(
            "spark: the Spark Connect address must look like sc://HOST:PORT (set it with --spark-remote or SPARK_REMOTE)"
        )
    };
    let rest = remote.trim().strip_prefix("sc://").ok_or_else(bad)?;
    let authority = rest.split(['/', ';']).next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
        None => (authority, 15002),
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

/// A path the cluster reads: made absolute when it exists here (a cluster on this machine
/// resolves relative paths from its own working directory).
fn file_source(path: &str) -> Source {
    let lower = path.to_ascii_lowercase();
    let csv = [".csv", ".csv.gz", ".txt", ".txt.gz", ".tsv", ".tsv.gz"]
        .iter()
        .any(|e| lower.ends_with(e));
    let path = match std::fs::canonicalize(path) {
        Ok(p) if !path.contains("://") => p.display().to_string(),
        _ => path.to_string(),
    };
    Source::File { path, csv }
}

/// The pass, run by the cluster, within the engine timeout. Blocks: call it from a thread
/// that is not an async worker.
pub fn scan(target: &Target, opts: &ScanOptions) -> Result<Scan> {
    probe(target)?;
    let session: Arc<OnceLock<SparkSession>> = Arc::default();
    let (tx, rx) = mpsc::sync_channel(1);
    let (worker_session, remote) = (session.clone(), target.remote.clone());
    let job = Job {
        name: target.name.clone(),
        source: target.source.clone(),
        delimiter: target.delimiter,
        opts: opts.clone(),
    };
    std::thread::Builder::new()
        .name("spark-connect".into())
        .spawn(move || {
            let _ = tx.send(job.run(&remote, &worker_session));
        })
        .context("cannot start the Spark client's thread")?;
    match rx.recv_timeout(target.timeout) {
        Ok(result) => result,
        Err(_) => {
            // Ask the cluster to stop the query; the client's thread ends with it.
            if let Some(s) = session.get().cloned() {
                std::thread::spawn(move || {
                    let _ = s.interrupt_all();
                });
            }
            Err(EngineError::Silent {
                name: target.name.clone(),
                secs: target.timeout.as_secs(),
            }
            .into())
        }
    }
}

/// A quick refusal for an address nothing listens on (the client would retry for minutes).
fn probe(target: &Target) -> Result<()> {
    let cannot = |why: String| {
        anyhow::anyhow!(
            "{}: cannot connect ({why}); check the host and port of --spark-remote or SPARK_REMOTE, and that the Spark Connect server runs",
            target.name
        )
    };
    let addrs: Vec<_> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| cannot(e.to_string()))?
        .collect();
    let wait = target.timeout.min(Duration::from_secs(10));
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, wait) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(cannot(last))
}

/// The work on the client's thread.
struct Job {
    name: String,
    source: Source,
    delimiter: char,
    opts: ScanOptions,
}

impl Job {
    fn run(&self, remote: &str, slot: &OnceLock<SparkSession>) -> Result<Scan> {
        let spark = SparkSessionBuilder::new()
            .remote(remote)
            .get_or_create()
            .map_err(|e| self.failed("cannot open a session", &e))?;
        let spark = slot.get_or_init(|| spark);
        let result = self.pass(spark);
        // Ends the session on the server: its views and cached data go with it.
        if let Err(e) = spark.stop() {
            tracing::debug!("{}: closing the session: {e}", self.name);
        }
        result
    }

    fn pass(&self, spark: &SparkSession) -> Result<Scan> {
        let conf = spark.conf();
        conf.set("spark.sql.session.timeZone", "UTC")
            .map_err(|e| self.failed("cannot connect", &e))?;
        let (mut view, headers, types) = self.register(spark)?;
        let resolved = resolve_columns(&self.opts.read.columns, &headers, &self.name)?;
        if matches!(self.source, Source::File { csv: true, .. }) {
            // A CSV (gzip: one task) is parsed once, its mapped columns kept by the cluster
            // (memory, then disk) in partitions that the pass's statements share out.
            let d = Spark;
            let mapped: Vec<String> = resolved.found.values().map(|(_, h)| d.ident(h)).collect();
            let cached = format!("{view}_mapped");
            let cache = format!(
                "CACHE TABLE {cached} AS SELECT /*+ REPARTITION({CSV_PARTITIONS}) */ {} FROM {view}",
                mapped.join(", ")
            );
            self.collect(spark, &cache)?;
            view = cached;
        }
        let (cols, dates) = self.typed_columns(spark, &view, &resolved, &types)?;
        let sql = Sql::new(&Spark, &cols, &view, &self.opts);
        let mut acc = super::accumulator(&self.name, &self.opts);
        let rows = self.collect(spark, &sql.ledger())?;
        let max_ms = super::add_ledger(&mut acc, ledger_rows(&rows)?)?;
        if super::snapshot(&self.opts, max_ms).is_some() {
            let rows = self.collect(spark, &sql.customers())?;
            // The Arrow buffers' bytes (what the IPC stream carries, without its framing).
            let bytes: usize = rows
                .iter()
                .flat_map(RecordBatch::columns)
                .filter_map(|c| c.to_data().get_slice_memory_size().ok())
                .sum();
            let n: usize = rows.iter().map(RecordBatch::num_rows).sum();
            tracing::info!(
                "{}: {bytes} bytes (Arrow) came back for {n} customers",
                self.name
            );
            add_customers(&mut acc, &rows)?;
        }
        let format = match &self.source {
            Source::File { csv: true, .. } => FileFormat::Csv,
            Source::File { .. } => FileFormat::Parquet,
            _ => FileFormat::Spark,
        };
        let mut scan = super::finish(acc, &self.opts, &self.name, format, &resolved, &dates)?;
        scan.source.path = self.describe();
        Ok(scan)
    }

    /// What was read, for the manifest: the engine and the path, table or query.
    fn describe(&self) -> String {
        match &self.source {
            Source::File { path, .. } => format!("{} {path}", self.name),
            Source::Table(t) => format!("{} table {t}", self.name),
            Source::Query(_) => format!("{} query", self.name),
        }
    }

    /// The server's message: its first line, bounded; a refused token is typed.
    fn failed(&self, what: &str, e: &spark_connect::SparkError) -> anyhow::Error {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        let why = crate::bounded::value(first.trim_end_matches('.'), 300);
        if text.contains("authentication") {
            return EngineError::Refused {
                name: self.name.clone(),
                why,
            }
            .into();
        }
        anyhow::anyhow!("{}: {what} ({why})", self.name)
    }

    /// The source as a temporary view of this session; its column names and types.
    fn register(&self, spark: &SparkSession) -> Result<(String, Vec<String>, Vec<DataType>)> {
        let df = match &self.source {
            Source::File { path, csv: false } => spark.read().parquet(path),
            Source::File { path, csv: true } => spark
                .read()
                .format("csv")
                .option("header", "true")
                .option("sep", &self.delimiter.to_string())
                .load(Some(path)),
            Source::Table(t) => spark.table(t).map_err(|e| self.failed("cannot read", &e))?,
            Source::Query(q) => spark.sql(q).map_err(|e| self.failed("cannot read", &e))?,
        };
        let schema = df.schema().map_err(|e| self.failed("cannot read", &e))?;
        let DataType::Struct { fields } = schema else {
            bail!("{}: the source has no columns", self.name);
        };
        let view = format!("rfm_agent_src_{}", std::process::id());
        df.create_or_replace_temp_view(&view)
            .map_err(|e| self.failed("cannot read", &e))?;
        let (headers, types) = fields.into_iter().map(|f| (f.name, f.data_type)).unzip();
        Ok((view, headers, types))
    }

    /// A statement's answer as Arrow batches.
    fn collect(&self, spark: &SparkSession, sql: &str) -> Result<Vec<RecordBatch>> {
        tracing::debug!("{}: {sql}", self.name);
        let df = spark
            .sql(sql)
            .map_err(|e| self.failed("the query failed", &e))?;
        df.collect_record_batches()
            .map_err(|e| self.failed("the query failed", &e))
    }
}

/// Spark SQL's spellings.
struct Spark;

impl Dialect for Spark {
    fn ident(&self, name: &str) -> String {
        format!("`{}`", name.replace('`', "``"))
    }
    fn text(&self, expr: &str) -> String {
        format!("CAST({expr} AS STRING)")
    }
    fn float(&self, expr: &str) -> String {
        format!("CAST({expr} AS DOUBLE)")
    }
    fn int8(&self, expr: &str) -> String {
        format!("CAST({expr} AS BIGINT)")
    }
    fn matches(&self, expr: &str, re: &str) -> String {
        format!("{expr} RLIKE '{re}'")
    }
}

impl Job {
    /// The mapped columns as Spark SQL of the right type. A CSV's columns are text: numbers
    /// and dates are parsed (NULL where they do not parse, which the rules count); a typed
    /// source's columns must have the right type.
    fn typed_columns(
        &self,
        spark: &SparkSession,
        view: &str,
        r: &Resolved,
        types: &[DataType],
    ) -> Result<(Columns, String)> {
        let d = Spark;
        let csv = matches!(self.source, Source::File { csv: true, .. });
        let col = |role: Role| r.found.get(&role).map(|(i, h)| (d.ident(h), &types[*i], h));
        let wrong = |name: &String, t: &DataType, wanted| EngineError::Type {
            name: self.name.clone(),
            column: name.clone(),
            found: t.simple_string(),
            wanted,
            spark: true,
        };
        let number = |role: Role| -> Result<Option<String>> {
            let Some((c, t, name)) = col(role) else {
                return Ok(None);
            };
            match t {
                t if is_number(t) => Ok(Some(d.float(&c))),
                t if is_text(t) && csv => Ok(Some(format!("try_cast(btrim({c}) AS DOUBLE)"))),
                t => Err(wrong(name, t, "a number").into()),
            }
        };
        let (cust, cust_type, _) = col(Role::Customer).expect("resolved");
        let canonical = matches!(
            cust_type,
            DataType::Byte | DataType::Short | DataType::Integer | DataType::Long
        );
        let customer = match cust_type {
            _ if canonical => cust.clone(),
            // 17850.0 as 17850.000000 (never 1.785E4), which the rules read as 17850.
            DataType::Float | DataType::Double => {
                format!("CAST(try_cast({cust} AS DECIMAL(38, 6)) AS STRING)")
            }
            _ => d.text(&cust),
        };
        let (date, date_type, date_name) = col(Role::Date).expect("resolved");
        let (ms, dates) = match date_type {
            DataType::Timestamp => (format!("unix_millis({date})"), "native timestamp".into()),
            DataType::TimestampNtz | DataType::Date => (
                format!("unix_millis(CAST({date} AS TIMESTAMP))"),
                "native timestamp".into(),
            ),
            t if is_text(t) && csv => self.text_dates(spark, view, &date, date_name)?,
            t => return Err(wrong(date_name, t, "a date or timestamp").into()),
        };
        let cols = Columns {
            customer,
            customer_canonical: canonical,
            invoice: col(Role::Invoice).map(|(c, ..)| d.text(&c)),
            ms,
            quantity: number(Role::Quantity)?,
            price: number(Role::Price)?,
            amount: number(Role::Amount)?,
        };
        Ok((cols, dates))
    }

    /// A CSV's date column: its format recognised from its distinct values (or given with
    /// --date-format), parsed by the cluster. Returns the expression and the format's name.
    fn text_dates(
        &self,
        spark: &SparkSession,
        view: &str,
        col: &str,
        name: &str,
    ) -> Result<(String, String)> {
        let format = match &self.opts.clean.date_format {
            Some(f) => f.clone(),
            None => {
                let sample = self.collect(
                    spark,
                    &format!(
                        "SELECT DISTINCT v FROM (SELECT btrim({col}) AS v FROM {view} \
                         WHERE {col} IS NOT NULL LIMIT {DATE_ROWS}) LIMIT {DATE_SAMPLE}"
                    ),
                )?;
                let values = texts(&sample, 0)?;
                let values: Vec<&str> = values.iter().flatten().map(String::as_str).collect();
                crate::dates::detect_text(&values, name)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", self.name))?
                    .0
            }
        };
        let expr = date_millis(&format, col).with_context(|| {
            format!(
                "{}: column `{name}`: cannot hand the date format `{}` to Spark; give --date-format with %Y %m %d %H %M %S, or use Parquet",
                self.name,
                format.option_name()
            )
        })?;
        Ok((expr, format.describe()))
    }
}

fn is_number(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Byte
            | DataType::Short
            | DataType::Integer
            | DataType::Long
            | DataType::Float
            | DataType::Double
            | DataType::Decimal { .. }
    )
}

fn is_text(t: &DataType) -> bool {
    matches!(
        t,
        DataType::String { .. } | DataType::Char { .. } | DataType::Varchar { .. }
    )
}

/// Milliseconds since the epoch (UTC) from a text column in `format`; NULL where a value does
/// not parse, as the local reader counts it.
fn date_millis(format: &DateFormat, col: &str) -> Result<String> {
    let v = format!("btrim({col})");
    let number = format!("try_cast({v} AS DOUBLE)");
    Ok(match format {
        DateFormat::Pattern(p) => {
            format!("unix_millis(try_to_timestamp({v}, '{}'))", java_pattern(p)?)
        }
        DateFormat::Iso8601 | DateFormat::Rfc3339 => {
            format!("unix_millis(try_cast({v} AS TIMESTAMP))")
        }
        DateFormat::ExcelSerial => format!(
            "CASE WHEN {number} BETWEEN 1 AND 2958465 THEN \
             try_cast(round(({number} - {}) * 86400000) AS BIGINT) END",
            crate::dates::EXCEL_EPOCH_OFFSET_DAYS
        ),
        DateFormat::EpochSeconds => format!("try_cast(round({number} * 1000) AS BIGINT)"),
        DateFormat::EpochMillis => format!("try_cast(round({number}) AS BIGINT)"),
        DateFormat::Native => bail!("a native timestamp is not text"),
    })
}

/// A chrono pattern as a Spark datetime pattern: single letters (one or two digits) between
/// separators, two where fields touch (`%Y%m%d`).
fn java_pattern(p: &str) -> Result<String> {
    let mut out = String::new();
    let mut chars = p.chars().peekable();
    let mut after_field = false;
    while let Some(c) = chars.next() {
        if c != '%' {
            if c.is_ascii_alphanumeric() || c == '\'' || c == '\\' {
                bail!("a literal `{c}`");
            }
            out.push(c);
            after_field = false;
            continue;
        }
        let mut spec = chars.next();
        if spec == Some('-') {
            spec = chars.next();
        }
        let touching = after_field || chars.peek() == Some(&'%');
        after_field = true;
        let (one, two) = match spec {
            Some('Y') => ("yyyy", "yyyy"),
            Some('y') => ("yy", "yy"),
            Some('m') => ("M", "MM"),
            Some('d') | Some('e') => ("d", "dd"),
            Some('H') => ("H", "HH"),
            Some('I') => ("h", "hh"),
            Some('M') => ("m", "mm"),
            Some('S') => ("s", "ss"),
            Some('b') | Some('h') => ("MMM", "MMM"),
            Some('B') => ("MMMM", "MMMM"),
            Some('p') => ("a", "a"),
            other => bail!("`%{}`", other.map(String::from).unwrap_or_default()),
        };
        out.push_str(if touching { two } else { one });
    }
    Ok(out)
}

/// The ledger query's answer.
fn ledger_rows(batches: &[RecordBatch]) -> Result<Vec<super::LedgerRow>> {
    let (rule, count, max) = (ints(batches, 0)?, ints(batches, 1)?, ints(batches, 4)?);
    let (revenue, kept) = (floats(batches, 2)?, floats(batches, 3)?);
    Ok((0..rule.len())
        .map(|i| super::LedgerRow {
            rule: rule[i].unwrap_or(0),
            count: count[i].unwrap_or(0),
            revenue: revenue[i].unwrap_or(0.0),
            kept: kept[i].unwrap_or(0.0),
            max_ms: max[i],
        })
        .collect())
}

/// One row per customer into the accumulator, a batch at a time.
fn add_customers(acc: &mut Accumulator, batches: &[RecordBatch]) -> Result<()> {
    for batch in batches {
        let one = std::slice::from_ref(batch);
        let (ids, last) = (texts(one, 0)?, ints(one, 1)?);
        let (lines, invoices, kept) = (ints(one, 2)?, ints(one, 3)?, ints(one, 4)?);
        let monetary = floats(one, 5)?;
        let returned = cast(batch, 6, &Arrow::Boolean)?;
        let returned = returned.as_boolean();
        for i in 0..batch.num_rows() {
            let Some(id) = &ids[i] else { continue };
            let agg = Aggregate {
                last: last[i],
                lines: lines[i].unwrap_or(0) as u64,
                invoices: invoices[i].unwrap_or(0) as u64,
                kept: kept[i].unwrap_or(0) as u64,
                monetary: monetary[i].unwrap_or(0.0),
                returned: returned.is_valid(i) && returned.value(i),
            };
            acc.add_customer(id, agg)?;
        }
    }
    Ok(())
}

fn cast(batch: &RecordBatch, i: usize, to: &Arrow) -> Result<arrow::array::ArrayRef> {
    let column = batch
        .columns()
        .get(i)
        .with_context(|| format!("Spark returned {} columns", batch.num_columns()))?;
    arrow::compute::cast(column, to).context("Spark returned a column of an unexpected type")
}

/// Column `i` of every batch as numbers of type `T` (cast when Spark sent another type).
fn numbers<T: ArrowPrimitiveType>(
    batches: &[RecordBatch],
    i: usize,
) -> Result<Vec<Option<T::Native>>> {
    let mut out = Vec::new();
    for b in batches {
        out.extend(cast(b, i, &T::DATA_TYPE)?.as_primitive::<T>().iter());
    }
    Ok(out)
}

fn ints(batches: &[RecordBatch], i: usize) -> Result<Vec<Option<i64>>> {
    numbers::<Int64Type>(batches, i)
}

fn floats(batches: &[RecordBatch], i: usize) -> Result<Vec<Option<f64>>> {
    numbers::<Float64Type>(batches, i)
}

fn texts(batches: &[RecordBatch], i: usize) -> Result<Vec<Option<String>>> {
    let mut out = Vec::new();
    for b in batches {
        let a = cast(b, i, &Arrow::Utf8)?;
        out.extend(a.as_string::<i32>().iter().map(|s| s.map(String::from)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_read_without_its_parameters() {
        assert_eq!(
            endpoint("sc://spark.example.com:443/;use_ssl=true;token=secret").unwrap(),
            ("spark.example.com".to_string(), 443)
        );
        assert_eq!(endpoint("sc://h").unwrap(), ("h".to_string(), 15002));
        for bad in ["http://h:1", "sc://:1", "sc://h:port"] {
            assert!(endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chrono_patterns_become_spark_patterns() {
        assert_eq!(java_pattern("%m/%d/%Y %H:%M").unwrap(), "M/d/yyyy H:m");
        assert_eq!(java_pattern("%Y%m%d").unwrap(), "yyyyMMdd");
        assert_eq!(java_pattern("%d.%m.%Y %H:%M:%S").unwrap(), "d.M.yyyy H:m:s");
        assert!(java_pattern("%Y-%m-%dT%H").is_err());
        assert!(java_pattern("%j").is_err());
    }
}
