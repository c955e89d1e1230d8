"""The segment pipeline with pandas + scikit-learn: the reference for bench/bench.py.

Same steps as `rfm-agent segment --frequency lines --k 4 --out DIR`: read the CSV, parse
dates, drop missing customers, cancellations, quantity <= 0 and price < 0, RFM per
customer (snapshot = last date + 1 day), log1p, standard scaling, k-means++ (k=4,
n_init=10), per-cluster summary, customers.csv.
"""
import sys, os
import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

path, out = sys.argv[1], sys.argv[2]
df = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": "float64"})
df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"], format="%m/%d/%Y %H:%M")
snapshot = df["InvoiceDate"].max() + pd.Timedelta(days=1)
df = df[df["CustomerID"].notna()]
df = df[~df["InvoiceNo"].str.startswith("C")]
df = df[(df["Quantity"] > 0) & (df["UnitPrice"] >= 0)]
df["Amount"] = df["Quantity"] * df["UnitPrice"]
rfm = df.groupby("CustomerID").agg(
    last=("InvoiceDate", "max"), frequency=("InvoiceNo", "count"), monetary=("Amount", "sum")
)
rfm["recency"] = (snapshot - rfm["last"]).dt.days
rfm = rfm[["recency", "frequency", "monetary"]]
x = StandardScaler().fit_transform(np.log1p(rfm))
rfm["cluster"] = KMeans(n_clusters=4, n_init=10, random_state=42).fit(x).labels_
summary = rfm.groupby("cluster").agg(["mean", "median", "count"])
print(summary)
os.makedirs(out, exist_ok=True)
rfm.to_csv(os.path.join(out, "customers.csv"))
