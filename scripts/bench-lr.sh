#!/usr/bin/env bash
# Side-by-side: aar's L2 logistic regression (L-BFGS, pure Go, one thread)
# against scikit-learn's (lbfgs, one thread) on the same features and
# labels of an installed testbed (its public pool, weak seed 42's hard
# labels). Needs Debian's python3-sklearn (a benchmark reference only).
# Usage: scripts/bench-lr.sh TESTBED [C]   (AAR_DATA or --data as usual)
set -euo pipefail
tb=${1:?usage: scripts/bench-lr.sh TESTBED [C]}
c=${2:-1}
cd "$(dirname "$0")/.."
make -s build
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin/aar testbed public "$tb" "$tmp/view" >/dev/null
bin/aar w2s --view "$tmp/view" features --split pool --format npy --out "$tmp/X.npy" 2>/dev/null
bin/aar w2s --view "$tmp/view" weak --seed 42 --out "$tmp/weak.jsonl" 2>/dev/null
for solver in newton lbfgs; do
  echo "== aar, solver $solver (go test -bench, GOMAXPROCS=1)"
  GOMAXPROCS=1 go test ./internal/w2s -run '^$' -bench '^BenchmarkLRFile$' -benchtime 3x -count 1 \
    -args -lr.x "$tmp/X.npy" -lr.y "$tmp/weak.jsonl" -lr.c "$c" -lr.solver "$solver" | grep -E 'Benchmark|aar objective'
done
echo "== scikit-learn"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /usr/bin/python3 scripts/bench_lr_sklearn.py "$tmp/X.npy" "$tmp/weak.jsonl" "$c"
