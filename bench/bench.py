"""Benchmark driver: times whole processes, alternating the contenders, several runs each,
and reports medians and ratios measured in the same run.

  1. segment on the reference CSV (uncompressed): rfm-agent (the result as JSON on stdout;
     and with --out, which adds the report: charts, HTML, the k sweep with silhouettes) vs
     pandas + scikit-learn vs Python polars + scikit-learn (all: frequency = lines, k = 4,
     10 restarts).
  2. XLSX: rfm-agent segment on an XLSX copy vs pandas.read_excel alone.
  3. k-means at scale, 1,000,000 x 3, 10 restarts: k = 8, and the sweep k = 2..10;
     rfm-agent's kernel (examples/kmeans_bench.rs) vs scikit-learn on the same matrix.
     Fit time is measured in-process (data loading and Python imports excluded).

Run through bench/run.sh, which builds the release binary and the Python venv.
"""
import argparse, gzip, json, os, shutil, statistics, subprocess, sys, time

p = argparse.ArgumentParser()
p.add_argument("--bin", required=True)
p.add_argument("--kmeans-bin", required=True)
p.add_argument("--python", required=True)
p.add_argument("--data", required=True, help="folder with online_retail.csv.gz")
p.add_argument("--work", required=True)
p.add_argument("--runs", type=int, default=5)
p.add_argument("--xlsx-runs", type=int, default=2)
p.add_argument("--kmeans-runs", type=int, default=3)
p.add_argument("--skip", default="", help="comma list of: segment,xlsx,kmeans")
a = p.parse_args()
here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(a.work, exist_ok=True)
skip = set(filter(None, a.skip.split(",")))


def timed(cmd):
    start = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr}")
    return elapsed, r.stdout


def alternate(contenders, runs):
    times = {name: [] for name in contenders}
    outputs = {}
    for _ in range(runs):
        for name, cmd in contenders.items():
            t, out = timed(cmd)
            times[name].append(t)
            outputs[name] = out
    return {n: statistics.median(v) for n, v in times.items()}, outputs


def report(title, medians, ours):
    print(f"\n## {title}")
    print(f"{'contender':<34} {'median s':>10} {'x rfm-agent':>12}")
    for name, t in medians.items():
        print(f"{name:<34} {t:>10.3f} {t / medians[ours]:>12.1f}")


csv_path = os.path.join(a.work, "online_retail.csv")
if not os.path.exists(csv_path):
    with gzip.open(os.path.join(a.data, "online_retail.csv.gz"), "rb") as src, open(csv_path, "wb") as dst:
        shutil.copyfileobj(src, dst)

if "segment" not in skip:
    med, _ = alternate(
        {
            # The peers fit no predictive models; what the models add is in bench/clv.sh.
            "rfm-agent segment": [a.bin, "segment", "--no-predict", "--input", csv_path, "--frequency", "lines",
                                   "--k", "4", "--format", "json", "--quiet"],
            "rfm-agent segment --out (+ report)": [a.bin, "segment", "--no-predict", "--input", csv_path, "--frequency", "lines",
                                   "--k", "4", "--out", os.path.join(a.work, "out-rust"), "--quiet"],
            "pandas + scikit-learn": [a.python, os.path.join(here, "rfm_pandas.py"), csv_path,
                                      os.path.join(a.work, "out-pandas")],
            "polars-python + scikit-learn": [a.python, os.path.join(here, "rfm_polars.py"), csv_path,
                                             os.path.join(a.work, "out-polars")],
        },
        a.runs,
    )
    report(f"segment, reference CSV ({os.path.getsize(csv_path) / 1e6:.0f} MB), {a.runs} runs each", med, "rfm-agent segment")

if "xlsx" not in skip:
    xlsx = os.path.join(a.work, "online_retail.xlsx")
    if not os.path.exists(xlsx):
        timed([a.bin, "convert", "--input", os.path.join(a.data, "online_retail.parquet"), "--out", xlsx])
    med, _ = alternate(
        {
            "rfm-agent segment (xlsx)": [a.bin, "segment", "--no-predict", "--input", xlsx, "--frequency", "lines", "--quiet"],
            "pandas.read_excel only": [a.python, "-c", f"import pandas as pd; pd.read_excel({xlsx!r})"],
        },
        a.xlsx_runs,
    )
    report(f"XLSX ({os.path.getsize(xlsx) / 1e6:.0f} MB), {a.xlsx_runs} runs each", med, "rfm-agent segment (xlsx)")

if "kmeans" not in skip:
    matrix = os.path.join(a.work, "blobs_1m_x3.f64")
    if not os.path.exists(matrix):
        subprocess.run([a.python, "-c", f"""
import numpy as np
rng = np.random.default_rng(0)
centres = rng.uniform(-10, 10, size=(8, 3))
x = centres[rng.integers(0, 8, 1_000_000)] + rng.normal(0, 2.5, size=(1_000_000, 3))
x.astype('<f8').tofile({matrix!r})
"""], check=True)
    for label, extra in [("k = 8", ["--k", "8"]), ("sweep k = 2..10", ["--sweep", "2", "10"])]:
        fit = {"rfm-agent k-means": [], "scikit-learn KMeans": []}
        for _ in range(a.kmeans_runs):
            for name, cmd in [
                ("rfm-agent k-means", [a.kmeans_bin, matrix, "3", *extra, "--n-init", "10"]),
                ("scikit-learn KMeans", [a.python, os.path.join(here, "kmeans_sklearn.py"), matrix, "3", *extra, "--n-init", "10"]),
            ]:
                _, out = timed(cmd)
                res = json.loads(out.strip().splitlines()[-1])
                fit[name].append(res["seconds"])
                fit[name + " inertia"] = res["inertia"]
        med = {n: statistics.median(v) for n, v in fit.items() if not n.endswith("inertia")}
        report(f"k-means 1,000,000 x 3, 10 restarts, {label} (in-process fit time, {a.kmeans_runs} runs each)", med, "rfm-agent k-means")
        ours, theirs = fit["rfm-agent k-means inertia"], fit["scikit-learn KMeans inertia"]
        print("inertia (rfm-agent / scikit-learn): " + ", ".join(f"{o / t:.5f}" for o, t in zip(ours, theirs)))
