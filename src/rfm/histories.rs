//! Purchase histories for the predictive models, kept in the same pass as RFM: per
//! customer the first and last purchase period, the number of distinct periods, the value
//! of the first period and in all, and the distinct periods bought in after the calibration
//! end (the hold-out). One 12-byte entry per distinct (customer, period) pair, as for
//! invoices: an unsorted file can bring back a period already seen.

use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

use crate::predict::Summary;

const MS_PER_DAY: i64 = 86_400_000;
/// Added to a hold-out period in the set of periods seen.
const HOLDOUT: i64 = 1 << 40;

/// What a period is: a calendar day, or a week running Monday to Sunday (`lifetimes`'
/// `D` and `W` periods).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    #[default]
    Day,
    Week,
}

impl Period {
    /// The period a time (milliseconds) falls in. 1970-01-01 was a Thursday, so weeks
    /// start 3 days earlier in the count of days.
    pub fn of(self, millis: i64) -> i64 {
        let day = millis.div_euclid(MS_PER_DAY);
        match self {
            Period::Day => day,
            Period::Week => (day + 3).div_euclid(7),
        }
    }

    /// Periods per month, as `lifetimes` counts them for CLV.
    pub fn per_month(self) -> f64 {
        match self {
            Period::Day => 30.0,
            Period::Week => 4.345,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
        }
    }
}

/// Every customer's summary at the end and hold-out periods, in table order (`None` for a
/// customer without a purchase before the calibration end), with the period.
pub type Summaries = (Period, Vec<Option<(Summary, u32)>>);

/// One customer's history so far.
#[derive(Debug, Clone, Copy)]
struct History {
    first: i64,
    last: i64,
    periods: u32,
    first_value: f64,
    total: f64,
    holdout: u32,
}

/// Every customer's history.
#[derive(Debug)]
pub struct Histories {
    period: Period,
    /// Purchases after this time (milliseconds) are the hold-out.
    calibration_end: Option<i64>,
    customers: Vec<History>,
    seen: FxHashSet<(u32, i64)>,
}

impl Histories {
    pub fn new(period: Period, calibration_end: Option<i64>) -> Histories {
        Histories {
            period,
            calibration_end,
            customers: Vec::new(),
            seen: FxHashSet::default(),
        }
    }

    /// Distinct (customer, period) pairs held.
    pub fn pairs(&self) -> usize {
        self.seen.len()
    }

    /// Takes one purchase line of customer `id`.
    pub fn add(&mut self, id: u32, millis: i64, value: f64) {
        let i = id as usize;
        if self.customers.len() <= i {
            let none = History {
                first: i64::MAX,
                last: i64::MIN,
                periods: 0,
                first_value: 0.0,
                total: 0.0,
                holdout: 0,
            };
            self.customers.resize(i + 1, none);
        }
        let period = self.period.of(millis);
        let holdout = self.calibration_end.is_some_and(|end| millis > end);
        // A hold-out period is counted apart from a calibration one, also when the
        // calibration end falls inside it (a week).
        let new = self
            .seen
            .insert((id, period + if holdout { HOLDOUT } else { 0 }));
        let h = &mut self.customers[i];
        if holdout {
            h.holdout += u32::from(new);
            return;
        }
        h.periods += u32::from(new);
        h.total += value;
        h.last = h.last.max(period);
        if period < h.first {
            (h.first, h.first_value) = (period, value);
        } else if period == h.first {
            h.first_value += value;
        }
    }

    /// Customer `id`'s summary at `end` (milliseconds), and its hold-out repeat periods;
    /// `None` for a customer with no purchase in the calibration period.
    pub fn summary(&self, id: usize, end: i64) -> Option<(Summary, u32)> {
        let h = self.customers.get(id).filter(|h| h.periods > 0)?;
        let x = f64::from(h.periods - 1);
        let end = self.period.of(end);
        let summary = Summary {
            x,
            t_x: (h.last - h.first) as f64,
            t: (end - h.first) as f64,
            spend: if x > 0.0 {
                (h.total - h.first_value) / x
            } else {
                0.0
            },
        };
        Some((summary, h.holdout))
    }

    pub fn period(&self) -> Period {
        self.period
    }

    /// The end the summaries are taken at: the calibration end, else the snapshot.
    pub fn end(&self, snapshot: i64) -> i64 {
        self.calibration_end.unwrap_or(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_a_history_in_any_order() {
        // 2023-04-17 was a Monday, 2023-04-23 a Sunday.
        let at = |d: u32, h: i64| {
            chrono::NaiveDate::from_ymd_opt(2023, 4, d)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_millis()
                + h * 3_600_000
        };
        assert_eq!(Period::Week.of(at(17, 0)), Period::Week.of(at(23, 23)));
        assert_ne!(Period::Week.of(at(23, 23)), Period::Week.of(at(24, 0)));
        let mut h = Histories::new(Period::Day, Some(at(28, 0)));
        for (d, v) in [
            (20, 5.0),
            (10, 3.0),
            (20, 1.0),
            (10, 2.0),
            (15, 4.0),
            (29, 9.0),
        ] {
            h.add(0, at(d, 12), v);
        }
        let (s, holdout) = h.summary(0, at(28, 0)).unwrap();
        assert_eq!((s.x, s.t_x, s.t), (2.0, 10.0, 18.0));
        assert_eq!(s.spend, (5.0 + 1.0 + 4.0) / 2.0);
        assert_eq!(holdout, 1);
        assert!(h.summary(1, at(28, 0)).is_none());
    }
}
