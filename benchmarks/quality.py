"""What the training tasks reach on the budgets of the quality bar (the README's figures).

- ``digits_cnn``: Adam 1e-3, batch 64, 20 epochs; test accuracy of seeds 0-2 (one vmapped
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

import optbench.tasks as tasks
from optbench.tasks import data


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


def main() -> None:
    seeds = [0, 1, 2]
    res = train(tasks.get("digits_cnn"), seeds, 20)
    ours = ", ".join(f"{a:.3f}" for a in res.test_accuracy)
    theirs = ", ".join(f"{torch_cnn_accuracy(s):.3f}" for s in seeds)
    print(f"digits_cnn, 20 epochs, test accuracy (seeds 0-2): optbench {ours}; pytorch {theirs}")
    for cell in ("lstm", "gru", "rnn"):
        res = train(tasks.get("adding", cell=cell, length=50), [0], 4000)
        print(f"adding, length 50, {cell:4s} 4,000 steps: test MSE {res.test_loss[0]:.4f}")


if __name__ == "__main__":
    main()
