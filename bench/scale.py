"""Scale benchmark (issue 12): `rfm-agent segment` against the polars-python streaming +
scikit-learn pipeline and the DuckDB + scikit-learn pipeline on the 1x, 20x and 200x replicas
of the reference data, whole processes, contenders alternating. Records wall time and peak
RSS (/usr/bin/time) and checks that every contender found the same number of customers.
Run through bench/scale.sh, which builds the binary, the venv and the replicas."""
import argparse, os, statistics, subprocess, sys, tempfile

p = argparse.ArgumentParser()
p.add_argument("--bin", required=True)
p.add_argument("--python", required=True)
p.add_argument("--data", required=True, help="folder with the reference data")
p.add_argument("--replicas", required=True, help="folder with online_retail_xN.*")
p.add_argument("--runs", type=int, default=3)
p.add_argument("--only", default="", help="comma list of case labels to run, e.g. '200x Parquet'")
a = p.parse_args()
here = os.path.dirname(os.path.abspath(__file__))

cases = [
    ("1x Parquet", os.path.join(a.data, "online_retail.parquet")),
    ("1x CSV.gz", os.path.join(a.data, "online_retail.csv.gz")),
    ("20x Parquet", os.path.join(a.replicas, "online_retail_x20.parquet")),
    ("20x CSV.gz", os.path.join(a.replicas, "online_retail_x20.csv.gz")),
    ("200x Parquet", os.path.join(a.replicas, "online_retail_x200.parquet")),
]
only = set(filter(None, a.only.split(",")))


def contenders(path):
    return {
        # Like for like: the peers fit no predictive models (their cost: bench/clv.sh).
        "rfm-agent segment": [a.bin, "segment", "--no-predict", "--input", path, "--frequency", "lines", "--k", "4",
                              "--format", "json", "--quiet"],
        "polars-python streaming + scikit-learn": [a.python, os.path.join(here, "rfm_polars_stream.py"), path],
        "DuckDB + scikit-learn": [a.python, os.path.join(here, "rfm_duckdb.py"), path],
    }


def measured(cmd):
    """(wall seconds, peak RSS MiB, stdout) of one whole process."""
    with tempfile.NamedTemporaryFile("r") as t:
        r = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", t.name, *cmd],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
        wall, kib = t.read().split()[-2:]
    return float(wall), int(kib) / 1024, r.stdout


def customers(name, out):
    if name.startswith("rfm-agent"):
        import json
        return json.loads(out)["ledger"]["customers"]
    return int(out.split()[0])


print(f"runs per contender: {a.runs}; medians of wall time, the largest peak RSS")
for label, path in cases:
    if only and label not in only:
        continue
    if not os.path.exists(path):
        sys.exit(f"missing {path}: run bench/scale.sh, which builds the replicas")
    times, peaks, found = {}, {}, {}
    for _ in range(a.runs):
        for name, cmd in contenders(path).items():
            wall, mib, out = measured(cmd)
            times.setdefault(name, []).append(wall)
            peaks[name] = max(peaks.get(name, 0), mib)
            found[name] = customers(name, out)
    ours = statistics.median(times["rfm-agent segment"])
    print(f"\n### {label}: {os.path.basename(path)} ({os.path.getsize(path) / 1e6:,.0f} MB)\n")
    print("| contender | wall s (median) | x rfm-agent | peak RSS MiB | customers |")
    print("|---|---:|---:|---:|---:|")
    for name in times:
        t = statistics.median(times[name])
        print(f"| {name} | {t:.2f} | {t / ours:.2f} | {peaks[name]:,.0f} | {found[name]:,} |")
    if len(set(found.values())) != 1:
        sys.exit(f"the contenders disagree on the customer count: {found}")
