"""A model's initial parameters: a small program of the model alone, which every optimizer's
group of the model reuses (its random draws were 40% of a digits CNN training program's
compile when they were part of it)."""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import Any

import jax
from jax import lax

from optbench import compilation
from optbench.problems.tasks.models import Model

INIT_OPTIONS = compilation.LLVM_O1
"""XLA options of the initialisation program, which runs once: LLVM's -O1 compiled a digits
CNN's in 0.5 s against 2.0 s at the default -O2, and gives the same bits (checked for every
task's model in float32 and float64; ``tests/test_compile_cost.py``)."""


def initial(model: Model, dtype, model_key: Hashable | None, seeds: jax.Array) -> tuple[Any, float]:
    """``(params, state, run keys)`` of the runs of ``seeds`` (one shard's), stacked, and the
    seconds spent compiling their program (0 when this process already had it: ``model_key``
    names the model in the program cache; None: not kept).

    The seeds one after another (``lax.map``): vmapped, an orthogonal initialisation's
    matrix-vector products were batched ones, plain ones for a shard of one run, with other
    last bits."""

    def one(seed):
        k_init, k_run = jax.random.split(jax.random.PRNGKey(seed))
        return (*model.init(k_init, dtype), k_run)

    def init_models(seeds):
        return lax.map(one, seeds)

    key = None if model_key is None else ("init", model_key, str(dtype), seeds.shape)
    lower = functools.partial(jax.jit(init_models).lower, seeds)
    program, compile_s, _ = compilation.program(key, lower, last=False, options=INIT_OPTIONS)
    return program(seeds), compile_s
