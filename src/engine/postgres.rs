//! PostgreSQL: the cleaning rules and the RFM aggregation run as SQL where the data lives;
//! only the ledger's counts and one row per customer (binary `COPY … TO STDOUT`) come back.
//! The password comes from `PGPASSWORD` or `[engine] password`, never from the URL.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::{StreamExt, pin_mut};
use tokio_postgres::binary_copy::BinaryCopyOutStream;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Config, NoTls};

use crate::clean::{Returns, Rule};
use crate::ingest::{FileFormat, Resolved, Role, SourceInfo, resolve_columns};
use crate::rfm::accumulate::{Accumulator, Aggregate, Settings as AccSettings};
use crate::scan::{Scan, ScanOptions};

const MS_PER_DAY: i64 = 86_400_000;

/// What the ledger says instead of example rows.
pub const NO_EXAMPLES: &str = "a database table has no row numbers: no example rows";

/// The engine's errors whose remedy depends on who reads it (see [`crate::remedy`]).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{name}: column `{column}` has type {found}, not {wanted}")]
    Type {
        name: String,
        column: String,
        found: String,
        wanted: &'static str,
    },
    #[error("{name}: no answer within {secs} s")]
    Silent { name: String, secs: u64 },
}

impl crate::remedy::Remedied for EngineError {
    fn remedy(&self) -> Option<crate::remedy::Remedy> {
        Some(match self {
            EngineError::Type { .. } => crate::remedy::Remedy::CastInQuery,
            EngineError::Silent { .. } => crate::remedy::Remedy::RaiseEngineTimeout,
        })
    }
}

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
        let mut config: Config = url.parse().map_err(|_| {
            anyhow::anyhow!(
                "postgres: `--input` is not a PostgreSQL URL; write postgres://USER@HOST:PORT/DB"
            )
        })?;
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
            ("", "") => bail!("{name}: name the data with --table NAME or --query \"SELECT …\""),
            (t, "") => t.split('.').map(ident).collect::<Vec<_>>().join("."),
            ("", q) => format!("({q}) AS src"),
            _ => bail!("{name}: give --table or --query, not both"),
        };
        Ok(Target {
            config,
            name,
            from,
            timeout,
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
    let sql = Sql::new(target, &resolved, &types, opts)?;
    let mut acc = Accumulator::new(AccSettings {
        path: target.name.clone(),
        frequency: opts.frequency,
        returns: opts.clean.returns,
        limits: opts.read.limits,
        emails: false,
    });
    let max_date = ledger(&client, target, &sql, &mut acc).await?;
    let snapshot = opts.clean.snapshot.or(max_date.map(|d| d + MS_PER_DAY));
    if let (Some(s), Some(_)) = (snapshot, opts.clean.snapshot) {
        late(&client, target, &sql, s, &mut acc).await?;
    }
    if let Some(s) = snapshot {
        customers(
            &client,
            target,
            &sql.customers(opts.clean.snapshot.map(|_| s)),
            &mut acc,
        )
        .await?;
    }
    let mut totals = acc
        .finish(opts.clean.snapshot, "native timestamp".into())
        .with_context(|| format!("{}: no row has a date", target.name))?;
    totals.ledger.note = Some(NO_EXAMPLES.into());
    let source = SourceInfo {
        path: target.name.clone(),
        format: FileFormat::Postgres,
        sha256: String::new(),
        bytes: 0,
        encoding: None,
        delimiter: None,
        sheet: None,
        columns: resolved.manifest(),
    };
    Ok(Scan {
        source,
        totals,
        date_ambiguous: false,
    })
}

async fn connect(target: &Target) -> Result<Client> {
    let connected = tokio::time::timeout(target.timeout, target.config.connect(NoTls)).await;
    let (client, connection) = match connected {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => bail!(
            "{}: cannot connect ({}); check the host, port, user and PGPASSWORD",
            target.name,
            db_message(&e)
        ),
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
        .batch_execute(&format!(
            "SET statement_timeout = {ms}; SET TIME ZONE 'UTC'"
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
fn db_message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_string())
}

/// The statements of one run.
struct Sql {
    /// The classified rows: `c, inv, ms, value, cancel, rule` (rule 0 = kept, else 1 + Rule).
    rows: String,
}

impl Sql {
    fn new(target: &Target, r: &Resolved, types: &[Type], opts: &ScanOptions) -> Result<Sql> {
        let col = |role: Role| r.found.get(&role).map(|(i, h)| (ident(h), &types[*i], h));
        let (cust, ..) = col(Role::Customer).expect("resolved");
        let (date, date_type, date_name) = col(Role::Date).expect("resolved");
        let d = match *date_type {
            Type::TIMESTAMP | Type::DATE => format!("{date}::timestamp"),
            Type::TIMESTAMPTZ => format!("({date} AT TIME ZONE 'UTC')"),
            ref t => {
                return Err(EngineError::Type {
                    name: target.name.clone(),
                    column: date_name.clone(),
                    found: t.to_string(),
                    wanted: "a date or timestamp",
                }
                .into());
            }
        };
        let number = |role: Role| -> Result<Option<String>> {
            let Some((c, t, name)) = col(role) else {
                return Ok(None);
            };
            match *t {
                Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::FLOAT4
                | Type::FLOAT8
                | Type::NUMERIC => Ok(Some(format!("{c}::float8"))),
                ref t => Err(EngineError::Type {
                    name: target.name.clone(),
                    column: name.clone(),
                    found: t.to_string(),
                    wanted: "a number",
                }
                .into()),
            }
        };
        let inv = col(Role::Invoice).map_or("NULL::text".into(), |(c, ..)| {
            format!("NULLIF(btrim({c}::text), '')")
        });
        let value = match number(Role::Amount)? {
            Some(a) => a,
            None => format!(
                "({} * {})",
                number(Role::Quantity)?.expect("resolved"),
                number(Role::Price)?.expect("resolved")
            ),
        };
        let (q, p) = (number(Role::Quantity)?, number(Role::Price)?);
        let mut rules = String::new();
        if opts.clean.returns == Returns::Drop {
            rules += &format!(" WHEN cancel THEN {}", 1 + Rule::Cancellation as u8);
        }
        rules += " WHEN cancel THEN 0";
        if r.found.contains_key(&Role::Amount) {
            rules += &format!(
                " WHEN value <= 0 THEN {}",
                1 + Rule::AmountNotPositive as u8
            );
        } else {
            rules += &format!(" WHEN q <= 0 THEN {}", 1 + Rule::QuantityNotPositive as u8);
            rules += &format!(" WHEN p < 0 THEN {}", 1 + Rule::PriceNegative as u8);
            if opts.clean.drop_zero_price {
                rules += &format!(" WHEN p = 0 THEN {}", 1 + Rule::PriceZero as u8);
            }
        }
        let or_null = |e: &Option<String>| e.clone().unwrap_or_else(|| "NULL::float8".into());
        let rows = format!(
            "WITH src AS (SELECT btrim(btrim(btrim({cust}::text), '\"')) AS k, {inv} AS inv, {d} AS d, \
                                 {q} AS q, {p} AS p, {value} AS value FROM {from}), \
             cls AS (SELECT CASE WHEN k = '' OR lower(k) IN ('nan', 'null') THEN NULL \
                                 WHEN k ~ '^[0-9]+\\.0*$' THEN split_part(k, '.', 1) ELSE k END AS c, \
                            inv, (extract(epoch FROM d) * 1000)::int8 AS ms, q, p, value, \
                            COALESCE(upper(left(inv, 1)) = 'C', false) AS cancel FROM src), \
             ruled AS (SELECT *, CASE WHEN c IS NULL THEN {mc} WHEN ms IS NULL THEN {bd} \
                                      WHEN value IS NULL THEN {bn}{rules} ELSE 0 END AS rule FROM cls)",
            q = or_null(&q),
            p = or_null(&p),
            from = target.from,
            mc = 1 + Rule::MissingCustomer as u8,
            bd = 1 + Rule::BadDate as u8,
            bn = 1 + Rule::BadNumber as u8,
        );
        Ok(Sql { rows })
    }

    /// Each rule's rows and revenue, the signed kept value and the last date.
    fn ledger(&self) -> String {
        format!(
            "{} SELECT rule, count(*)::int8, COALESCE(sum(value), 0)::float8, \
             COALESCE(sum(CASE WHEN cancel THEN -abs(value) ELSE value END), 0)::float8, max(ms) \
             FROM ruled GROUP BY rule",
            self.rows
        )
    }

    /// Kept rows after an explicit snapshot.
    fn late(&self, snapshot: i64) -> String {
        format!(
            "{} SELECT count(*)::int8, COALESCE(sum(CASE WHEN cancel THEN -abs(value) ELSE value END), 0)::float8 \
             FROM ruled WHERE rule = 0 AND ms > {snapshot}",
            self.rows
        )
    }

    /// One row per customer: last purchase, purchase lines, invoices, kept lines, value,
    /// whether any line was a return.
    fn customers(&self, late_after: Option<i64>) -> String {
        let keep = late_after.map_or(String::new(), |s| format!(" AND ms <= {s}"));
        format!(
            "COPY ({} SELECT c, max(ms) FILTER (WHERE NOT cancel), \
               count(*) FILTER (WHERE NOT cancel), \
               (count(DISTINCT inv) FILTER (WHERE NOT cancel AND inv IS NOT NULL) \
                 + count(*) FILTER (WHERE NOT cancel AND inv IS NULL))::int8, \
               count(*), sum(CASE WHEN cancel THEN -abs(value) ELSE value END)::float8, bool_or(cancel) \
             FROM ruled WHERE rule = 0{keep} GROUP BY c) TO STDOUT (FORMAT binary)",
            self.rows
        )
    }
}

/// The ledger's counts into the accumulator; returns the last date.
async fn ledger(
    client: &Client,
    target: &Target,
    sql: &Sql,
    acc: &mut Accumulator,
) -> Result<Option<i64>> {
    let rows = client
        .query(&sql.ledger(), &[])
        .await
        .map_err(|e| query_error(target, &e))?;
    let (mut n, mut revenue, mut kept, mut max) = (0u64, 0.0, 0.0, None);
    let mut removed = Vec::new();
    for row in rows {
        let (rule, count, value): (i32, i64, f64) = (row.get(0), row.get(1), row.get(2));
        n += count as u64;
        revenue += value;
        max = max.max(row.get::<_, Option<i64>>(4));
        match rule {
            0 => kept += row.get::<_, f64>(3),
            r => removed.push((Rule::ALL[r as usize - 1], count as usize, value)),
        }
    }
    removed.sort_by_key(|(r, ..)| *r);
    acc.add_counts(n, revenue, kept, max, &removed)?;
    Ok(max)
}

async fn late(
    client: &Client,
    target: &Target,
    sql: &Sql,
    snapshot: i64,
    acc: &mut Accumulator,
) -> Result<()> {
    let row = client
        .query_one(&sql.late(snapshot), &[])
        .await
        .map_err(|e| query_error(target, &e))?;
    let (count, value): (i64, f64) = (row.get(0), row.get(1));
    acc.add_counts(
        0,
        0.0,
        0.0,
        None,
        &[(Rule::AfterSnapshot, count as usize, value)],
    )?;
    Ok(())
}

/// One row per customer, through binary COPY.
async fn customers(
    client: &Client,
    target: &Target,
    copy: &str,
    acc: &mut Accumulator,
) -> Result<()> {
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
    while let Some(row) = rows.next().await {
        let row = row.map_err(|e| query_error(target, &e))?;
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
    Ok(())
}

fn query_error(target: &Target, e: &tokio_postgres::Error) -> anyhow::Error {
    anyhow::anyhow!("{}: the query failed ({})", target.name, db_message(e))
}
