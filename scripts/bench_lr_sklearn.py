"""scikit-learn side of scripts/bench-lr.sh: fit L2 logistic regression
(lbfgs, one thread, run to convergence: tol 1e-6; "auto": one weight vector for
two classes, as aar, and the multinomial loss for more) to X.npy (as scipy CSR
when it is sparse, as a user would pass TF-IDF) and the labels in
weak.jsonl; report the best time of REPS fits and the objective
C·Σ CE + ½‖W‖² (sklearn's own scale), so the two fits can be compared at
equal loss."""
import json, os, sys, time
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np
from sklearn.linear_model import LogisticRegression

x_path, y_path, c = sys.argv[1], sys.argv[2], float(sys.argv[3])
reps = int(sys.argv[4]) if len(sys.argv) > 4 else 3
X = np.load(x_path).astype(np.float64)
density = np.count_nonzero(X) / X.size
if density < 0.3:
    import scipy.sparse
    X = scipy.sparse.csr_matrix(X)
y = np.array([json.loads(l)["label"] for l in open(y_path)])
k = int(y.max()) + 1
best = None
for _ in range(reps):
    t = time.perf_counter()
    m = LogisticRegression(C=c, solver="lbfgs", multi_class="auto", max_iter=5000, tol=1e-6)
    m.fit(X, y)
    dt = time.perf_counter() - t
    best = dt if best is None else min(best, dt)
W = m.coef_
logits = X @ W.T + m.intercept_
if W.shape[0] == 1:  # binary: sklearn keeps one vector; use its softmax form
    logits = np.hstack([np.zeros((X.shape[0], 1)), logits])
logits -= logits.max(axis=1, keepdims=True)
logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
ce = -logp[np.arange(len(y)), y].sum()
obj = c * ce + 0.5 * (W ** 2).sum()
print(f"density {density:.3f}")
print(f"sklearn {best:.4f} s  objective {obj:.4f}  mean-ce {ce/len(y):.6f}  iterations {m.n_iter_[0]}  rows {X.shape[0]} cols {X.shape[1]} classes {k}")
