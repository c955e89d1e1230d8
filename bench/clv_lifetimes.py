"""The peer of `rfm-agent clv` in bench/clv.sh: lifetimes 0.11.3 on the same cleaned lines
(customer present, invoice not starting with C, quantity > 0, price >= 0), snapshot = last
date + 1 day, 90-day horizon, monthly discount 0.01."""
import sys

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data

path, period = sys.argv[1], sys.argv[2]
df = pd.read_parquet(path, columns=["InvoiceNo", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"])
df = df[df.CustomerID.notna() & ~df.InvoiceNo.astype(str).str.startswith("C") & (df.Quantity > 0) & (df.UnitPrice >= 0)]
df["amount"] = df.Quantity * df.UnitPrice
end = df.InvoiceDate.max() + pd.Timedelta(days=1)
freq = "D" if period == "day" else "W"
if freq == "W":
    df["InvoiceDate"] = df.InvoiceDate.dt.to_period("W").dt.start_time
s = summary_data_from_transaction_data(df, "CustomerID", "InvoiceDate", monetary_value_col="amount",
                                       observation_period_end=end, freq=freq)
bgf = BetaGeoFitter().fit(s.frequency, s.recency, s["T"])
rep = s[(s.frequency > 0) & (s.monetary_value > 0)]
gg = GammaGammaFitter().fit(rep.frequency, rep.monetary_value)
clv = gg.customer_lifetime_value(bgf, s.frequency, s.recency, s["T"], s.monetary_value, time=3, freq=freq)
print(len(s), "customers", dict(bgf.params_), dict(gg.params_), round(clv.sum(), 2))
