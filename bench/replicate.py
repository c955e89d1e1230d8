"""Builds the N-times replica of the reference data used by the scale benchmark (issue 12):
copy k (0..N-1) of online_retail.parquet has its customer ids offset by 100,000 * k, the
suffix `-k` on its invoice numbers and its dates shifted back by k mod 30 days.

    python bench/replicate.py N [DATA_DIR] [OUT_DIR] [--csv]

writes OUT_DIR/online_retail_xN.parquet (row groups of 1 M rows, streamed by polars) and,
with --csv, OUT_DIR/online_retail_xN.csv.gz in the reference CSV's layout (dates as
`12/1/2010 8:26`), written copy by copy so that memory stays at one copy. Needs polars
(bench/run.sh's virtual environment has it).
"""
import gzip
import os
import sys

import polars as pl


def copy(src, k):
    return src.with_columns(
        (pl.col("CustomerID") + 100_000 * k).alias("CustomerID"),
        (pl.col("InvoiceNo") + f"-{k}").alias("InvoiceNo") if k else pl.col("InvoiceNo"),
        (pl.col("InvoiceDate") - pl.duration(days=k % 30)).alias("InvoiceDate"),
    )


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if not args:
        sys.exit(__doc__)
    n = int(args[0])
    data = args[1] if len(args) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
    out = args[2] if len(args) > 2 else "."
    os.makedirs(out, exist_ok=True)
    src = pl.scan_parquet(os.path.join(data, "online_retail.parquet"))
    parquet = os.path.join(out, f"online_retail_x{n}.parquet")
    pl.concat([copy(src, k) for k in range(n)]).sink_parquet(parquet, row_group_size=1_000_000)
    print(f"wrote {parquet}: {pl.scan_parquet(parquet).select(pl.len()).collect().item():,} rows")
    if "--csv" in sys.argv:
        path = os.path.join(out, f"online_retail_x{n}.csv.gz")
        with gzip.open(path, "wb", compresslevel=6) as f:
            for k in range(n):
                frame = copy(src, k).with_columns(
                    pl.col("InvoiceDate").dt.strftime("%-m/%-d/%Y %-H:%M")
                ).collect()
                frame.write_csv(f, include_header=(k == 0))
        print(f"wrote {path}")


main()
