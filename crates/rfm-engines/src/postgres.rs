//! PostgreSQL: the cleaning rules and the RFM aggregation run as SQL where the data lives;
//! only the ledger's counts and one row per customer (binary `COPY … TO STDOUT`) come back.
//! The password comes from `PGPASSWORD` or `[engine] password`, never from the URL.

use std::time::Duration;

use anyhow::{Result, bail};
use futures::{StreamExt, pin_mut};
use tokio_postgres::binary_copy::BinaryCopyOutStream;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Config};

use rfm_core::ingest::{FileFormat, Resolved, Role, resolve_columns};
use rfm_core::rfm::accumulate::{Accumulator, Aggregate};
use rfm_core::scan::{Scan, ScanOptions};

use super::EngineError;
use super::sql::{Columns, Dialect, Sql};

/// Whether an `--input` names a PostgreSQL database.
pub fn is_url(input: &str) -> bool {
    input.starts_with("postgres://") || input.starts_with("postgresql://")
}

/// Where to read: the database and the table or query.
pub struct Target {
    config: Config,
    /// `user@host:port/db`, for messages (never the password).
    pub name: String,
    /// The SQL after `FROM`: a quoted table name or `(query) AS src`.
    from: String,
    timeout: Duration,
    /// How the server's TLS certificate is checked (sslmode).
    verify: super::pgtls::Verify,
}

impl Target {
    /// `url` with the password from `password` (the environment or the settings).
    pub fn new(
        url: &str,
        table: &str,
        query: &str,
        password: &str,
        timeout: Duration,
    ) -> Result<Target> {
        let (url, verify) = super::pgtls::mode(url)?;
        let mut config: Config = url.parse().map_err(|_| EngineError::NotPostgres)?;
        if config.get_password().is_some() {
            bail!(
                "postgres: the URL holds a password; remove it and set PGPASSWORD (or [engine] password in the settings) instead"
            );
        }
        config.connect_timeout(timeout);
        let (host, port) = address(&config);
        let user = config.get_user().unwrap_or("").to_string();
        let db = config.get_dbname().unwrap_or("").to_string();
        let name = format!("postgres://{user}@{host}:{port}/{db}");
        // As libpq: PGPASSWORD (or the settings), else the password file.
        let password = match password {
            "" => super::pgpass::lookup(&host, port, &db, &user).unwrap_or_default(),
            p => p.to_string(),
        };
        if !password.is_empty() {
            config.password(password);
        }
        let from = match (table.trim(), query.trim()) {
            ("", "") => return Err(EngineError::NoData { name, spark: false }.into()),
            (t, "") => t.split('.').map(ident).collect::<Vec<_>>().join("."),
            ("", q) => format!("({q}) AS src"),
            _ => return Err(EngineError::TwoData { name, spark: false }.into()),
        };
        Ok(Target {
            config,
            name,
            from,
            timeout,
            verify,
        })
    }
}

/// The first host and port of the URL (libpq's defaults otherwise).
fn address(config: &Config) -> (String, u16) {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    (host, config.get_ports().first().copied().unwrap_or(5432))
}

/// A quoted identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The pass, run by the database: the same result as the local pass over the same rows,
/// without example row numbers.
pub async fn scan(target: &Target, opts: &ScanOptions) -> Result<Scan> {
    let client = connect(target).await?;
    let (headers, types) = columns(&client, target).await?;
    let resolved = resolve_columns(&opts.read.columns, &headers, &target.name)?;
    let cols = typed_columns(target, &resolved, &types)?;
    let sql = Sql::new(&Postgres, &cols, &target.from, opts);
    let mut acc = super::accumulator(&target.name, opts);
    let rows = query(&client, target, &sql.ledger()).await?;
    let max_ms = super::add_ledger(&mut acc, rows.iter().map(ledger_row).collect())?;
    if super::snapshot(opts, max_ms).is_some() {
        let copy = format!("COPY ({}) TO STDOUT (FORMAT binary)", sql.customers());
        customers(&client, target, &copy, &mut acc).await?;
    }
    super::finish(
        acc,
        opts,
        &target.name,
        FileFormat::Postgres,
        &resolved,
        "native timestamp",
    )
}

async fn connect(target: &Target) -> Result<Client> {
    let tls = super::pgtls::connector(target.verify)?;
    let connected = tokio::time::timeout(target.timeout, target.config.connect(tls)).await;
    let (client, connection) = match connected {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            let why = db_message(&e);
            let tls = if why.contains("TLS") || why.contains("certificate") {
                " (TLS: set PGSSLROOTCERT to the server's CA certificate, or sslmode in the URL)"
            } else {
                ""
            };
            bail!(
                "{}: cannot connect ({why}); check the host, port, user and PGPASSWORD{tls}",
                target.name
            )
        }
        Err(_) => {
            return Err(EngineError::Silent {
                name: target.name.clone(),
                secs: target.timeout.as_secs(),
            }
            .into());
        }
    };
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("postgres connection: {e}");
        }
    });
    let ms = target.timeout.as_millis();
    client
        // work_mem: the per-customer sort of a large table stays in memory (4 MB spilled
        // hundreds of MB to disk on the 20x replica); this session only.
        .batch_execute(&format!(
            "SET statement_timeout = {ms}; SET TIME ZONE 'UTC'; SET work_mem = '64MB'"
        ))
        .await?;
    Ok(client)
}

/// The columns of the table or query, without reading a row.
async fn columns(client: &Client, target: &Target) -> Result<(Vec<String>, Vec<Type>)> {
    let stmt = client
        .prepare(&format!("SELECT * FROM {} LIMIT 0", target.from))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{}: cannot read {} ({})",
                target.name,
                target.from,
                db_message(&e)
            )
        })?;
    Ok(stmt
        .columns()
        .iter()
        .map(|c| (c.name().to_string(), c.type_().clone()))
        .unzip())
}

/// The server's own message where it sent one.
/// The server's own message where it sent one, else the error and its causes (bounded).
fn db_message(e: &tokio_postgres::Error) -> String {
    if let Some(d) = e.as_db_error() {
        return d.message().to_string();
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    rfm_core::bounded::value(&text, 300)
}

/// PostgreSQL's spellings.
struct Postgres;

impl Dialect for Postgres {
    fn ident(&self, name: &str) -> String {
        ident(name)
    }
    fn text(&self, expr: &str) -> String {
        format!("({expr})::text")
    }
    fn float(&self, expr: &str) -> String {
        format!("({expr})::float8")
    }
    fn int8(&self, expr: &str) -> String {
        format!("({expr})::int8")
    }
    fn matches(&self, expr: &str, re: &str) -> String {
        format!("{expr} ~ '{re}'")
    }
}

/// The mapped columns as SQL of the right type; a column of the wrong type is refused.
fn typed_columns(target: &Target, r: &Resolved, types: &[Type]) -> Result<Columns> {
    let d = Postgres;
    let col = |role: Role| r.found.get(&role).map(|(i, h)| (ident(h), &types[*i], h));
    let wrong = |name: &String, t: &Type, wanted| EngineError::Type {
        name: target.name.clone(),
        column: name.clone(),
        found: t.to_string(),
        wanted,
        spark: false,
    };
    let (cust, cust_type, _) = col(Role::Customer).expect("resolved");
    let canonical = matches!(
        *cust_type,
        Type::INT2 | Type::INT4 | Type::INT8 | Type::FLOAT4 | Type::FLOAT8
    );
    let (date, date_type, date_name) = col(Role::Date).expect("resolved");
    let ms = match *date_type {
        Type::TIMESTAMP | Type::DATE => format!("{date}::timestamp"),
        Type::TIMESTAMPTZ => format!("({date} AT TIME ZONE 'UTC')"),
        ref t => return Err(wrong(date_name, t, "a date or timestamp").into()),
    };
    let number = |role: Role| -> Result<Option<String>> {
        let Some((c, t, name)) = col(role) else {
            return Ok(None);
        };
        match *t {
            Type::INT2 | Type::INT4 | Type::INT8 | Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC => {
                Ok(Some(d.float(&c)))
            }
            ref t => Err(wrong(name, t, "a number").into()),
        }
    };
    Ok(Columns {
        // Integers and floats print as the id (float8 17850 as `17850`); numeric keeps its
        // scale (`17850.0`) and text may hold anything.
        customer: if canonical { cust } else { d.text(&cust) },
        customer_canonical: canonical,
        invoice: col(Role::Invoice).map(|(c, ..)| d.text(&c)),
        // date_part is double precision (extract is numeric since PostgreSQL 14: slower).
        ms: d.int8(&format!("date_part('epoch', {ms}) * 1000")),
        quantity: number(Role::Quantity)?,
        price: number(Role::Price)?,
        amount: number(Role::Amount)?,
    })
}

/// A statement's rows.
async fn query(client: &Client, target: &Target, sql: &str) -> Result<Vec<tokio_postgres::Row>> {
    tracing::debug!("{}: {sql}", target.name);
    client
        .query(sql, &[])
        .await
        .map_err(|e| query_error(target, &e))
}

fn ledger_row(row: &tokio_postgres::Row) -> super::LedgerRow {
    super::LedgerRow {
        rule: row.get::<_, i32>(0).into(),
        count: row.get(1),
        revenue: row.get(2),
        kept: row.get(3),
        max_ms: row.get(4),
    }
}

/// One row per customer, through binary COPY.
async fn customers(
    client: &Client,
    target: &Target,
    copy: &str,
    acc: &mut Accumulator,
) -> Result<()> {
    tracing::debug!("{}: {copy}", target.name);
    let stream = client
        .copy_out(copy)
        .await
        .map_err(|e| query_error(target, &e))?;
    let types = [
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::FLOAT8,
        Type::BOOL,
    ];
    let rows = BinaryCopyOutStream::new(stream, &types);
    pin_mut!(rows);
    // The bytes on the wire: per row a CopyData message (5), a field count (2), and per
    // field a length (4) and its value (the id's text, 8 per number, 1 for the flag).
    let (mut bytes, mut n) = (0usize, 0usize);
    while let Some(row) = rows.next().await {
        let row = row.map_err(|e| query_error(target, &e))?;
        let last = usize::from(row.get::<Option<i64>>(1).is_some()) * 8;
        bytes += 5 + 2 + 7 * 4 + row.get::<&str>(0).len() + last + 4 * 8 + 1;
        n += 1;
        let agg = Aggregate {
            last: row.get::<Option<i64>>(1),
            lines: row.get::<i64>(2) as u64,
            invoices: row.get::<i64>(3) as u64,
            kept: row.get::<i64>(4) as u64,
            monetary: row.get::<f64>(5),
            returned: row.get::<bool>(6),
        };
        acc.add_customer(row.get::<&str>(0), agg)?;
    }
    tracing::info!("{}: {bytes} bytes came back for {n} customers", target.name);
    Ok(())
}

fn query_error(target: &Target, e: &tokio_postgres::Error) -> anyhow::Error {
    anyhow::anyhow!("{}: the query failed ({})", target.name, db_message(e))
}
