//! The per-customer accumulator: takes typed chunks in file order and keeps one small
//! record per customer (and, for `--frequency invoices`, one 64-bit invoice hash per distinct
//! invoice), never the lines. Every sum is taken in row order, as a single in-memory loop
//! over the file would take it, so the figures do not depend on how the file was cut.

use rustc_hash::{FxHashMap, FxHashSet};

use super::histories::{Histories, HistorySettings, Summaries};
use super::{Frequency, RfmTable};
use crate::clean::orders::Tail;
use crate::clean::typed::{CustomerKey, INHERITED, LATE, Lines, NO_INVOICE, RETURN};
use crate::clean::{EXAMPLES, Ledger, Netted, Returns, Rule};
use crate::dates::Zones;
use crate::ingest::{IngestError, InputLimits};

const MS_PER_DAY: i64 = 86_400_000;

/// A customer's net value with the residue of float addition removed (to a millionth):
/// 104.40 + 13.20 − 104.40 − 13.20 adds to ±1e-14 in one order or another, and the rule
/// "net value ≤ 0" must not depend on the order an engine added the lines in.
pub fn settled(value: f64) -> f64 {
    (value * 1e6).round() / 1e6
}

/// One customer's running figures.
#[derive(Debug, Clone)]
struct Customer {
    /// Latest purchase (not a return), `i64::MIN` before one.
    last: i64,
    /// Purchase lines (returns excluded).
    lines: u64,
    /// Distinct invoices among the purchase lines.
    invoices: u64,
    /// Kept lines, returns included (for the ledger when the customer is dropped).
    kept: u64,
    monetary: f64,
    /// Hash of the invoice of the customer's previous purchase line (0 = none).
    last_invoice: u64,
    returned: bool,
}

/// Rows and revenue removed by one rule.
#[derive(Debug, Clone, Default)]
struct Tally {
    rows: usize,
    revenue: f64,
    examples: Vec<u64>,
}

impl Tally {
    fn add(&mut self, row: u64, revenue: f64) {
        self.rows += 1;
        self.revenue += revenue;
        if self.examples.len() < EXAMPLES {
            self.examples.push(row);
        }
    }
}

fn text_of(key: &CustomerKey) -> &str {
    match key {
        CustomerKey::Text(s) => s,
        CustomerKey::Num(_) => "",
    }
}

/// One customer's figures as an engine returns them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Aggregate {
    /// Latest purchase (returns excluded), in milliseconds.
    pub last: Option<i64>,
    /// Purchase lines (returns excluded).
    pub lines: u64,
    /// Distinct invoices among the purchase lines (a line without an invoice counts as one).
    pub invoices: u64,
    /// Kept lines, returns included.
    pub kept: u64,
    pub monetary: f64,
    pub returned: bool,
}

/// Distinct currencies a pass takes before it calls the column something else.
const MAX_CURRENCIES: usize = 1_000;

/// What the export's order fields told so far.
#[derive(Debug, Default)]
struct OrderState {
    /// The last order seen, for lines of it at the start of the next chunk.
    tail: Option<Tail>,
    /// Kept rows per currency.
    currencies: Vec<(Box<str>, u64)>,
    refunds: Netted,
    zones: Zones,
}

impl OrderState {
    fn count(&mut self, code: &str, rows: u64, path: &str) -> Result<(), IngestError> {
        let full = self.currencies.len() >= MAX_CURRENCIES;
        match self.currencies.iter_mut().find(|(c, _)| &**c == code) {
            Some((_, n)) => *n += rows,
            None if full => {
                return Err(IngestError::Preset {
                    path: path.to_string(),
                    detail: format!(
                        "the currency column holds over {MAX_CURRENCIES} distinct values; is it a currency code?"
                    ),
                });
            }
            None => self.currencies.push((code.into(), rows)),
        }
        Ok(())
    }

    /// The verdict on a line that continues the last order (its currency counted when it
    /// is kept); `None` when the line is not of that order.
    fn inherit(&mut self, invoice: u64, path: &str) -> Result<Option<Rule>, IngestError> {
        let Some(tail) = self.tail.clone().filter(|t| t.invoice == invoice) else {
            return Ok(None);
        };
        if let (None, Some(code)) = (tail.verdict, &tail.currency) {
            self.count(code, 1, path)?;
        }
        Ok(tail.verdict)
    }

    fn take(&mut self, lines: &mut Lines, path: &str) -> Result<(), IngestError> {
        self.zones.merge(std::mem::take(&mut lines.zones));
        self.refunds.orders += lines.refunds.0;
        self.refunds.amount += lines.refunds.1;
        for (code, rows) in std::mem::take(&mut lines.currencies) {
            if rows > 0 {
                self.count(&code, rows, path)?;
            }
        }
        Ok(())
    }
}

/// What the accumulator needs to know of the run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub path: String,
    pub frequency: Frequency,
    pub returns: Returns,
    pub limits: InputLimits,
    pub emails: bool,
    /// Keep purchase histories for the predictive models.
    pub histories: Option<HistorySettings>,
}

/// The accumulated state of a pass.
pub struct Accumulator {
    settings: Settings,
    index: FxHashMap<CustomerKey, u32>,
    keys: Vec<CustomerKey>,
    customers: Vec<Customer>,
    emails: Vec<Option<Box<str>>>,
    /// Net mode: each customer's first kept rows, for the ledger's examples.
    first_rows: Vec<[u64; EXAMPLES]>,
    invoices: FxHashSet<(u32, u64)>,
    rows: u64,
    revenue_in: f64,
    tallies: Vec<Tally>,
    kept_value: f64,
    netted: usize,
    max_date: Option<i64>,
    orders: OrderState,
    histories: Option<Histories>,
}

/// The end of a pass: the RFM table and its ledger.
#[derive(Debug, Clone)]
pub struct Totals {
    pub rows: usize,
    pub ledger: Ledger,
    pub table: RfmTable,
    /// Each customer's first email, in table order, when the input maps one.
    pub emails: Option<Vec<String>>,
    /// Each customer's purchase history at the end (the calibration end, else the
    /// snapshot), in table order, when histories were kept.
    pub histories: Option<Summaries>,
    pub snapshot: i64,
}

impl Accumulator {
    pub fn new(settings: Settings) -> Accumulator {
        Accumulator {
            index: FxHashMap::default(),
            keys: Vec::new(),
            customers: Vec::new(),
            emails: Vec::new(),
            first_rows: Vec::new(),
            invoices: FxHashSet::default(),
            rows: 0,
            revenue_in: 0.0,
            tallies: vec![Tally::default(); Rule::ALL.len()],
            kept_value: 0.0,
            netted: 0,
            max_date: None,
            orders: OrderState::default(),
            histories: settings.histories.map(Histories::new),
            settings,
        }
    }

    /// Rows taken so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The global index of each of the chunk's customers (new ones are added).
    fn resolve(&mut self, keys: Vec<CustomerKey>) -> Result<Vec<u32>, IngestError> {
        let mut ids = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(&id) = self.index.get(&key) {
                ids.push(id);
                continue;
            }
            let id = self.keys.len() as u32;
            let limits = &self.settings.limits;
            limits.check_customers(&self.settings.path, u64::from(id) + 1)?;
            limits.check_state(&self.settings.path, u64::from(id) + 1, self.pairs())?;
            self.index.insert(key.clone(), id);
            self.keys.push(key);
            {
                self.customers.push(Customer {
                    last: i64::MIN,
                    lines: 0,
                    invoices: 0,
                    kept: 0,
                    monetary: 0.0,
                    last_invoice: 0,
                    returned: false,
                });
                if self.settings.emails {
                    self.emails.push(None);
                }
                if self.settings.returns == Returns::Net {
                    self.first_rows.push([u64::MAX; EXAMPLES]);
                }
            }
            ids.push(id);
        }
        Ok(ids)
    }

    /// Kept rows per currency, the first date with a UTC offset and the first without.
    pub fn orders(&self) -> (&[(Box<str>, u64)], &Zones) {
        (&self.orders.currencies, &self.orders.zones)
    }

    /// Takes the next chunk of the file.
    pub fn add(&mut self, mut lines: Lines) -> Result<(), IngestError> {
        self.orders.take(&mut lines, &self.settings.path)?;
        let first = self.rows;
        self.rows += lines.rows as u64;
        self.settings
            .limits
            .check_rows(&self.settings.path, self.rows, None)?;
        for &r in &lines.revenue {
            self.revenue_in += r;
        }
        for (i, (&o, &r)) in lines.outcome.iter().zip(&lines.revenue).enumerate() {
            if o != 0 {
                self.tallies[usize::from(o - 1)].add(first + i as u64, r);
            }
        }
        if let Some(d) = lines.max_date {
            self.max_date = Some(self.max_date.map_or(d, |m| m.max(d)));
        }
        let ids = self.resolve(lines.keys)?;
        for (local, email) in lines.emails {
            let slot = &mut self.emails[ids[local as usize] as usize];
            if slot.is_none() {
                *slot = Some(email.into());
            }
        }
        for k in 0..lines.kept_row.len() {
            let value = lines.kept_value[k];
            let flags = lines.kept_flags[k];
            let row = first + u64::from(lines.kept_row[k]);
            if flags & INHERITED != 0
                && let Some(rule) = self
                    .orders
                    .inherit(lines.kept_invoice[k], &self.settings.path)?
            {
                self.tallies[rule as usize].add(row, value);
                continue;
            }
            self.kept_value += value;
            if flags & LATE != 0 {
                self.tallies[Rule::AfterSnapshot as usize].add(row, value);
                continue;
            }
            let id = ids[lines.kept_customer[k] as usize];
            self.take_line(
                id,
                row,
                value,
                flags,
                lines.kept_millis[k],
                lines.kept_invoice[k],
            )?;
        }
        if lines.tail.is_some() {
            self.orders.tail = lines.tail;
        }
        Ok(())
    }

    fn take_line(
        &mut self,
        id: u32,
        row: u64,
        value: f64,
        flags: u8,
        millis: i64,
        invoice: u64,
    ) -> Result<(), IngestError> {
        let c = &mut self.customers[id as usize];
        c.monetary += value;
        c.kept += 1;
        if let Some(first) = self.first_rows.get_mut(id as usize)
            && let Some(slot) = first.iter_mut().find(|r| **r == u64::MAX)
        {
            *slot = row;
        }
        if flags & RETURN != 0 {
            c.returned = true;
            self.netted += 1;
            return Ok(());
        }
        c.lines += 1;
        c.last = c.last.max(millis);
        let mut new_invoice = false;
        if self.settings.frequency == Frequency::Invoices {
            if flags & NO_INVOICE != 0 {
                c.invoices += 1;
            } else if invoice != c.last_invoice {
                c.last_invoice = invoice;
                if self.invoices.insert((id, invoice)) {
                    c.invoices += 1;
                    new_invoice = true;
                }
            }
        }
        if new_invoice {
            self.check_pairs(self.invoices.len() as u64)?;
        }
        let new_period = self.histories.as_mut().and_then(|h| {
            let before = h.pairs();
            h.add(id, millis, value);
            (h.pairs() > before).then(|| h.pairs() as u64)
        });
        if let Some(periods) = new_period {
            self.check_pairs(periods)?;
        }
        Ok(())
    }

    /// Distinct (customer, invoice) and (customer, period) pairs kept so far.
    fn pairs(&self) -> u64 {
        let periods = self.histories.as_ref().map_or(0, |h| h.pairs());
        (self.invoices.len() + periods) as u64
    }

    /// After a new pair: `max_invoices` for this kind of pair, and the memory of the state.
    fn check_pairs(&self, of_kind: u64) -> Result<(), IngestError> {
        let (limits, path) = (&self.settings.limits, &self.settings.path);
        limits.check_invoices(path, of_kind)?;
        limits.check_state(path, self.keys.len() as u64, self.pairs())
    }

    /// Takes what an engine aggregated where the data lives: the rows and revenue read, the
    /// last date, and each rule's rows and revenue (no example rows: a table has no row
    /// numbers). Customers come with [`Accumulator::add_customer`].
    pub fn add_counts(
        &mut self,
        rows: u64,
        revenue_in: f64,
        kept_value: f64,
        max_date: Option<i64>,
        removed: &[(Rule, usize, f64)],
    ) -> Result<(), IngestError> {
        self.rows += rows;
        (self.settings.limits).check_rows(&self.settings.path, self.rows, None)?;
        self.revenue_in += revenue_in;
        self.kept_value += kept_value;
        self.max_date = self.max_date.max(max_date);
        for &(rule, rows, revenue) in removed {
            // Late rows share one tally, as in the file pass.
            let rule = match rule {
                Rule::AfterRun => Rule::AfterSnapshot,
                other => other,
            };
            let t = &mut self.tallies[rule as usize];
            t.rows += rows;
            t.revenue += revenue;
        }
        Ok(())
    }

    /// Takes one customer's figures as an engine aggregated them.
    pub fn add_customer(&mut self, key: &str, c: Aggregate) -> Result<(), IngestError> {
        let id = self.resolve(vec![CustomerKey::of_text(key)])?[0] as usize;
        let slot = &mut self.customers[id];
        slot.last = slot.last.max(c.last.unwrap_or(i64::MIN));
        slot.lines += c.lines;
        slot.invoices += c.invoices;
        slot.kept += c.kept;
        slot.monetary += c.monetary;
        slot.returned |= c.returned;
        self.netted += c.kept.saturating_sub(c.lines) as usize;
        Ok(())
    }

    /// The RFM table and the ledger. `snapshot` = `None` takes the last date + 1 day.
    /// `None` when no row has a readable date.
    pub fn finish(self, snapshot: Option<i64>, date_format: String) -> Option<Totals> {
        let snapshot_given = snapshot.is_some();
        let snapshot = snapshot.or(self.max_date.map(|d| d + MS_PER_DAY))?;
        let n = self.rows as usize;
        let mut ledger = Ledger {
            rows_in: n,
            rows_kept: n,
            customers: 0,
            revenue_in: self.revenue_in,
            revenue_kept: self.revenue_in,
            removed: Vec::new(),
            returns_netted: (self.settings.returns == Returns::Net).then_some(self.netted),
            date_format,
            note: None,
            refunds_netted: (self.orders.refunds.orders > 0).then_some(self.orders.refunds),
            currency: match self.orders.currencies.as_slice() {
                [(code, _)] => Some(code.to_string()),
                _ => None,
            },
        };
        let enter = |ledger: &mut Ledger, rule: Rule, t: &Tally| {
            ledger.add(rule, t.rows, t.revenue, &t.examples)
        };
        for rule in &Rule::ALL[..Rule::AfterSnapshot as usize] {
            enter(&mut ledger, *rule, &self.tallies[*rule as usize]);
        }
        // Kept value as used downstream (netted returns count with a negative sign).
        ledger.revenue_kept = self.kept_value;
        // Late rows were tallied in one place: after the snapshot given, else after the run.
        let late = match snapshot_given {
            true => Rule::AfterSnapshot,
            false => Rule::AfterRun,
        };
        enter(
            &mut ledger,
            late,
            &self.tallies[Rule::AfterSnapshot as usize],
        );
        let dropped = self.dropped(&mut ledger);
        let (table, emails, histories) = self.table(snapshot, &dropped);
        ledger.customers = table.len();
        Some(Totals {
            rows: n,
            ledger,
            table,
            emails,
            histories,
            snapshot,
        })
    }

    /// Customers left with no purchase, or whose netted returns bring their value to ≤ 0
    /// ([`settled`]: returns that cancel every purchase leave exactly 0, not a float residue);
    /// their kept rows go into the ledger. (A customer whose purchases were all free items,
    /// with no returns, stays: monetary 0 is a real value.)
    fn dropped(&self, ledger: &mut Ledger) -> Vec<bool> {
        let dropped: Vec<bool> = self
            .customers
            .iter()
            .map(|c| {
                let m = settled(c.monetary);
                c.lines == 0 || m < 0.0 || (c.returned && m <= 0.0)
            })
            .collect();
        let (mut rows, mut revenue, mut examples) = (0usize, 0.0, Vec::new());
        for (i, c) in self.customers.iter().enumerate() {
            if dropped[i] && c.kept > 0 {
                rows += c.kept as usize;
                revenue += c.monetary;
                if let Some(first) = self.first_rows.get(i) {
                    examples.extend(first.iter().copied().filter(|r| *r != u64::MAX));
                }
            }
        }
        examples.sort_unstable();
        ledger.add(Rule::NetValueNotPositive, rows, revenue, &examples);
        dropped
    }

    /// The kept customers ordered by id (numerically where ids are whole numbers; ties keep
    /// the order of first appearance).
    fn table(
        self,
        snapshot: i64,
        dropped: &[bool],
    ) -> (RfmTable, Option<Vec<String>>, Option<Summaries>) {
        let mut order: Vec<(Option<u64>, usize)> = (0..self.keys.len())
            .filter(|&c| !dropped[c])
            .map(|c| (self.keys[c].number(), c))
            .collect();
        order.sort_by(|(na, a), (nb, b)| match (na, nb) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => text_of(&self.keys[*a]).cmp(text_of(&self.keys[*b])),
        });
        let freq = |c: &Customer| match self.settings.frequency {
            Frequency::Lines => c.lines,
            Frequency::Invoices => c.invoices,
        };
        let table = RfmTable {
            customer_ids: order.iter().map(|(_, c)| self.keys[*c].display()).collect(),
            recency: order
                .iter()
                .map(|(_, c)| (snapshot - self.customers[*c].last).div_euclid(MS_PER_DAY) as f64)
                .collect(),
            frequency: order
                .iter()
                .map(|(_, c)| freq(&self.customers[*c]) as f64)
                .collect(),
            monetary: order
                .iter()
                .map(|(_, c)| self.customers[*c].monetary)
                .collect(),
        };
        let emails = self.settings.emails.then(|| {
            order
                .iter()
                .map(|(_, c)| self.emails[*c].as_deref().unwrap_or("").to_string())
                .collect()
        });
        let histories = self.histories.as_ref().map(|h| {
            let ids: Vec<usize> = order.iter().map(|(_, c)| *c).collect();
            h.summaries(&ids, snapshot)
        });
        (table, emails, histories)
    }
}

#[cfg(test)]
mod settle_tests {
    #[test]
    fn returns_that_cancel_every_purchase_settle_to_zero_in_any_order() {
        let lines = [104.4, 13.2, 30.0, 69.12, 30.0, 30.0, 30.0];
        let forward: f64 = lines.iter().sum::<f64>() - lines.iter().sum::<f64>();
        let mut mixed = 0.0;
        for (i, v) in lines.iter().enumerate() {
            mixed += v;
            mixed -= lines[lines.len() - 1 - i];
        }
        assert_eq!(super::settled(forward), 0.0);
        assert_eq!(super::settled(mixed), 0.0);
        assert_eq!(super::settled(0.01), 0.01);
        assert_eq!(super::settled(-0.01), -0.01);
    }
}
