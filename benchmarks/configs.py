"""The shipped configs as a user runs them: ``optbench run NAME --no-render`` in a fresh
process, cold (an empty compilation cache: a new ``XDG_CACHE_HOME``, nothing shipped to
pre-fill it) and warm (the same cache again), timed from the outside.

``--compare-ahead`` also times each cold run with the local executor's background
compilation switched off (the next groups' programs are then compiled one after another,
as each group starts), alternating the two sides, to show what compiling ahead buys.
Per run it prints the wall time, the sum of the groups' compile and run seconds from
meta.json, the number of distinct programs and the machine's load average (other
processes slow both sides).

    python benchmarks/configs.py digits                      # cold and warm, 1 repetition
    python benchmarks/configs.py digits --compare-ahead --repeats 2
    python benchmarks/configs.py lecture quickstart
    python benchmarks/configs.py rnn --cold-only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run in the child process when the background compilation is switched off.
NO_AHEAD = """
import sys
from optbench import executors
executors._CompileAhead.__init__ = lambda self, batches: None
executors._CompileAhead.stop = lambda self: None
from optbench.cli import main
sys.argv = ["optbench", *sys.argv[1:]]
main()
"""


def one(name: str, cache: Path, out: Path, ahead: bool) -> dict:
    """One fresh ``optbench run`` process; its wall time and meta.json's totals."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    env.pop("OPTBENCH_COMPILATION_CACHE", None)
    args = ["run", name, "--no-render", "--out", str(out)]
    cmd = (
        [sys.executable, "-m", "optbench", *args]
        if ahead
        else [sys.executable, "-c", NO_AHEAD, *args]
    )
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    meta = json.loads((out / "meta.json").read_text())
    groups = meta["groups"]
    return {
        "wall_s": wall,
        "compile_s": sum(g["compile_s"] for g in groups),
        "run_s": sum(g["run_s"] for g in groups),
        "programs": len({g["program"] for g in groups}),
        "groups": len(groups),
        "load": load,
    }


def show(label: str, rows: list[dict]) -> None:
    walls = [r["wall_s"] for r in rows]
    print(
        f"  {label:<22} wall {statistics.median(walls):7.1f} s ({min(walls):.1f}-{max(walls):.1f})"
        f"  compile {statistics.median(r['compile_s'] for r in rows):6.1f} s"
        f"  run {statistics.median(r['run_s'] for r in rows):6.1f} s"
        f"  {rows[0]['programs']} programs / {rows[0]['groups']} groups"
        "  load " + ", ".join(f"{r['load']:.1f}" for r in rows),
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="+", help="built-in config names")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--compare-ahead", action="store_true")
    parser.add_argument("--cold-only", action="store_true", help="no warm run (long configs)")
    args = parser.parse_args()
    for name in args.names:
        print(f"{name}:", flush=True)
        rows: dict[str, list[dict]] = {"cold": [], "cold, one at a time": [], "warm": []}
        for _ in range(args.repeats):
            sides = [True, False] if args.compare_ahead else [True]
            for ahead in sides if len(rows["cold"]) % 2 == 0 else sides[::-1]:
                with tempfile.TemporaryDirectory() as tmp:
                    cache, out = Path(tmp) / "cache", Path(tmp) / "out"
                    key = "cold" if ahead else "cold, one at a time"
                    rows[key].append(one(name, cache, out, ahead))
                    if ahead and not args.cold_only:
                        rows["warm"].append(one(name, cache, Path(tmp) / "warm", True))
        for label, found in rows.items():
            if found:
                show(label, found)


if __name__ == "__main__":
    main()
