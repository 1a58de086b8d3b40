"""Instructions per request by function, the modes side by side, from the
callgrind dumps bench/product.sh --callgrind writes (one directory per mode,
backend.out.1 / ai-stack.out.1 / sink.out.1: the dumps taken after the
counters were zeroed, N requests).

For each service: the total, then the functions with the most inclusive
instructions in the last mode (what a span, an attribute or a layer costs
with everything it calls), then the most self instructions (where the
instructions are spent: malloc, memcpy, hashing...). Names are shortened
(generic arguments and hashes dropped).

Usage: callgrind_by_function.py --per N [--top K] MODE=DIR..."""

import argparse
import re
import subprocess
import sys

SERVICES = ("backend", "ai-stack", "sink")
# The inclusive view, second list: our code and the tracing stack only.
OURS = re.compile(r"autobot|opentelemetry|tracing|ollama|reqwest_middleware|ring::digest|serde_json")
LINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+(.*?)(?:\s+\[[^\]]*\])?\s*$")


def annotate(path, inclusive):
    """{function: instructions} from callgrind_annotate (all functions).

    A dump taken while threads run (callgrind_control -d) charges the frames
    still on their stacks (thread start, the runtime's worker loop) with
    their inclusive cost also in the self view: entries over a third of the
    total are those frames, and are left out of the self view."""
    out = subprocess.run(
        ["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", "--threshold=100",
         "--auto=no", path],
        capture_output=True, text=True, check=True).stdout
    costs = {}
    started = False
    program = None
    for line in out.splitlines():
        if not started:
            started = line.strip().startswith("Ir") and "file:function" in line
            continue
        m = LINE.match(line)
        if not m:
            continue
        cost = int(m.group(1).replace(",", ""))
        if program is None:
            program = total(path)
        if not inclusive and cost * 3 > program:
            continue
        name = m.group(2)
        name = name.split(":", 1)[1] if ":" in name and not name.startswith("<") else name
        costs[name] = costs.get(name, 0) + cost
    return costs


def total(path):
    with open(path) as fh:
        for line in fh:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    return 0


def short(name, width=110):
    """Drops hashes and the generic arguments inside the outermost `<…>`."""
    name = re.sub(r"::h[0-9a-f]{16}$", "", name)
    out, depth = [], 0
    for ch in name:
        if ch == "<":
            depth += 1
            if depth == 2:
                out.append("<…")
            if depth >= 2:
                continue
        elif ch == ">":
            depth -= 1
            if depth >= 1:
                if depth == 1:
                    out.append(">")
                continue
        elif depth >= 2:
            continue
        out.append(ch)
    name = "".join(out)
    return name if len(name) <= width else name[: width - 1] + "…"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--per", type=int, required=True)
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("modes", nargs="+")
    args = ap.parse_args()
    modes = [m.split("=", 1) for m in args.modes]
    names = [m for m, _ in modes]
    for service in SERVICES:
        files = {m: f"{d}/{service}.out.1" for m, d in modes}
        try:
            totals = {m: total(f) / args.per for m, f in files.items()}
        except FileNotFoundError as e:
            print(f"callgrind_by_function: {e}", file=sys.stderr)
            continue
        print()
        print(f"== {service}: instructions per request, " +
              ", ".join(f"{m} {totals[m]:,.0f}" for m in names))
        for inclusive, ours in ((True, False), (True, True), (False, False)):
            costs = {m: annotate(f, inclusive) for m, f in files.items()}
            last = names[-1]
            ranked = sorted(((fn, c) for fn, c in costs[last].items() if not ours or OURS.search(fn)),
                            key=lambda kv: -kv[1])[: args.top]
            what = "inclusive" if inclusive else "self"
            if ours:
                what += f" (functions matching {OURS.pattern})"
            print(f"-- {what}, top {args.top} of {last}, per request")
            print("  " + "".join(f"{m:>14}" for m in names) + "  function")
            for fn, _ in ranked:
                cells = "".join(f"{costs[m].get(fn, 0) / args.per:>14,.0f}" for m in names)
                print(f"  {cells}  {short(fn)}")


if __name__ == "__main__":
    main()
