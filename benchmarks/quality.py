"""What the training tasks reach on the budgets of the quality bar (the README's figures).

- ``digits_cnn``: Adam 1e-3, batch 64, 20 epochs; test accuracy of seeds 0-15 (one
  program), and the same model trained with PyTorch (``nn.Conv2d``, ``torch.optim.Adam``)
  on the same split for comparison;
- ``adding``, length 50: Adam 1e-3, batch 64, 4,000 steps, test MSE of the LSTM, the GRU
  and the tanh RNN (predicting the mean gives 1/6 ~ 0.167).

    python benchmarks/quality.py          # about five minutes on two cores
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import torch
from tasks import torch_cnn_train  # benchmarks/tasks.py

import optbench.problems.tasks as tasks
from optbench.problems.tasks import data

SEEDS = 16


def train(task, seeds: list[int], budget: int):
    """Adam 1e-3, batch 64, ``budget`` epochs or steps, evaluated at the end."""
    return task.run(
        lambda h: optax.adam(h["learning_rate"]),
        {"learning_rate": np.full(len(seeds), 1e-3)},
        np.asarray(seeds),
        budget=budget,
        batch_size=64,
        log_every=10**9,
        dtype=jnp.float32,
    )


def torch_cnn_accuracy(seed: int, epochs: int = 20) -> float:
    """Test accuracy of the digits CNN trained with PyTorch on the same split."""
    net, _, _ = torch_cnn_train(seed, epochs)
    s = data.digits_split()
    with torch.no_grad():
        pred = net(torch.tensor(s.x_test[:, None])).argmax(1).numpy()
    return float((pred == s.y_test).mean())


def _spread(acc) -> str:
    acc = np.asarray(acc)
    return (
        f"mean {acc.mean():.4f} (sd {acc.std(ddof=1):.4f}, {acc.min():.3f}-{acc.max():.3f}), "
        f">= 0.97 in {(acc >= 0.9695).sum()} of {acc.size}; seeds 0-2: "
        + ", ".join(f"{a:.3f}" for a in acc[:3])
    )


def main() -> None:
    seeds = list(range(SEEDS))
    ours = train(tasks.get("digits_cnn"), seeds, 20).test_accuracy
    theirs = [torch_cnn_accuracy(s) for s in seeds]
    print(f"digits_cnn, 20 epochs, test accuracy over seeds 0-{SEEDS - 1}:")
    print(f"  optbench {_spread(ours)}")
    print(f"  pytorch  {_spread(theirs)}")
    for cell in ("lstm", "gru", "rnn"):
        res = train(tasks.get("adding", cell=cell, length=50), [0], 4000)
        print(f"adding, length 50, {cell:4s} 4,000 steps: test MSE {res.test_loss[0]:.4f}")


if __name__ == "__main__":
    main()
