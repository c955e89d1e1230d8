"""The segment pipeline as one DuckDB SQL scan (conditional aggregates GROUP BY customer;
rows without a customer form their own group, which gives the snapshot), then scikit-learn
k-means: the scale benchmark's DuckDB contender. Reads Parquet or CSV(.gz) in the reference
layout; prints the customer count and cluster sizes. Usage: rfm_duckdb.py FILE"""
import sys

import duckdb
import numpy as np
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

path = sys.argv[1]
if path.endswith(".parquet"):
    src, date = f"read_parquet('{path}')", "InvoiceDate"
else:
    src = (f"read_csv('{path}', header = true, types = {{'InvoiceNo': 'VARCHAR', "
           f"'StockCode': 'VARCHAR', 'CustomerID': 'DOUBLE', 'InvoiceDate': 'VARCHAR'}})")
    date = "strptime(InvoiceDate, '%m/%d/%Y %H:%M')"
keep = "CustomerID IS NOT NULL AND NOT starts_with(InvoiceNo, 'C') AND Quantity > 0 AND UnitPrice >= 0"
g = duckdb.sql(f"""
    SELECT CustomerID,
           epoch_ms(max({date})) AS last_any,
           epoch_ms(max({date}) FILTER (WHERE {keep})) AS last,
           count(*) FILTER (WHERE {keep}) AS frequency,
           sum(Quantity * UnitPrice) FILTER (WHERE {keep}) AS monetary
    FROM {src} GROUP BY CustomerID
""").fetchnumpy()
snapshot = np.max(g["last_any"]) + 86_400_000
ok = ~np.ma.getmaskarray(g["CustomerID"]) & (np.asarray(g["frequency"]) > 0)
recency = (snapshot - np.asarray(g["last"])[ok]) // 86_400_000
x = np.column_stack([recency, np.asarray(g["frequency"])[ok], np.asarray(g["monetary"])[ok]]).astype(float)
x = StandardScaler().fit_transform(np.log1p(x))
labels = KMeans(n_clusters=4, n_init=10, random_state=42).fit(x).labels_
print(len(x), sorted(np.bincount(labels).tolist()))
