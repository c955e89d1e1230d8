//! Spark's answers, Arrow batches, read into the ledger's rows and the accumulator.

use anyhow::{Context, Result};
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{ArrowPrimitiveType, DataType as Arrow, Float64Type, Int64Type};

use rfm_core::rfm::accumulate::{Accumulator, Aggregate};

/// The ledger query's answer.
pub(super) fn ledger_rows(batches: &[RecordBatch]) -> Result<Vec<crate::LedgerRow>> {
    let (rule, count, max) = (ints(batches, 0)?, ints(batches, 1)?, ints(batches, 4)?);
    let (revenue, kept) = (floats(batches, 2)?, floats(batches, 3)?);
    Ok((0..rule.len())
        .map(|i| crate::LedgerRow {
            rule: rule[i].unwrap_or(0),
            count: count[i].unwrap_or(0),
            revenue: revenue[i].unwrap_or(0.0),
            kept: kept[i].unwrap_or(0.0),
            max_ms: max[i],
        })
        .collect())
}

/// One row per customer into the accumulator, a batch at a time.
pub(super) fn add_customers(acc: &mut Accumulator, batches: &[RecordBatch]) -> Result<()> {
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

pub(super) fn cast(batch: &RecordBatch, i: usize, to: &Arrow) -> Result<arrow::array::ArrayRef> {
    let column = batch
        .columns()
        .get(i)
        .with_context(|| format!("Spark returned {} columns", batch.num_columns()))?;
    arrow::compute::cast(column, to).context("Spark returned a column of an unexpected type")
}

/// Column `i` of every batch as numbers of type `T` (cast when Spark sent another type).
pub(super) fn numbers<T: ArrowPrimitiveType>(
    batches: &[RecordBatch],
    i: usize,
) -> Result<Vec<Option<T::Native>>> {
    let mut out = Vec::new();
    for b in batches {
        out.extend(cast(b, i, &T::DATA_TYPE)?.as_primitive::<T>().iter());
    }
    Ok(out)
}

pub(super) fn ints(batches: &[RecordBatch], i: usize) -> Result<Vec<Option<i64>>> {
    numbers::<Int64Type>(batches, i)
}

pub(super) fn floats(batches: &[RecordBatch], i: usize) -> Result<Vec<Option<f64>>> {
    numbers::<Float64Type>(batches, i)
}

pub(super) fn texts(batches: &[RecordBatch], i: usize) -> Result<Vec<Option<String>>> {
    let mut out = Vec::new();
    for b in batches {
        let a = cast(b, i, &Arrow::Utf8)?;
        out.extend(a.as_string::<i32>().iter().map(|s| s.map(String::from)));
    }
    Ok(out)
}
