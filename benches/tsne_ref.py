"""Times scikit-learn's TSNE on .npy files for benches/tsne.rs.

usage: python benches/tsne_ref.py METHOD FILE...
Prints one JSON line per file: the wall time of one fit (after a short warm-up fit on the
first 300 rows), the KL divergence reached and trustworthiness (k = 5).
"""
import json
import sys
import time

import numpy as np
from sklearn.manifold import TSNE, trustworthiness

method = sys.argv[1]
for path in sys.argv[2:]:
    x = np.load(path)
    TSNE(method=method, init="pca", random_state=0, max_iter=250).fit_transform(x[:300])
    t = time.perf_counter()
    tsne = TSNE(method=method, init="pca", random_state=0)
    e = tsne.fit_transform(x)
    seconds = time.perf_counter() - t
    print(json.dumps({"file": path, "seconds": seconds, "kl": float(tsne.kl_divergence_), "trust": float(trustworthiness(x, e, n_neighbors=5))}), flush=True)
