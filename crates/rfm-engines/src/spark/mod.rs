//! Spark through Spark Connect: the cleaning rules and the RFM aggregation run as Spark SQL
//! on the cluster, over a file the cluster reads (Parquet or CSV), a catalog table or a
//! query; only the ledger's counts and one row per customer come back, as Arrow batches.
//! The client (`apache-spark-connect`) blocks on its own runtime: call [`scan`] off the
//! async threads.

use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use arrow::array::{Array, RecordBatch};
use spark_connect::types::DataType;
use spark_connect::{SparkSession, SparkSessionBuilder};

mod answers;
mod patterns;

use answers::*;
use patterns::*;

use super::EngineError;
use super::sql::{Columns, Dialect, Sql};
use rfm_core::ingest::{FileFormat, Resolved, Role, resolve_columns};
use rfm_core::scan::{Scan, ScanOptions};

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
            ("", "", "") => return Err(EngineError::NoData { name, spark: true }.into()),
            _ => return Err(EngineError::TwoData { name, spark: true }.into()),
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
    let bad = || EngineError::Remote;
    let rest = remote.trim().strip_prefix("sc://").ok_or_else(bad)?;
    let authority = rest.split(['/', ';']).next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad())?),
        None => (authority, 15002),
    };
    if host.is_empty() {
        return Err(bad().into());
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
    let cannot = |why: String| EngineError::Unreachable {
        name: target.name.clone(),
        why,
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
    Err(cannot(last).into())
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
        let why = rfm_core::bounded::value(first.trim_end_matches('.'), 300);
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
                rfm_core::dates::detect_text(&values, name)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", self.name))?
                    .0
            }
        };
        let expr = date_millis(&format, col).map_err(|source| EngineError::DateFormat {
            name: self.name.clone(),
            column: name.to_string(),
            format: format.option_name(),
            source,
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
