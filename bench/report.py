"""Prints bench/run.sh's tables from its results.tsv: medians per mode,
ratios traced/untraced, the failure cases and the Python comparison, and
which of the performance targets (docs/performance.md) the run met."""

import statistics
import sys

COLS = ["kind", "mode", "run", "rps", "p50", "p99", "requests", "ticks_a", "ticks_b",
        "rss_a0", "rss_b0", "rss_a1", "rss_b1", "received", "secs", "clk_tck", "errors",
        "conn_a", "conn_b"]


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
            for k in ("rps",):
                r[k] = float(r[k])
            for k in ("requests", "ticks_a", "ticks_b", "rss_a0", "rss_b0", "rss_a1", "rss_b1",
                      "received", "secs", "clk_tck", "conn_a", "conn_b"):
                r[k] = int(r[k] or 0)
            r["p50"], r["p99"] = ms(r["p50"]), ms(r["p99"])
            r["cpu_ms"] = (r["ticks_a"] + r["ticks_b"]) / r["clk_tck"] * 1000 / r["requests"]
            r["cpu_a_ms"] = r["ticks_a"] / r["clk_tck"] * 1000 / r["requests"]
            r["cpu_b_ms"] = r["ticks_b"] / r["clk_tck"] * 1000 / r["requests"]
            r["per_cpu_s"] = r["requests"] / ((r["ticks_a"] + r["ticks_b"]) / r["clk_tck"])
            rows.append(r)
    return rows


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def main():
    rows = load(sys.argv[1])
    groups = {}
    for r in rows:
        groups.setdefault((r["kind"], r["mode"]), []).append(r)

    print()
    print("| pair | mode | runs | req/s | p50 ms | p99 ms | CPU ms/req (A+B) | A | B | RSS A MB | RSS B MB | spans received / expected |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    summary = {}
    for (kind, mode), rs in groups.items():
        s = {k: med(rs, k) for k in ("rps", "p50", "p99", "cpu_ms", "cpu_a_ms", "cpu_b_ms",
                                       "per_cpu_s", "rss_a1", "rss_b1")}
        summary[(kind, mode)] = s
        spans = []
        for r in rs:
            if kind == "rust" and (mode in ("traced-1.0", "sink-down", "sink-black-hole") or mode.startswith("sec-")):
                spans.append(f"{r['received']}/{3 * r['requests']}")
            elif kind == "rust" and mode == "traced-0.01":
                spans.append(f"{r['received']}/≈{0.03 * r['requests']:.0f}")
            else:
                spans.append(f"{r['received']}")
        print(f"| {kind} | {mode} | {len(rs)} | {s['rps']:.0f} | {s['p50']:.3f} | {s['p99']:.3f} | "
              f"{s['cpu_ms']:.4f} | {s['cpu_a_ms']:.4f} | {s['cpu_b_ms']:.4f} | "
              f"{s['rss_a1'] / 1024:.1f} | {s['rss_b1'] / 1024:.1f} | {', '.join(spans)} |")

    plain = summary.get(("rust", "sec-plain"))
    if plain:
        print()
        print("Cost of the operator key and of mutual TLS per request (A+B CPU, medians, same run;")
        print("A -> B over TLS with connections reused: the connections each process accepted are shown):")
        print("| mode | req/s | vs plain | p50 ms | CPU µs/req (A+B) | extra µs/req vs plain | A | B | connections accepted A / B (per run) |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        for mode in ("sec-plain", "sec-key", "sec-tls", "sec-tls+key"):
            s = summary.get(("rust", mode))
            if not s:
                continue
            conns = ", ".join(f"{r['conn_a']} / {r['conn_b']}" for r in groups[("rust", mode)])
            print(f"| {mode[4:]} | {s['rps']:.0f} | {s['rps'] / plain['rps']:.3f} | {s['p50']:.3f} | "
                  f"{s['cpu_ms'] * 1000:.1f} | {(s['cpu_ms'] - plain['cpu_ms']) * 1000:+.1f} | "
                  f"{s['cpu_a_ms'] * 1000:.1f} | {s['cpu_b_ms'] * 1000:.1f} | {conns} |")
        requests = [r["requests"] for r in groups[("rust", "sec-tls")]] if ("rust", "sec-tls") in groups else []
        if requests:
            print(f"  (a run of {min(requests)}-{max(requests)} requests: B accepting as many connections as A's pool")
            print("   holds, not one per request, is the connection reuse that makes TLS cheap)")
        return

    base = summary.get(("rust", "untraced"))
    traced = summary.get(("rust", "traced-1.0"))
    print()
    if base:
        print("Ratios traced/untraced (medians, same run):")
        for mode in ("traced-1.0", "traced-0.01", "sink-down", "sink-black-hole"):
            s = summary.get(("rust", mode))
            if s:
                line = (f"  {mode:16s} req/s {s['rps'] / base['rps']:.3f}   "
                        f"CPU/req {s['cpu_ms'] / base['cpu_ms']:.2f}x")
                if traced and mode.startswith("sink"):
                    line += f"   req/s vs traced-1.0 with the sink up {s['rps'] / traced['rps']:.3f}"
                print(line)
    for mode in ("sink-down", "sink-black-hole"):
        for r in groups.get(("rust", mode), []):
            print(f"  {mode}: RSS growth over {r['secs']} s: A {(r['rss_a1'] - r['rss_a0']) / 1024:+.1f} MB, "
                  f"B {(r['rss_b1'] - r['rss_b0']) / 1024:+.1f} MB (A {r['rss_a1'] / 1024:.1f} MB, B {r['rss_b1'] / 1024:.1f} MB at the end)")

    on, off = summary.get(("rust", "metrics-on")), summary.get(("rust", "metrics-off"))
    if on and off:
        print()
        print("Metrics on/off at rate 0.1 (medians, interleaved rounds):")
        print(f"  req/s      on {on['rps']:.0f}   off {off['rps']:.0f}   on/off {on['rps'] / off['rps']:.3f}")
        print(f"  CPU ms/req on {on['cpu_ms']:.4f}   off {off['cpu_ms']:.4f}   on/off {on['cpu_ms'] / off['cpu_ms']:.3f}")
        print(f"  p99 ms     on {on['p99']:.3f}   off {off['p99']:.3f}")
        print("  per round (on, off req/s): " + ", ".join(
            f"({a['rps']:.0f}, {b['rps']:.0f})"
            for a, b in zip(groups[("rust", "metrics-on")], groups[("rust", "metrics-off")])))

    py = summary.get(("python", "traced-1.0"))
    if py and traced:
        print()
        print("Ours/Python, both traced at rate 1.0 (medians):")
        print(f"  req/s            {traced['rps'] / py['rps']:.1f}x  ({traced['rps']:.0f} vs {py['rps']:.0f})")
        print(f"  req/s per CPU-s  {traced['per_cpu_s'] / py['per_cpu_s']:.1f}x  "
              f"({traced['per_cpu_s']:.0f} vs {py['per_cpu_s']:.0f})")
        print(f"  RSS A, B         {traced['rss_a1'] / 1024:.1f}, {traced['rss_b1'] / 1024:.1f} MB vs "
              f"{py['rss_a1'] / 1024:.1f}, {py['rss_b1'] / 1024:.1f} MB")

    print()
    print("Performance targets:")
    def verdict(ok):
        return "MET" if ok else "NOT MET"
    if base and traced:
        ratio = traced["rps"] / base["rps"]
        print(f"  traced 1.0 >= 0.85 x untraced req/s: {ratio:.3f}  {verdict(ratio >= 0.85)}")
        lost = [3 * r["requests"] - r["received"] for r in groups[("rust", "traced-1.0")]]
        print(f"  0 spans dropped with the sink up: missing per run {lost} (negative: spans of requests "
              f"wrk cut off at the end)  {verdict(all(x <= 0 for x in lost))}")
        rss = max(traced["rss_a1"], traced["rss_b1"]) / 1024
        print(f"  RSS <= 20 MB per service: max {rss:.1f} MB  {verdict(rss <= 20)}")
    for mode in ("sink-down", "sink-black-hole"):
        s = summary.get(("rust", mode))
        if s and base:
            r = groups[("rust", mode)][0]
            growth = max(r["rss_a1"] - r["rss_a0"], r["rss_b1"] - r["rss_b0"]) / 1024
            ref = traced or base
            ratio = s["rps"] / ref["rps"]
            print(f"  {mode}: >= 0.95 x throughput (vs traced-1.0, sink up): {ratio:.3f}  {verdict(ratio >= 0.95)}; "
                  f"<= 10 MB RSS growth: {growth:+.1f} MB  {verdict(growth <= 10)}")
    if on and off:
        ratio = on["rps"] / off["rps"]
        print(f"  metrics on within 2 % of off (req/s): {ratio:.3f}  {verdict(abs(ratio - 1) <= 0.02)}"
              " (wall-clock throughput on a shared machine; bench/profile.sh metrics-on-0.1"
              " metrics-off-0.1 counts instructions, which load does not move)")
    if py and traced:
        ratio = traced["per_cpu_s"] / py["per_cpu_s"]
        print(f"  >= 25 x Python req/s per CPU-second: {ratio:.1f}x  {verdict(ratio >= 25)}")


if __name__ == "__main__":
    main()
