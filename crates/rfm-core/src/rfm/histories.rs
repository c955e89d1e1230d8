//! Purchase histories for the predictive models, kept in the same pass as RFM: per
//! customer the first and last purchase period, the number of distinct periods, the value
//! of the first period and in all, and the distinct periods bought in after the calibration
//! end (the hold-out). One entry per distinct (customer, period) pair with its value, as
//! for invoices: an unsorted file can bring back a period already seen. After the pass the
//! pairs also give each customer's value in the last horizon before the end, and the repeat
//! purchases per period that the model-check chart tracks.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

const MS_PER_DAY: i64 = 86_400_000;
/// One customer's history in periods (days or weeks): `x` repeat purchase periods (distinct
/// periods with a purchase, minus one), `t_x` the last purchase period minus the first, `t`
/// the end minus the first, and `spend` the mean value of the repeat periods (0 without).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Summary {
    pub x: f64,
    pub t_x: f64,
    pub t: f64,
    pub spend: f64,
}

/// Added to a hold-out period in the set of periods seen.
const HOLDOUT: i64 = 1 << 40;

/// What a period is: a calendar day, or a week running Monday to Sunday (`lifetimes`'
/// `D` and `W` periods).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
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

/// Longest span, in periods, that the model-check counts per period cover (about 14 years
/// of days); a longer span leaves them out.
pub const MAX_TRACKING: i64 = 5000;

/// What the pass keeps histories for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistorySettings {
    pub period: Period,
    /// Purchases after this time (milliseconds) are the hold-out.
    pub calibration_end: Option<i64>,
    /// The horizon in days: each customer's value over that many days before the end is kept.
    pub horizon_days: u32,
}

/// One customer's history at the end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CustomerHistory {
    pub summary: Summary,
    /// Distinct periods bought in during the hold-out.
    pub holdout: u32,
    /// Value bought in the horizon's length of periods up to the end.
    pub recent: f64,
}

/// Per period from `first` on: customers whose first purchase falls in it, and repeat
/// purchases (distinct periods after a customer's first, hold-out included) in it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tracking {
    pub first: i64,
    pub births: Vec<u64>,
    pub repeats: Vec<u64>,
}

/// Every kept customer's history in table order (`None` for a customer without a purchase
/// before the calibration end), with the period, the end's period and the per-period
/// counts (`None` when the span is longer than [`MAX_TRACKING`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Summaries {
    pub period: Period,
    pub end_period: i64,
    pub customers: Vec<Option<CustomerHistory>>,
    pub tracking: Option<Tracking>,
}

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
    settings: HistorySettings,
    period: Period,
    customers: Vec<History>,
    /// Value per distinct (customer, period); hold-out periods offset by [`HOLDOUT`].
    seen: FxHashMap<(u32, i64), f64>,
}

impl Histories {
    pub fn new(settings: HistorySettings) -> Histories {
        Histories {
            settings,
            period: settings.period,
            customers: Vec::new(),
            seen: FxHashMap::default(),
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
        let holdout = self
            .settings
            .calibration_end
            .is_some_and(|end| millis > end);
        // A hold-out period is counted apart from a calibration one, also when the
        // calibration end falls inside it (a week).
        let key = (id, period + if holdout { HOLDOUT } else { 0 });
        let new = match self.seen.entry(key) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                *e.get_mut() += value;
                false
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(value);
                true
            }
        };
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

    /// Customer `id`'s summary at `end` (a period) and its hold-out repeat periods; `None`
    /// for a customer with no purchase in the calibration period.
    fn summary(&self, id: usize, end: i64) -> Option<(Summary, u32)> {
        let h = self.customers.get(id).filter(|h| h.periods > 0)?;
        let x = f64::from(h.periods - 1);
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

    /// The horizon in periods (at least one).
    fn horizon_periods(&self) -> i64 {
        let days = i64::from(self.settings.horizon_days);
        match self.period {
            Period::Day => days,
            Period::Week => (days + 6) / 7,
        }
        .max(1)
    }

    /// The summaries of customers `order` (ids, in table order) at the end: the calibration
    /// end, else `snapshot`.
    pub fn summaries(&self, order: &[usize], snapshot: i64) -> Summaries {
        let end = self
            .period
            .of(self.settings.calibration_end.unwrap_or(snapshot));
        // One slot per customer seen, indexed by id.
        let mut recent = vec![0.0; self.customers.len()];
        let from = end - self.horizon_periods();
        for (&(id, p), &v) in &self.seen {
            if p > from && p <= end {
                recent[id as usize] += v;
            }
        }
        let customers = order
            .iter()
            .map(|&c| {
                self.summary(c, end)
                    .map(|(summary, holdout)| CustomerHistory {
                        summary,
                        holdout,
                        recent: recent.get(c).copied().unwrap_or(0.0),
                    })
            })
            .collect();
        Summaries {
            period: self.period,
            end_period: end,
            customers,
            tracking: self.tracking(order, self.period.of(snapshot)),
        }
    }

    /// Births and repeat purchases per period of customers `order`, up to period `last`.
    fn tracking(&self, order: &[usize], last: i64) -> Option<Tracking> {
        let kept = |c: usize| self.customers.get(c).filter(|h| h.periods > 0);
        let first = order
            .iter()
            .filter_map(|&c| kept(c))
            .map(|h| h.first)
            .min()?;
        if last < first || last - first >= MAX_TRACKING {
            return None;
        }
        let len = (last - first + 1) as usize;
        let mut t = Tracking {
            first,
            births: vec![0; len],
            repeats: vec![0; len],
        };
        let mut in_order = vec![false; self.customers.len()];
        for &c in order {
            if let Some(h) = kept(c) {
                in_order[c] = true;
                t.births[(h.first - first) as usize] += 1;
            }
        }
        for &(id, key) in self.seen.keys() {
            let (holdout, p) = match key > HOLDOUT / 2 {
                true => (true, key - HOLDOUT),
                false => (false, key),
            };
            let c = id as usize;
            let repeat = holdout || p != self.customers[c].first;
            if in_order.get(c) == Some(&true) && repeat && (first..=last).contains(&p) {
                t.repeats[(p - first) as usize] += 1;
            }
        }
        Some(t)
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
        let mut h = Histories::new(HistorySettings {
            period: Period::Day,
            calibration_end: Some(at(28, 0)),
            horizon_days: 9,
        });
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
        h.add(1, at(29, 1), 1.0);
        let all = h.summaries(&[0, 1], at(30, 0));
        let c = all.customers[0].unwrap();
        let s = c.summary;
        assert_eq!((s.x, s.t_x, s.t), (2.0, 10.0, 18.0));
        assert_eq!(s.spend, (5.0 + 1.0 + 4.0) / 2.0);
        assert_eq!(c.holdout, 1);
        // The 9 days up to the 28th: the 20th.
        assert_eq!(c.recent, 6.0);
        // Customer 1 bought only in the hold-out.
        assert!(all.customers[1].is_none());
        let t = all.tracking.unwrap();
        assert_eq!(t.first, Period::Day.of(at(10, 0)));
        assert_eq!(t.births.iter().sum::<u64>(), 1);
        // Repeats on the 15th, the 20th and the 29th (hold-out).
        assert_eq!(t.repeats.iter().sum::<u64>(), 3);
        assert_eq!(t.repeats[19], 1);
    }
}
