"""subsample.py WEAK.jsonl SEED SHARE: the weak labels of a seeded random share of the pool, as targets."""
import json, random, sys

weak, seed, share = sys.argv[1], sys.argv[2], float(sys.argv[3])
rows = [json.loads(l) for l in open(weak) if l.strip()]
rng = random.Random(seed)
for r in rows:
    if rng.random() < share:
        print(json.dumps({"id": r["id"], "probs": r["probs"]}))
