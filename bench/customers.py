"""Writes a transactions file (gzipped CSV, UCI layout) of N customers with one to three lines
each: python bench/customers.py N OUT.csv.gz. Used by bench/customers.sh."""
import gzip, sys, random
n = int(sys.argv[1]); out = sys.argv[2]
random.seed(1)
with gzip.open(out, "wt", compresslevel=1) as f:
    f.write("InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n")
    inv = 100000
    for c in range(n):
        k = 1 + (c % 3)
        for j in range(k):
            inv += 1
            f.write(f"{inv},A{j},Thing,{1+j},{1+(c%12)}/{1+(c%28)}/2011 10:{j:02d},{1.5+(c%7)},{1000000+c},UK\n")
