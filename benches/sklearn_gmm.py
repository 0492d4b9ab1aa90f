"""Times scikit-learn's GaussianMixture on .npy files for benches/mixture_fit.rs.

usage: python benches/sklearn_gmm.py REPEATS K N_INIT TOL MAX_ITER REG_COVAR FILE...
Prints one JSON line per file: best wall time of REPEATS fits (after one warm-up fit), the
mean log-likelihood per sample and the iterations of the last fit.
"""
import json
import sys
import time

import numpy as np
from sklearn.mixture import GaussianMixture

repeats, k, n_init = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
tol, max_iter, reg = float(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
for path in sys.argv[7:]:
    x = np.load(path).reshape(-1, 1)
    make = lambda: GaussianMixture(n_components=k, n_init=n_init, tol=tol, max_iter=max_iter, reg_covar=reg, random_state=0)
    make().fit(x)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        gm = make().fit(x)
        best = min(best, time.perf_counter() - t)
    print(json.dumps({"file": path, "seconds": best, "mean_loglik": float(gm.score(x)), "n_iter": int(gm.n_iter_)}), flush=True)
