"""A slice of the ``digits`` config as a user runs it: optbench against PyTorch and plain optax.

The workload: problems ``cnn`` and ``cnn_dropout`` (conv3x3(16)-relu-maxpool-conv3x3(32)-
relu-maxpool-[dropout 0.3]-dense(10) on the 8x8 digits) x optimizers ``sgd`` and ``adam``,
the learning rates of ``configs/digits.toml`` (3 each) x 3 seeds: 36 runs of 20 epochs of
shuffled minibatches of 64 (the last, incomplete one dropped), the validation and test
loss and accuracy after every epoch, on the fixed split of ``digits_split()`` (60/20/20,
stratified, seed 0; the two scripts below redo it with scikit-learn, so that they import
neither jax nor optbench they do not need).

Every side is a fresh process, timed from the outside (interpreter start, imports, data,
training, evaluation and writing results, all included):

- ``optbench cold``: ``optbench run digits --problems cnn,cnn_dropout --optimizers
  sgd,adam --no-render --out DIR`` with an empty compilation cache (a new
  ``XDG_CACHE_HOME``, ``OPTBENCH_COMPILATION_CACHE`` unset); ``optbench warm``: the same
  command again on that cache. For both, ``compile_s`` and ``run_s`` summed over the
  groups of ``meta.json`` (groups compile concurrently, so the summed compile_s can exceed
  the wall time; warm, compile_s is the time to load the programs from the cache).
- ``pytorch``: an idiomatic script (written to a temporary folder and run with this
  interpreter): ``nn.Sequential`` of ``Conv2d``/``ReLU``/``MaxPool2d``/``Dropout``/
  ``Linear``, initialised as optbench (``model.apply`` of ``kaiming_normal_`` on the
  convolutions, ``xavier_uniform_`` on the output, zero biases; PyTorch's default
  initialisation learns visibly slower with SGD), ``DataLoader(shuffle=True,
  drop_last=True)``, ``torch.optim.SGD``/``Adam``, the 36 runs one after another, each
  epoch ``model.eval()`` and ``torch.no_grad()`` over the whole validation and test sets.
  Threads: PyTorch's default (``torch.get_num_threads()``, printed), not set by the script;
  ``--torch-threads N`` adds ``torch.set_num_threads(N)``. On a machine shared with other
  processes the default threads can be many times slower and erratic (measured on 2 busy
  cores: 8 to 106 s for the quick run's PyTorch side, 4.8 s with 1 thread): time on an
  idle machine.
- ``optax``: a hand-written JAX script: the CNN with ``lax.conv_general_dilated`` and
  ``lax.reduce_window`` (He-normal convolutions, Glorot-uniform output, as optbench), a
  ``jax.jit`` train step per run (it closes over that run's optimizer and dropout rate, so
  each run compiles its own, as a per-run training function does), a Python loop over
  epochs and NumPy-shuffled minibatches, a ``jax.jit`` evaluation each epoch; the 36 runs
  one after another; JAX's default (no persistent compilation cache).

The sides alternate across repetitions (odd repetitions run them in the reverse order,
the warm optbench run always just after its cold one). Printed per side: the median wall
time (range); for optbench also compile_s and run_s; then the ratios PyTorch/optbench and
optax/optbench (cold and warm), each the median of the paired ratios of a repetition. The
load average is printed next to every timing: other processes slow every side. To check
that the sides do the same work, the mean final validation accuracy over the runs of each
problem x optimizer is printed for each side (first repetition).

Usage::

    python benchmarks/digits_slice.py               # 2 repetitions, ~2.5 min each (2026-12-02)
    python benchmarks/digits_slice.py --repeats 3
    python benchmarks/digits_slice.py --quick       # 2 epochs, 1 seed, 1 repetition (smoke)
    python benchmarks/digits_slice.py --torch-threads 1
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from importlib import metadata
from pathlib import Path

from optbench.config.sources import builtin_dir

PROBLEMS = {"cnn": 0.0, "cnn_dropout": 0.3}  # label: dropout rate
OPTIMIZERS = ("sgd", "adam")
SIDES = ("optbench cold", "optbench warm", "pytorch", "optax")


def slice_config() -> dict:
    """Epochs, batch size, seeds and learning rates of the slice, from ``digits.toml``."""
    cfg = tomllib.loads((builtin_dir() / "digits.toml").read_text(encoding="utf-8"))
    problems = {p["label"]: p for p in cfg["problem"] if p["label"] in PROBLEMS}
    epochs = {p["epochs"] for p in problems.values()}
    batch = {p["batch_size"] for p in problems.values()}
    assert len(epochs) == len(batch) == 1, "the slice's problems differ in epochs or batch"
    assert problems["cnn_dropout"]["params"] == {"dropout": PROBLEMS["cnn_dropout"]}
    return {
        "epochs": epochs.pop(),
        "batch": batch.pop(),
        "seeds": cfg["seeds"],
        "lrs": {o: list(cfg["optimizer"][o]["learning_rate"]) for o in OPTIMIZERS},
    }


# The split of optbench.problems.tasks.data.digits_split(), in plain scikit-learn.
SPLIT = """
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

digits = load_digits()
x = (digits.images / 16.0).astype(np.float32)
y = digits.target.astype(np.int64)
x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
x_train, x_val, y_train, y_val = train_test_split(
    x_rest, y_rest, test_size=0.25, stratify=y_rest, random_state=0
)
"""

HEADER = """
import json
EPOCHS, BATCH, SEEDS = {epochs}, {batch}, {seeds}
PROBLEMS = {problems!r}  # label: dropout rate
LRS = {lrs!r}
"""

PYTORCH = """
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

train_set = TensorDataset(torch.tensor(x_train[:, None]), torch.tensor(y_train))
eval_sets = {
    "val": (torch.tensor(x_val[:, None]), torch.tensor(y_val)),
    "test": (torch.tensor(x_test[:, None]), torch.tensor(y_test)),
}


def make_model(dropout):
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), *([nn.Dropout(dropout)] if dropout else []), nn.Linear(32 * 2 * 2, 10),
    )


def init_weights(m):  # He-normal convolutions, Glorot-uniform output, zero biases
    if isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    elif isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
    if isinstance(m, nn.Conv2d | nn.Linear):
        nn.init.zeros_(m.bias)


def train(dropout, optimizer, lr, seed):
    torch.manual_seed(seed)
    model = make_model(dropout)
    model.apply(init_weights)
    opt = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[optimizer](model.parameters(), lr=lr)
    loader = DataLoader(train_set, batch_size=BATCH, shuffle=True, drop_last=True)
    history = []
    for epoch in range(EPOCHS):
        model.train()
        for x, y in loader:
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
        model.eval()
        row = {"epoch": epoch + 1}
        with torch.no_grad():
            for name, (x, y) in eval_sets.items():
                out = model(x)
                row[name + "_loss"] = F.cross_entropy(out, y).item()
                row[name + "_accuracy"] = (out.argmax(1) == y).float().mean().item()
        history.append(row)
    return history


results = []
for problem, dropout in PROBLEMS.items():
    for optimizer, lrs in LRS.items():
        for lr in lrs:
            for seed in range(SEEDS):
                history = train(dropout, optimizer, lr, seed)
                results.append(dict(problem=problem, optimizer=optimizer, lr=lr, seed=seed,
                                    val_accuracy=history[-1]["val_accuracy"]))
print(json.dumps({"threads": torch.get_num_threads(), "runs": results}))
"""

OPTAX = """
import jax
import jax.numpy as jnp
import optax
from jax import lax


def init(key):
    k1, k2, k3 = jax.random.split(key, 3)
    he = jax.nn.initializers.he_normal()
    return {
        "conv1": {"w": he(k1, (3, 3, 1, 16)), "b": jnp.zeros(16)},
        "conv2": {"w": he(k2, (3, 3, 16, 32)), "b": jnp.zeros(32)},
        "out": {"w": jax.nn.initializers.glorot_uniform()(k3, (128, 10)), "b": jnp.zeros(10)},
    }


def conv(x, p):
    dims = ("NHWC", "HWIO", "NHWC")
    return lax.conv_general_dilated(x, p["w"], (1, 1), "SAME", dimension_numbers=dims) + p["b"]


def pool(x):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def apply(params, x, dropout=0.0, key=None):
    y = pool(jax.nn.relu(conv(x[..., None], params["conv1"])))
    y = pool(jax.nn.relu(conv(y, params["conv2"])))
    y = y.reshape(y.shape[0], -1)
    if key is not None and dropout > 0:
        keep = jax.random.bernoulli(key, 1 - dropout, y.shape)
        y = jnp.where(keep, y / (1 - dropout), 0.0)
    return y @ params["out"]["w"] + params["out"]["b"]


def loss_and_accuracy(logits, y):
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, (logits.argmax(1) == y).mean()


@jax.jit
def evaluate(params, x, y):
    return loss_and_accuracy(apply(params, x), y)


def train(dropout, optimizer, lr, seed):
    tx = {"sgd": optax.sgd, "adam": optax.adam}[optimizer](lr)
    key, init_key = jax.random.split(jax.random.PRNGKey(seed))
    params = init(init_key)
    opt_state = tx.init(params)

    @jax.jit
    def train_step(params, opt_state, x, y, key):
        def loss_fn(params):
            return loss_and_accuracy(apply(params, x, dropout, key), y)[0]

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    rng = np.random.default_rng(seed)
    steps = len(y_train) // BATCH
    history = []
    for epoch in range(EPOCHS):
        perm = rng.permutation(len(y_train))
        for i in range(steps):
            idx = perm[i * BATCH : (i + 1) * BATCH]
            key, step_key = jax.random.split(key)
            x, y = x_train[idx], y_train[idx]
            params, opt_state, loss = train_step(params, opt_state, x, y, step_key)
        row = {"epoch": epoch + 1}
        for name, x, y in (("val", x_val, y_val), ("test", x_test, y_test)):
            loss, acc = evaluate(params, x, y)
            row[name + "_loss"], row[name + "_accuracy"] = float(loss), float(acc)
        history.append(row)
    return history


results = []
for problem, dropout in PROBLEMS.items():
    for optimizer, lrs in LRS.items():
        for lr in lrs:
            for seed in range(SEEDS):
                history = train(dropout, optimizer, lr, seed)
                results.append(dict(problem=problem, optimizer=optimizer, lr=lr, seed=seed,
                                    val_accuracy=history[-1]["val_accuracy"]))
print(json.dumps({"runs": results}))
"""


def load() -> str:
    """The 1-minute load average, for the record."""
    return f"load {os.getloadavg()[0]:.1f}"


def machine_info() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = ", ".join(
        f"{p} {metadata.version(p)}" for p in ("optbench", "jax", "jaxlib", "optax", "torch")
    )
    return f"machine: {cpu}, {os.cpu_count()} cores; python {platform.python_version()}; {versions}"


def optbench_cmd(out: Path, quick_args: list[str]) -> list[str]:
    exe = Path(sys.executable).parent / "optbench"
    head = [str(exe)] if exe.is_file() else [sys.executable, "-m", "optbench"]
    cmd = ["run", "digits", "--problems", ",".join(PROBLEMS), "--optimizers"]
    return [*head, *cmd, ",".join(OPTIMIZERS), *quick_args, "--no-render", "--out", str(out)]


def timed(cmd: list[str], env: dict) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def run_optbench(tmp: Path, cache: Path, quick_args: list[str]) -> dict:
    out = Path(tempfile.mkdtemp(dir=tmp)) / "out"
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), MPLBACKEND="Agg")
    env.pop("OPTBENCH_COMPILATION_CACHE", None)
    wall, _ = timed(optbench_cmd(out, quick_args), env)
    groups = json.loads((out / "meta.json").read_text())["groups"]
    with open(out / "runs.csv", newline="") as f:
        runs = [
            {"problem": r["problem"], "optimizer": r["optimizer"], "lr": float(r["learning_rate"]),
             "seed": int(r["seed"]), "val_accuracy": float(r["val_accuracy"])}
            for r in csv.DictReader(f)
        ]  # fmt: skip
    return {
        "wall": wall,
        "compile_s": sum(g["compile_s"] for g in groups),
        "run_s": sum(g["run_s"] for g in groups),
        "runs": runs,
    }


def run_script(path: Path) -> dict:
    env = dict(os.environ)
    env.pop("OPTBENCH_COMPILATION_CACHE", None)
    wall, stdout = timed([sys.executable, str(path)], env)
    return {"wall": wall, **json.loads(stdout.strip().splitlines()[-1])}


def write_scripts(tmp: Path, cfg: dict, torch_threads: int | None) -> dict[str, Path]:
    header = HEADER.format(problems=PROBLEMS, **cfg)
    paths = {}
    torch_body = PYTORCH
    if torch_threads:
        torch_body = PYTORCH.replace(
            "\ntrain_set =", f"\ntorch.set_num_threads({torch_threads})\ntrain_set =", 1
        )
    for name, body in (("pytorch", torch_body), ("optax", OPTAX)):
        paths[name] = tmp / f"digits_{name}.py"
        paths[name].write_text(header + SPLIT + body)
    return paths


def accuracy_table(results: dict[str, dict]) -> None:
    print("\nmean final validation accuracy over each group's runs (first repetition):")
    print(f"   {'group':22s}" + "".join(f"{s:>15s}" for s in SIDES))
    for problem in PROBLEMS:
        for opt in OPTIMIZERS:
            cells = []
            for side in SIDES:
                accs = [
                    r["val_accuracy"]
                    for r in results[side]["runs"]
                    if r["problem"] == problem and r["optimizer"] == opt
                ]
                cells.append(f"{statistics.fmean(accs):15.3f}" if accs else f"{'-':>15s}")
            print(f"   {problem + ' x ' + opt:22s}" + "".join(cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="default 2 (--quick: 1)")
    parser.add_argument("--quick", action="store_true", help="2 epochs, 1 seed: a smoke run")
    parser.add_argument(
        "--torch-threads", type=int, default=None, help="torch.set_num_threads (default: not set)"
    )
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 2)
    cfg = slice_config()
    quick_args: list[str] = []
    if args.quick:
        cfg.update(epochs=2, seeds=1)
        quick_args = ["--epochs", "2", "--seeds", "1"]
    n_runs = len(PROBLEMS) * sum(len(v) for v in cfg["lrs"].values()) * cfg["seeds"]
    print(machine_info())
    print(
        f"workload: {n_runs} runs ({', '.join(PROBLEMS)} x {', '.join(OPTIMIZERS)}, learning "
        f"rates {cfg['lrs']}, {cfg['seeds']} seeds), {cfg['epochs']} epochs, batch "
        f"{cfg['batch']}, val + test evaluated every epoch; {repeats} repetitions [{load()}]"
    )
    print("optbench:", " ".join(optbench_cmd(Path("DIR"), quick_args)))
    rows: dict[str, list[dict]] = {s: [] for s in SIDES}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        scripts = write_scripts(tmp, cfg, args.torch_threads)
        for r in range(repeats):
            order = ["optbench", "pytorch", "optax"]
            for side in order if r % 2 == 0 else order[::-1]:
                if side == "optbench":
                    cache = Path(tempfile.mkdtemp(dir=tmp))
                    for name in ("optbench cold", "optbench warm"):
                        res = run_optbench(tmp, cache, quick_args)
                        rows[name].append(res)
                        print(
                            f"   rep {r} {name:14s} wall {res['wall']:7.1f} s (compile_s "
                            f"{res['compile_s']:6.1f}, run_s {res['run_s']:6.1f}) [{load()}]"
                        )
                    shutil.rmtree(cache, ignore_errors=True)
                else:
                    res = run_script(scripts[side])
                    rows[side].append(res)
                    extra = f" ({res['threads']} threads)" if "threads" in res else ""
                    print(f"   rep {r} {side:14s} wall {res['wall']:7.1f} s{extra} [{load()}]")

    print(f"\nmedian wall (range) over {repeats} repetitions [{load()}]:")
    for side in SIDES:
        walls = [x["wall"] for x in rows[side]]
        med, lo, hi = statistics.median(walls), min(walls), max(walls)
        line = f"   {side:14s} {med:7.1f} s ({lo:.1f}-{hi:.1f})"
        if side.startswith("optbench"):
            for key in ("compile_s", "run_s"):
                v = [x[key] for x in rows[side]]
                line += f"; {key} {statistics.median(v):6.1f} ({min(v):.1f}-{max(v):.1f})"
        print(line)
    print("\nratios of wall times (median of the paired ratios, range):")
    for num in ("pytorch", "optax"):
        for den in ("optbench cold", "optbench warm"):
            pairs = [a["wall"] / b["wall"] for a, b in zip(rows[num], rows[den], strict=True)]
            print(
                f"   {num + ' / ' + den:26s} {statistics.median(pairs):5.2f}x "
                f"({min(pairs):.2f}-{max(pairs):.2f})"
            )
    accuracy_table({s: rows[s][0] for s in SIDES})


if __name__ == "__main__":
    main()
