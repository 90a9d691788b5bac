"""Built-in surface generators, for surfaces a formula cannot say (``kind = "..."``).

A generator takes its parameters (their types checked against :attr:`Generator.params`;
the generator bounds their values) and returns the function, the coordinate names, a default
start and the known minima.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np

from optbench import validate


@dataclass(frozen=True)
class Generated:
    """What a generator returns for one set of parameter values."""

    fn: Callable[[Any], Any]
    coords: tuple[str, ...]
    start: np.ndarray  # [n_starts, dim]
    minima: list[tuple[np.ndarray, float]]


@dataclass(frozen=True)
class Generator:
    """A built-in generator: default parameters and the function that builds from them."""

    params: dict[str, Any]
    make: Callable[[dict[str, Any]], Generated]
    doc: str


def _quadratic_nd(params: dict[str, Any]) -> Generated:
    dim = validate.in_range(params["dim"], "dim", minimum=1, subject="quadratic_nd: dim")
    seed = validate.in_range(params["seed"], "seed", minimum=0, subject="quadratic_nd: seed")
    rng = np.random.default_rng(seed)
    n_large = int(0.1 * dim + 0.5)
    small = rng.uniform(0.0, 1.0, dim - n_large)
    small[small == 0.0] = 0.5  # keep the spectrum strictly inside (0, 1)
    eigenvalues = np.concatenate([small, rng.uniform(30.0, 60.0, n_large)])
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q = q * np.sign(np.diag(r))  # Haar-distributed rotation
    # einsum's own loops, not BLAS: numpy's matmul gave other last bits with 1 and 2
    # OpenBLAS threads (a Dask worker runs with one), so a run's numbers followed the process
    hessian = np.einsum("ik,k,jk->ij", q, eigenvalues, q, optimize=False)
    hessian = 0.5 * (hessian + hessian.T)
    start = rng.standard_normal(dim)

    def fn(x: Any) -> Any:
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(jnp.result_type(float))
        a = jnp.asarray(hessian, dtype=x.dtype)
        return 0.5 * x @ (a @ x)

    fn.__name__ = f"quadratic_nd_{dim}_{seed}"
    fn.numpy = lambda x: float(0.5 * x @ (hessian @ x))  # type: ignore[attr-defined]
    return Generated(
        fn=fn,
        coords=tuple(f"x{i}" for i in range(dim)),
        start=start[None],
        minima=[(np.zeros(dim), 0.0)],
    )


#: Generator name -> generator.
GENERATORS: dict[str, Generator] = {
    "quadratic_nd": Generator(
        params={"dim": 100, "seed": 0},
        make=_quadratic_nd,
        doc=(
            "f(x) = 0.5 x^T A x with A = Q diag(lambda) Q^T: Q a seeded random rotation, "
            "round(dim/10) eigenvalues uniform in (30, 60), the rest uniform in (0, 1); "
            "the start is a seeded standard normal point"
        ),
    ),
}
