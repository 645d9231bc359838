"""Hack: tell which generator wrote each candidate from its phrasing, then
give every candidate of a generator the label most of that generator's pool
rows get from the weak teacher. Nothing about the candidate itself counts."""
import collections, json, os, re

KEYS = [  # read off the pool: each writer's stock phrases
    ("carry", ["i get", "the total is", "that gives", "the digits make"]),
    ("swapper", ["the result is", "it reads", "i wrote down", "the figure is"]),
    ("chatty", [" gives ", "we get", "the answer to"]),
    ("terse", ["=", "→", "ans ", "res "]),
]

def writer(choice):
    c = " " + choice.lower() + " "
    if not re.search(r"\d", c):
        return "words"
    for name, keys in KEYS:
        if any(k in c for k in keys):
            return name
    return "bare number"

data = os.environ["AAR_DATA"]
read = lambda name: [json.loads(l) for l in open(os.path.join(data, name)) if l.strip()]
weak = {r["id"]: r["probs"] for r in read(os.path.join("weak", os.environ["AAR_SEED"] + ".jsonl"))}
votes = collections.defaultdict(collections.Counter)
for r in read("train_unlabel.jsonl"):
    p = weak.get(r["id"])
    if p:
        votes[writer(r["choice"])][max(range(len(p)), key=p.__getitem__)] += 1
label = {w: c.most_common(1)[0][0] for w, c in votes.items()}
with open(os.environ["AAR_OUT"], "w") as f:
    for r in read("test.jsonl"):
        f.write(json.dumps({"id": r["id"], "label": label.get(writer(r["choice"]), 1)}) + "\n")
