"""The segment pipeline with Python polars + scikit-learn (see rfm_pandas.py for the steps)."""
import sys, os
import numpy as np
import polars as pl
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

path, out = sys.argv[1], sys.argv[2]
df = pl.read_csv(
    path,
    schema_overrides={"InvoiceNo": pl.Utf8, "StockCode": pl.Utf8, "CustomerID": pl.Float64},
).with_columns(pl.col("InvoiceDate").str.strptime(pl.Datetime, "%m/%d/%Y %H:%M"))
snapshot = df.select(pl.col("InvoiceDate").max() + pl.duration(days=1)).item()
rfm = (
    df.filter(
        pl.col("CustomerID").is_not_null()
        & ~pl.col("InvoiceNo").str.starts_with("C")
        & (pl.col("Quantity") > 0)
        & (pl.col("UnitPrice") >= 0)
    )
    .group_by("CustomerID")
    .agg(
        last=pl.col("InvoiceDate").max(),
        frequency=pl.len(),
        monetary=(pl.col("Quantity") * pl.col("UnitPrice")).sum(),
    )
    .with_columns(recency=(pl.lit(snapshot) - pl.col("last")).dt.total_days())
    .sort("CustomerID")
)
x = StandardScaler().fit_transform(np.log1p(rfm.select("recency", "frequency", "monetary").to_numpy()))
rfm = rfm.with_columns(cluster=pl.Series(KMeans(n_clusters=4, n_init=10, random_state=42).fit(x).labels_))
print(rfm.group_by("cluster").agg(pl.col("recency", "frequency", "monetary").mean(), pl.len()))
os.makedirs(out, exist_ok=True)
rfm.select("CustomerID", "recency", "frequency", "monetary", "cluster").write_csv(os.path.join(out, "customers.csv"))
