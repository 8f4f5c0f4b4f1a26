# The python3 program of `make traces`: stdlib-heavy (json, re, collections),
# run with PYTHONMALLOC=malloc so that every object goes through malloc.
import collections
import json
import re

records = [{"id": i, "name": "user%d" % i, "tags": ["t%d" % (i % 17), "g%d" % (i % 5)],
            "score": (i * 7919) % 1000 / 10.0} for i in range(20000)]
text = json.dumps(records)
back = json.loads(text)
words = collections.Counter(re.findall(r"[a-z]+[0-9]+", text))
by_tag = collections.defaultdict(list)
for r in back:
    for t in r["tags"]:
        by_tag[t].append(r["id"])
dq = collections.deque(maxlen=1000)
for i in range(40000):
    dq.append(("k%d" % i, i))
print(len(text), len(back), len(words), sorted((k, len(v)) for k, v in by_tag.items())[:3], len(dq))
