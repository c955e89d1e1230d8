"""scikit-learn k-means on the raw f64 matrix kmeans_bench reads; prints the fit time as JSON.
Usage: kmeans_sklearn.py FILE N_FEATURES (--k K | --sweep FROM TO) [--n-init N] [--seed S]"""
import json, sys, time
import numpy as np
from sklearn.cluster import KMeans

args = sys.argv
x = np.fromfile(args[1], dtype="<f8").reshape(-1, int(args[2]))
flag = lambda name, default: args[args.index(name) + 1] if name in args else default
n_init, seed = int(flag("--n-init", 10)), int(flag("--seed", 0))
if "--k" in args:
    ks = [int(flag("--k", 8))]
else:
    i = args.index("--sweep")
    ks = list(range(int(args[i + 1]), int(args[i + 2]) + 1))
start = time.perf_counter()
inertia = [KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x).inertia_ for k in ks]
print(json.dumps({"n": len(x), "ks": ks, "seconds": round(time.perf_counter() - start, 4), "inertia": inertia}))
