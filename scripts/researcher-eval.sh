#!/bin/sh
# researcher-eval.sh — run the built-in researcher alone on a testbed in a
# fresh lab and judge its result where it could not have been tuned: the
# holdout split, against vanilla W2S and the best built-in baseline, by a
# paired bootstrap over rows (aar score --compare).
#
#   scripts/researcher-eval.sh [TESTBED] [CPU_BUDGET] [OUT_DIR] [SEED]
#   make bench-researcher            # metamath, 10 CPU-minutes, docs/researcher
#
# It installs the testbed into a temporary data directory (or copies it
# from $AAR_TESTBEDS/TESTBED when set, to save the install), starts `aar
# lab`, creates a campaign and a researcher token, writes the public view,
# runs `aar researcher --backend builtin --cpu CPU_BUDGET`, pulls the
# snapshot behind its result finding, re-scores that result's five seeds on
# the holdout split and compares them with vanilla_w2s and BASELINE (default
# logconf) trained on the same public view and seeds.
set -eu
TB=${1:-metamath}
CPU=${2:-10m}
OUT=${3:-docs/researcher}
SEED=${4:-1}
BASELINE=${BASELINE:-logconf}
AAR=${AAR:-$(pwd)/bin/aar}
W=$(mktemp -d)
LAB=
cleanup() { [ -n "$LAB" ] && kill "$LAB" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT INT TERM
mkdir -p "$OUT"

if [ -n "${AAR_TESTBEDS:-}" ] && [ -d "$AAR_TESTBEDS/$TB" ]; then
  mkdir -p "$W/data/testbeds" && cp -r "$AAR_TESTBEDS/$TB" "$W/data/testbeds/"
else
  echo "installing $TB into a fresh data directory..." >&2
  "$AAR" testbed install "$TB" --data "$W/data" >&2
fi

"$AAR" lab --data "$W/data" --addr 127.0.0.1:0 >"$W/lab.out" 2>"$W/lab.err" &
LAB=$!
i=0
while [ ! -S "$W/data/lab.sock" ] || [ "$(wc -l <"$W/lab.out")" -lt 2 ]; do
  i=$((i + 1)); [ $i -gt 100 ] && { cat "$W/lab.err" >&2; exit 1; }; sleep 0.1
done
ADMIN=$(sed -n 2p "$W/lab.out")
export AAR_LAB="unix://$W/data/lab.sock"
AAR_TOKEN=$ADMIN "$AAR" lab campaign create --id eval --testbed "$TB" >/dev/null
TOK=$(AAR_TOKEN=$ADMIN "$AAR" lab token create --researcher builtin --campaign eval | tail -n 1)
"$AAR" testbed public "$TB" "$W/view" --data "$W/data" >&2

echo "running the built-in researcher on $TB with $CPU of sandbox CPU..." >&2
start=$(date +%s)
AAR_TOKEN=$TOK "$AAR" researcher --data "$W/data" --testbed "$TB" --view "$W/view" --backend builtin --seed "$SEED" \
  --direction "find which weak labels to trust: reweight, filter or reshape the loss" \
  --cpu "$CPU" --time 60m --name builtin >"$W/summary.json" 2>"$OUT/researcher-$TB.log"
wall=$(( $(date +%s) - start ))

# Its submissions over time, as pictures.
AAR_TOKEN=$TOK "$AAR" transcript --plot "$OUT/researcher-$TB.png" --plot "$OUT/researcher-$TB.svg" 2>/dev/null

# The result the researcher posted, and the snapshot behind it.
AAR_TOKEN=$TOK "$AAR" forum list --json --limit 500 >"$W/findings.json"
python3 - "$W/findings.json" >"$W/result.env" <<'PY'
import json, sys
page = json.load(open(sys.argv[1]))
rs = [f for f in page["findings"] if f["type"] == "result"]
if not rs:
    sys.exit("the researcher posted no result")
r = rs[-1]
c = r["config"]["builtin"]
print("SNAP=%s\nCID=%s\nDESC='%s'\nFEEDBACK=%s" % (r["snapshot"], c["id"], r["title"].replace("'", ""), r["metrics"]["pgr"]))
PY
. "$W/result.env"
AAR_TOKEN=$TOK "$AAR" snapshot pull "$SNAP" "$W/snap" >/dev/null

mkdir -p "$W/vanilla" "$W/base"
for s in 42 43 44 45 46; do
  "$AAR" w2s train --view "$W/view" --method vanilla_w2s --seed $s --out "$W/vanilla/$s.jsonl" 2>/dev/null
  "$AAR" w2s train --view "$W/view" --method "$BASELINE" --seed $s --out "$W/base/$s.jsonl" 2>/dev/null
done
R=$(for s in 42 43 44 45 46; do printf '%s ' "$W/snap/runs/$CID/$s.jsonl"; done)
V=$(for s in 42 43 44 45 46; do printf '%s,' "$W/vanilla/$s.jsonl"; done | sed 's/,$//')
B=$(for s in 42 43 44 45 46; do printf '%s,' "$W/base/$s.jsonl"; done | sed 's/,$//')
# shellcheck disable=SC2086
"$AAR" score --data "$W/data" --testbed "$TB" --split holdout --json $R --compare "$V" >"$W/vs_vanilla.json"
# shellcheck disable=SC2086
"$AAR" score --data "$W/data" --testbed "$TB" --split holdout --json $R --compare "$B" >"$W/vs_base.json"

python3 - "$W" "$TB" "$CPU" "$wall" "$DESC" "$FEEDBACK" "$BASELINE" "$OUT" <<'PY'
import json, sys
w, tb, cpu, wall, desc, feedback, base, out = sys.argv[1:9]
summ = json.load(open(w + "/summary.json"))
def cell(rep, group):
    return next(c for c in rep["cells"] if c["split"] == "holdout" and c["group"] == group)
def cmp(rep, group):
    return next(c for c in rep["comparisons"] if c["split"] == "holdout" and c["group"] == group)
v, b = json.load(open(w + "/vs_vanilla.json")), json.load(open(w + "/vs_base.json"))
lines = ["# The built-in researcher alone on `%s`" % tb, "",
         "Made by `scripts/researcher-eval.sh %s %s` (`make bench-researcher`): a fresh lab, one built-in researcher" % (tb, cpu),
         "with a %s sandbox-CPU budget; its result re-scored on the **holdout** split (never released to it)." % cpu, "",
         "- stopped: %s after %s s wall, %.0f s sandbox CPU, %d tool calls" % (summ["reason"], wall, summ["status"]["spent"]["sandbox_cpu_seconds"], summ["status"]["spent"]["tool_calls"]),
         "- its result: %s (feedback PGR %.3f as released)" % (desc, float(feedback)), "",
         "| holdout cell | result PGR (5 seeds) | Δ PGR vs vanilla_w2s [95%% CI] | Δ PGR vs %s [95%% CI] |" % base, "|---|---|---|---|"]
ok = True
for g in ("overall", "id", "ood"):
    try:
        c, cv, cb = cell(v, g), cmp(v, g), cmp(b, g)
    except StopIteration:
        continue
    if c.get("pgr") is None or cv.get("pgr_diff") is None:
        continue
    def ci(x):
        d = x["pgr_diff"]
        star = " *" if d["lo"] > 0 or d["hi"] < 0 else ""
        return "%+.3f [%+.3f, %+.3f]%s" % (d["estimate"], d["lo"], d["hi"], star)
    lines.append("| %s | %.3f ± %.3f | %s | %s |" % (g, c["pgr"]["mean"], c["pgr"]["se"], ci(cv), ci(cb)))
    if g == "overall":
        ok = cv["pgr_diff"]["lo"] > 0
lines += ["", "![released feedback PGR per submission](researcher-%s.png)" % tb]
lines += ["", "What it screened and confirmed (its final words):", "", "```", summ.get("final", "").strip(), "```"]
lines += ["", "`*`: the interval excludes 0. Paired bootstrap over holdout rows (2,000 resamples), each row's correctness averaged over seeds 42–46."]
open(out + "/researcher-%s.md" % tb, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
sys.exit(0 if ok else 1)
PY
