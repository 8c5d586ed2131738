"""Prints the load waves' figures (JSON lines written by test_ha_load.py or
load.py) as a table: python Tests/ha/report.py FILE."""
import json
import sys

COLUMNS = [
    ("balancer", lambda w: w["balancer"]),
    ("fault", lambda w: w["fault"]),
    ("starts", lambda w: w["workloads"]),
    ("started", lambda w: w["started"]),
    ("not started (class)", lambda w: ", ".join(f"{n} {c}" for c, n in sorted(w["not_started_classes"].items())) or "0"),
    ("started wrongly", lambda w: w["started_wrongly"]),
    ("wrappers that retried", lambda w: w["workloads_that_retried"]),
    ("retries (answer: count)", lambda w: ", ".join(f"{a}: {n}" for a, n in sorted(w["retried_answers"].items())) or "0"),
    ("failure window s", lambda w: w["failure_window_s"]),
    ("p50/p95/max ms", lambda w: "{p50}/{p95}/{max}".format(**w["latency_ms"])),
]


def main(path):
    waves = [json.loads(line) for line in open(path) if line.strip()]
    rows = [[name for name, _ in COLUMNS]] + [[str(get(w)) for _, get in COLUMNS] for w in waves]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    for n, r in enumerate(rows):
        print("| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(r)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


if __name__ == "__main__":
    main(sys.argv[1])
