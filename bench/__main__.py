"""All of bench/ in one command: the sync benchmark at several sizes, as one table.

    .venv/bin/python -m bench                          # N = 1,000, 10,000 and 50,000
    .venv/bin/python -m bench --sizes 1000,10000       # chosen sizes
    .venv/bin/python -m bench --quick                  # smoke run: N = 200, a few minutes
    .venv/bin/python -m bench --markdown FILE --json FILE   # also save the table / raw figures
    .venv/bin/python -m bench --all                    # also the emulator and connector benches

Per size N the CRM holds N accounts with 2 contacts each, N/4 vendors, N products and N/4 deals
(with the quotes, sales orders, invoices and purchase orders the emulator seeds); Books starts
empty (bench/bench_sync.py: `sizes_for`). Each size gets a fresh emulator, crmbooks home
and Prefect API; per module three runs (initial, 1% changed, nothing changed), each in its own
process, then the naive baseline on a capped sample, extrapolated. One row per size × module ×
run: API calls against the minimum the APIs allow, per record, wall and CPU time of the sync
process, its peak RSS, and the naive baseline's calls and seconds beside them. The table is
printed again after each size, so a long run shows what is done.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import bench_sync, common  # noqa: E402  (after the path is set)

DEFAULT_SIZES = "1000,10000,50000"
QUICK_SIZE = "200"
# --all: the other benchmarks' quick modes, run after the sync table.
OTHERS = ([sys.executable, "bench/bench_emulators.py", "--quick"],
          [sys.executable, "bench/bench_connectors.py", "--accounts", "1000",
           "--pacing-seconds", "10"])


def main(argv: list[str] | None = None) -> int:
    """Run the sync benchmark at each size and print one table (then --all's benchmarks)."""
    parser = argparse.ArgumentParser(prog="python -m bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", help=f"customers per size, comma-separated "
                                        f"(default {DEFAULT_SIZES}; --quick: {QUICK_SIZE})")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: one small size, one process per module, small sample")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    parser.add_argument("--naive-cap", type=float, default=1.0,
                        help="scale the naive sample (default 1: 100 accounts, 50 vendors, "
                             "100 products)")
    parser.add_argument("--modules", default=",".join(bench_sync.MODULES),
                        help="modules to run, comma-separated (default: all five; "
                             "transactions and deal_triggers use the links the other three "
                             "make, so they come after them; \"\": none)")
    parser.add_argument("--kill", action="store_true",
                        help="also kill a customers initial sync at half of its Books writes "
                             "and measure the rerun's calls against its minimum")
    parser.add_argument("--heap", action="store_true",
                        help="also trace the Python heap: its peak per run and, per pipeline "
                             "step, what stays live and the step's peak (tracemalloc; slower)")
    parser.add_argument("--markdown", type=Path, help="also write the table as Markdown here")
    parser.add_argument("--json", type=Path, help="also write the raw figures here (per size)")
    parser.add_argument("--all", action="store_true",
                        help="then run the emulator and connector benchmarks (quick modes)")
    args = parser.parse_args(argv)
    sizes = [int(n.replace("_", "")) for n in
             (args.sizes or (QUICK_SIZE if args.quick else DEFAULT_SIZES)).split(",")]
    if args.heap:
        os.environ[bench_sync.HEAP_ENV] = "1"
    info = common.machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    caps = bench_sync.naive_caps(args.naive_cap, 10 if args.quick else 1)
    rows, raw, started = [], {}, time.monotonic()
    modules = args.modules.split(",")  # "": none (with --kill: only the kill and its rerun)
    for size in sizes:
        print(f"\n== N = {size:,}: {bench_sync.sizes_for(size)}", flush=True)
        size_started = time.monotonic()
        pipeline, naive, _ = bench_sync.measure(bench_sync.sizes_for(size), caps,
                                                per_run=not args.quick,
                                                naive=not args.no_naive,
                                                modules=tuple(filter(None, modules)),
                                                kill=args.kill)
        baseline = {(e["module"], e["run"]): e for e in naive}
        rows += [bench_sync.compact_row(size, e, baseline.get((e["module"], e["run"])))
                 for e in pipeline]
        raw[size] = {"pipeline": pipeline, "naive": naive,
                     "seconds": time.monotonic() - size_started}
        print(f"\nN = {size:,} done in {raw[size]['seconds']:.0f} s\n", flush=True)
        print(common.table(rows, markdown=False), flush=True)
        if args.heap:
            print("\nPython heap per step (MB live after it / peak during it):", flush=True)
            print(common.table(heap_rows(size, pipeline), markdown=False), flush=True)
        save(args, info, caps, rows, raw)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if args.all:
        for command in OTHERS:
            print(f"\n$ {' '.join(command[1:])}", flush=True)
            subprocess.run(command, cwd=REPO, check=False)
    return 0


def heap_rows(size: int, pipeline: list[dict]) -> list[dict]:
    """--heap: one row per run, one column per pipeline step: live / peak Python heap, MB."""
    rows = []
    for entry in pipeline:
        steps = entry["result"].get("steps") or {}
        rows.append({"N": f"{size:,}", "module": entry["module"], "run": entry["run"],
                     **{name: (f"{steps[name]['live_mb']:.0f}/{steps[name]['peak_mb']:.0f}"
                               if name in steps else "-") for name in bench_sync.STEPS}})
    return rows


def save(args, info: dict, caps: dict, rows: list[dict], raw: dict) -> None:
    """Write what is measured so far (after each size: a long run keeps its finished sizes)."""
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "naive_caps": caps, "sizes": raw},
                                        default=str, indent=1), encoding="utf-8")
    if args.markdown:
        text = ["Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), "",
                f"Naive baseline: the first {caps} records per module, extrapolated per "
                "record.", "",
                common.table(rows, markdown=True, text_columns=("module", "run")), ""]
        args.markdown.write_text("\n".join(text), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
