"""`optbench run` on the built-in quickstart, end to end, in a fresh process.

Each repetition starts a new Python process running ``optbench run --overwrite --out DIR``
(the sweep, the three GIFs with their PNG/PDF frames, and the report), and times it from
the outside, interpreter start-up and imports included:

- cold: an empty JAX compilation cache (a new ``XDG_CACHE_HOME``), so every
  (problem, optimizer) group is compiled;
- warm: the same command again with the cache that the cold run filled.

Targets on a 2-core machine: under 20 s cold and under 10 s warm. The time inside the
process is split with ``meta.json`` (compile and run seconds of the groups) so that what
is left is start-up, writing and rendering.

    python benchmarks/quickstart.py             # 3 cold and 3 warm runs
    python benchmarks/quickstart.py --repeats 1
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

from optbench.api import machine_meta


def one_run(cache: Path, out: Path) -> tuple[float, float, float]:
    """(wall s, compile s, run s) of one ``optbench run`` in a fresh process."""
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), MPLBACKEND="Agg")
    cmd = [sys.executable, "-m", "optbench", "run", "--overwrite", "--out", str(out)]
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t
    groups = json.loads((out / "meta.json").read_text())["groups"]
    return wall, sum(g["compile_s"] for g in groups), sum(g["run_s"] for g in groups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    meta = machine_meta()
    print(f"machine: {meta['processor']}, {os.cpu_count()} cores; jax {meta['jax']}")
    cold, warm = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            cache, out = Path(tmp) / f"cache{r}", Path(tmp) / "out"
            cold.append(one_run(cache, out))
            warm.append(one_run(cache, out))
        files = sorted(p.name for p in out.iterdir())
    print(f"wrote: {', '.join(files)}")
    print(f"{'':6s} {'wall s':>8s} {'compile s':>10s} {'run s':>7s}   (medians of {args.repeats})")
    for name, rows, target in (("cold", cold, 20), ("warm", warm, 10)):
        wall, comp, run = (statistics.median(col) for col in zip(*rows, strict=True))
        spread = f"{min(r[0] for r in rows):.1f}-{max(r[0] for r in rows):.1f}"
        line = f"{name:6s} {wall:8.1f} {comp:10.2f} {run:7.2f}   target < {target} s"
        print(f"{line}; range {spread} s")


if __name__ == "__main__":
    main()
