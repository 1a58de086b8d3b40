"""Prints bench/product.sh's tables from its results.tsv: medians per mode,
the ratios to untraced, spans received against expected, the Python
comparison, and which of the product-path targets (docs/performance.md)
the run met.

Usage: product_report.py results.tsv SPANS_PER_REQUEST"""

import statistics
import sys

COLS = ["kind", "mode", "round", "rps", "p50", "p99", "requests",
        "ticks_backend", "ticks_ai", "ticks_llm", "ticks_sink", "rss_backend", "rss_ai",
        "spans_window", "spans_life", "ended", "secs", "clk_tck", "errors"]
INTS = COLS[6:18]

# (mode, at least this fraction of untraced req/s)
TARGETS = [("traced-1.0", 0.85), ("traced-0.1", 0.95), ("traced-0.01", 0.98)]


def ms(text):
    for unit, f in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * f
    return float("nan")


def load(path):
    rows = []
    with open(path) as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            r = dict(zip(COLS, parts + [""] * (len(COLS) - len(parts))))
            r["rps"] = float(r["rps"])
            for k in INTS:
                r[k] = int(r[k] or 0)
            r["p50"], r["p99"] = ms(r["p50"]), ms(r["p99"])
            per_req = 1000 / r["clk_tck"] / r["requests"]  # ms of CPU per tick per request
            r["cpu_backend"] = r["ticks_backend"] * per_req
            r["cpu_ai"] = r["ticks_ai"] * per_req
            r["cpu"] = r["cpu_backend"] + r["cpu_ai"]
            r["cpu_llm"] = r["ticks_llm"] * per_req
            r["cpu_sink"] = r["ticks_sink"] * per_req
            r["per_cpu_s"] = 1000 / r["cpu"] if r["cpu"] else float("nan")
            rows.append(r)
    return rows


def main():
    rows = load(sys.argv[1])
    per_request = int(sys.argv[2])
    groups = {}
    for r in rows:
        groups.setdefault((r["kind"], r["mode"]), []).append(r)
    summary = {key: {k: statistics.median(r[k] for r in rs)
                     for k in ("rps", "p50", "p99", "cpu", "cpu_backend", "cpu_ai", "cpu_llm",
                               "cpu_sink", "per_cpu_s", "rss_backend", "rss_ai")}
               for key, rs in groups.items()}

    print()
    print("Medians per mode. CPU: ms of CPU per request (utime + stime from /proc); "
          "the stand-in LLM and the sink are not in 'services'.")
    print("| pair | mode | rounds | req/s | p50 ms | p99 ms | CPU services | backend | ai-stack "
          "| stand-in | sink | RSS backend MB | RSS ai-stack MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (kind, mode), s in summary.items():
        print(f"| {kind} | {mode} | {len(groups[(kind, mode)])} | {s['rps']:.0f} | {s['p50']:.3f} | "
              f"{s['p99']:.3f} | {s['cpu']:.4f} | {s['cpu_backend']:.4f} | {s['cpu_ai']:.4f} | "
              f"{s['cpu_llm']:.4f} | {s['cpu_sink']:.4f} | {s['rss_backend'] / 1024:.1f} | "
              f"{s['rss_ai'] / 1024:.1f} |")

    print()
    print("Spans per round: received by the sink in the measured window (expected: "
          f"{per_request} x requests at rate 1.0), and over the pair's whole life against what the "
          "services say they ended (warm-up and the requests wrk cut off included):")
    lost_total = 0
    for (kind, mode), rs in groups.items():
        if kind != "rust" or mode == "untraced":
            continue
        cells = []
        for r in rs:
            lost = r["ended"] - r["spans_life"]
            lost_total += max(lost, 0)
            window = f"window {r['spans_window']}"
            if mode.removesuffix("-nokey").removesuffix("-tls") == "traced-1.0":
                window += f"/{per_request * r['requests']}"
            cells.append(f"{window}, life {r['spans_life']}/{r['ended']} (lost {lost})")
        print(f"  {mode:12s} " + "; ".join(cells))

    base = summary.get(("rust", "untraced"))
    if base:
        print()
        print("Ratios to untraced (medians of the same run), and per round:")
        for mode in sorted({m for k, m in groups if k == "rust" and m != "untraced"}):
            s = summary[("rust", mode)]
            rounds = [r["rps"] / u["rps"] for r, u in zip(groups[("rust", mode)], groups[("rust", "untraced")])]
            print(f"  {mode:12s} req/s {s['rps'] / base['rps']:.3f} (rounds {', '.join(f'{x:.2f}' for x in rounds)})"
                  f"   CPU/request {s['cpu'] / base['cpu']:.2f}x")

    nokey = summary.get(("rust", "untraced-nokey"))
    if base and nokey:
        print()
        print("The operator key check (untraced, with the key against AUTOBOT_AUTH=off, medians):")
        print(f"  req/s {base['rps']:.0f} vs {nokey['rps']:.0f} ({base['rps'] / nokey['rps']:.3f}x)   "
              f"CPU/request backend {base['cpu_backend']:.4f} vs {nokey['cpu_backend']:.4f} ms "
              f"({(base['cpu_backend'] - nokey['cpu_backend']) * 1000:+.1f} us)")

    plain = summary.get(("rust", "traced-1.0"))
    tls = summary.get(("rust", "traced-1.0-tls"))
    if plain and tls:
        print()
        print("TLS on both hops (traced at 1.0: https to the backend, mutual TLS to ai-stack; "
              "wrk keeps its 16 connections and the backend pools its own, so handshakes are rare), medians:")
        print(f"  req/s {tls['rps']:.0f} vs {plain['rps']:.0f} plain ({tls['rps'] / plain['rps']:.3f}x)   "
              f"CPU/request backend + ai-stack {tls['cpu']:.4f} vs {plain['cpu']:.4f} ms "
              f"({(tls['cpu'] - plain['cpu']) * 1000:+.1f} us)")

    py = summary.get(("python", "traced-1.0"))
    ours = summary.get(("rust", "traced-1.0"))
    if py and ours:
        print()
        print("Ours / Python, both traced at rate 1.0 (medians; ours checks an operator key, the Python pair none):")
        print(f"  req/s            {ours['rps'] / py['rps']:.1f}x  ({ours['rps']:.0f} vs {py['rps']:.0f})")
        print(f"  req/s per CPU-s  {ours['per_cpu_s'] / py['per_cpu_s']:.1f}x  "
              f"({ours['per_cpu_s']:.0f} vs {py['per_cpu_s']:.0f}; backend + ai-stack)")
        print(f"  RSS              {ours['rss_backend'] / 1024:.1f} + {ours['rss_ai'] / 1024:.1f} MB vs "
              f"{py['rss_backend'] / 1024:.1f} + {py['rss_ai'] / 1024:.1f} MB")

    def verdict(ok):
        return "MET" if ok else "NOT MET"
    print()
    print("Product-path targets:")
    if base:
        for mode, floor in TARGETS:
            s = summary.get(("rust", mode))
            if s:
                ratio = s["rps"] / base["rps"]
                print(f"  {mode} >= {floor:.2f} x untraced req/s: {ratio:.3f}  {verdict(ratio >= floor)}")
    if any(k == "rust" and m != "untraced" for k, m in groups):
        print(f"  0 spans lost with the sink up: {lost_total} lost  {verdict(lost_total == 0)}")
    rss = max((max(s["rss_backend"], s["rss_ai"]) for (k, _), s in summary.items() if k == "rust"), default=0)
    print(f"  RSS <= 20 MB per service: max {rss / 1024:.1f} MB  {verdict(rss <= 20 * 1024)}")
    if py and ours:
        ratio = ours["per_cpu_s"] / py["per_cpu_s"]
        print(f"  >= 50 x the Python reference's req/s per CPU-second: {ratio:.1f}x  {verdict(ratio >= 50)}")
    errors = [f"{r['kind']} {r['mode']} round {r['round']}: {r['errors']}" for r in rows if r["errors"].strip()]
    if errors:
        print()
        print("wrk reported errors (the figures of these rounds are suspect):")
        for e in errors:
            print("  " + e)


if __name__ == "__main__":
    main()
