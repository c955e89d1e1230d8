"""Engines benchmark (issue 14): `rfm-agent segment --frequency lines --k 4` on the 20x
replica through the local engine, PostgreSQL and Spark Connect, whole processes, cases
alternating. Records wall time, the client's peak RSS (/usr/bin/time) and the bytes that came
back from the engine (the run's own `-v` report: what the process read during the engine's
pass), and checks that every case found the same customers and ledger counts.
Run through bench/engines.sh, which builds the binary and the replica and starts the servers."""
import argparse, json, os, re, statistics, subprocess, sys, tempfile

p = argparse.ArgumentParser()
p.add_argument("--bin", required=True)
p.add_argument("--replicas", required=True, help="folder with online_retail_x20.*")
p.add_argument("--postgres", required=True, help="URL of a database with the replica in `retail`")
p.add_argument("--spark", required=True, help="Spark Connect address, sc://HOST:PORT")
p.add_argument("--runs", type=int, default=3)
a = p.parse_args()
parquet = os.path.join(a.replicas, "online_retail_x20.parquet")
csv = os.path.join(a.replicas, "online_retail_x20.csv.gz")
common = ["--frequency", "lines", "--k", "4", "--format", "json", "-v", "--engine-timeout", "600"]
cases = {
    "local, Parquet": ["--input", parquet],
    "local, CSV.gz": ["--input", csv],
    "PostgreSQL 15, table": ["--input", a.postgres, "--table", "retail"],
    "Spark 4.3 local[2], Parquet": ["--engine", "spark", "--spark-remote", a.spark, "--input", parquet],
    "Spark 4.3 local[2], CSV.gz": ["--engine", "spark", "--spark-remote", a.spark, "--input", csv],
}


def measured(args):
    """(wall s, peak RSS MiB, document, bytes back or None) of one whole process."""
    with tempfile.NamedTemporaryFile("r") as t:
        r = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", t.name, a.bin, "segment", *args, *common],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit(f"failed: {args}\n{r.stderr[-2000:]}")
        wall, kib = t.read().split()[-2:]
    back = re.search(r"(\d+) bytes (?:\(Arrow\) )?came back for (\d+) customers", r.stderr)
    return float(wall), int(kib) / 1024, json.loads(r.stdout), int(back.group(1)) if back else None


print(f"runs per case: {a.runs}; medians of wall time, the largest peak RSS of the rfm-agent process")
times, peaks, docs, back = {}, {}, {}, {}
for _ in range(a.runs):
    for name, args in cases.items():
        wall, mib, doc, b = measured(args)
        times.setdefault(name, []).append(wall)
        peaks[name] = max(peaks.get(name, 0), mib)
        docs[name], back[name] = doc, b
ours = statistics.median(times["local, Parquet"])
rows = docs["local, Parquet"]["ledger"]["rows_in"]
print(f"\n20x replica: {rows:,} rows; Parquet {os.path.getsize(parquet) / 1e6:,.0f} MB, "
      f"CSV.gz {os.path.getsize(csv) / 1e6:,.0f} MB\n")
print("| engine, source | wall s (median) | x local Parquet | client peak RSS MiB | bytes back | customers |")
print("|---|---:|---:|---:|---:|---:|")
for name in cases:
    t = statistics.median(times[name])
    b = f"{back[name]:,}" if back[name] is not None else "(file read here)"
    print(f"| {name} | {t:.2f} | {t / ours:.2f} | {peaks[name]:,.0f} | {b} | {docs[name]['ledger']['customers']:,} |")
keys = ("rows_in", "rows_kept", "customers")
found = {name: tuple(d["ledger"][k] for k in keys) + (tuple(sorted(c["size"] for c in d["clusters"])),)
         for name, d in docs.items()}
if len(set(found.values())) != 1:
    sys.exit(f"the engines disagree: {found}")
print(f"\nAll cases agree: rows in, rows kept, customers and cluster sizes {next(iter(found.values()))}")
