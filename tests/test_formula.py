"""The safe formula compiler: what it accepts, what it computes, what it rejects."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optbench import ConfigError
from optbench.problems.surfaces.formula import FUNCTIONS, compile_formula, evaluate

XY = ["x", "y"]
PARAMS = {"a": 1.5, "b": 100.0}


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


# (formula, numpy reference over x, y, a, b)
VALID = [
    ("x + y", lambda x, y, a, b: x + y),
    ("-x + +y", lambda x, y, a, b: -x + y),
    ("(a - x)**2 + b*(y - x**2)**2", lambda x, y, a, b: (a - x) ** 2 + b * (y - x**2) ** 2),
    ("x**3 - 3*x*y**2", lambda x, y, a, b: x**3 - 3 * x * y**2),
    ("2**x / (1 + y**2)", lambda x, y, a, b: 2**x / (1 + y**2)),
    ("sin(pi*x) * cos(e*y)", lambda x, y, a, b: np.sin(np.pi * x) * np.cos(np.e * y)),
    ("exp(-a*sqrt(x**2 + y**2))", lambda x, y, a, b: np.exp(-a * np.sqrt(x**2 + y**2))),
    ("log(1 + x**2) + abs(y) - tanh(x)", lambda x, y, a, b: np.log(1 + x**2) + abs(y) - np.tanh(x)),
    ("maximum(x, y) - minimum(x, 0)", lambda x, y, a, b: max(x, y) - min(x, 0)),
    ("arctan2(y, x) + arctan(x) + cosh(y) - sinh(x)",
     lambda x, y, a, b: np.arctan2(y, x) + np.arctan(x) + np.cosh(y) - np.sinh(x)),
    ("x**-2 + y**0.5 + x**a", lambda x, y, a, b: x**-2 + y**0.5 + x**a),
    ("1e-3*x + 2.5e2*y + 1_000", lambda x, y, a, b: 1e-3 * x + 2.5e2 * y + 1000),
]  # fmt: skip


@pytest.mark.parametrize("text,ref", VALID, ids=[v[0] for v in VALID])
def test_valid_formulas_match_numpy(x64, text, ref):
    f = compile_formula(text, XY, PARAMS)
    rng = np.random.default_rng(0)
    for x, y in rng.uniform(0.2, 2.0, size=(5, 2)):
        want = ref(x, y, PARAMS["a"], PARAMS["b"])
        got = float(f(jnp.array([x, y])))
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_gradient_matches_the_analytic_one(x64):
    f = compile_formula("(a - x)**2 + b*(y - x**2)**2", XY, {"a": 1.0, "b": 100.0})
    x, y = -1.2, 1.0
    want = [-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)]
    np.testing.assert_allclose(jax.grad(f)(jnp.array([x, y])), want, rtol=1e-12)
    np.testing.assert_allclose(jax.grad(f)(jnp.array([1.0, 1.0])), [0.0, 0.0], atol=0)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_jit_grad_vmap_keep_the_dtype(dtype):
    with jax.enable_x64(dtype == jnp.float64):
        f = compile_formula("a*sin(x)**2 + exp(-y) + 0.1*x*y + pi", XY, PARAMS)
        pts = jnp.asarray([[0.5, 1.0], [1.0, -2.0], [0.0, 0.0]], dtype=dtype)
        assert jax.jit(f)(pts[0]).dtype == dtype
        assert jax.jit(f)(pts[0]).shape == ()
        assert jax.jit(jax.grad(f))(pts[0]).dtype == dtype
        values = jax.jit(jax.vmap(f))(pts)
        assert values.dtype == dtype and values.shape == (3,)
        np.testing.assert_allclose(values[1], f(pts[1]), rtol=1e-6)


def test_constant_formula_is_a_scalar_of_the_input_dtype(x64):
    f = compile_formula("2*pi", XY)
    for dtype in (jnp.float32, jnp.float64):
        out = f(jnp.zeros(2, dtype))
        assert out.dtype == dtype and out.shape == ()
    assert float(f(jnp.zeros(2))) == 2 * math.pi
    assert jax.grad(f)(jnp.ones(2)).tolist() == [0.0, 0.0]


def test_integer_powers_are_smooth_at_zero():
    f = compile_formula("x**2 + y**a", XY, {"a": 4.0})
    g = jax.grad(f)(jnp.zeros(2))
    assert g.tolist() == [0.0, 0.0]


def test_parameters_are_baked_in_as_float64_constants(x64):
    f = compile_formula("x * (a / 3)", ["x"], {"a": 0.1})
    assert float(f(jnp.array([3.0]))) == 3.0 * (0.1 / 3)


def test_wrong_point_shape_is_an_error():
    f = compile_formula("x + y", XY)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        f(jnp.zeros(3))


# (formula, fragments the message must contain)
REJECTED = [
    ("x.__class__", ["attribute access", "'x.__class__'"]),
    ("__import__('os')", ["'__import__'", "calls only sin, cos"]),
    ("__import__('os').system('true')", ["not an allowed function", "__import__('os').system"]),
    ("open('/tmp/optbench_formula_probe', 'w')", ["'open'", "calls only"]),
    ("x + z", ["unknown name 'z'", "coordinates x, y", "parameters a, b", "pi, e"]),
    ("sine(x)", ["'sine'", "did you mean 'sin'"]),
    ("sin", ["'sin' is a function"]),
    ("sin(x, y)", ["sin takes 1", "sin(x, y)"]),
    ("sin(x=1)", ["sin takes 1"]),
    ("lambda: x", ["a lambda", "'lambda: x'"]),
    ("x[0]", ["a subscript", "'x[0]'"]),
    ("'abc'", ["a string"]),
    ("x + 'abc'", ["a string", "'abc'"]),
    ("f'{x}'", ["a string"]),
    ("x < y", ["a comparison", "'x < y'"]),
    ("x and y", ["'and'/'or'"]),
    ("x if y else 1", ["'if ... else'"]),
    ("[x for x in y]", ["a comprehension"]),
    ("(x, y)", ["a tuple"]),
    ("x // y", ["+ - * / **", "'x // y'"]),
    ("x % 2", ["+ - * / **"]),
    ("~x", ["unary"]),
    ("True * x", ["the constant True"]),
    ("1j * x", ["the constant 1j"]),
    ("(y := 2)", ["an assignment"]),
    ("x +", ["syntax error", "'x +'"]),
    ("x = 1", ["syntax error"]),
    ("x; import os", ["syntax error"]),
    ("", ["empty"]),
    ("x * (1/(a - 1.5))", ["division by zero", "1/(a - 1.5)"]),
    ("x * exp(1000*a)", ["evaluates to inf", "exp(1000*a)"]),
    ("x / (a - 1.5)", ["division by zero", "'x / (a - 1.5)'"]),
    ("x * 9.0**9**9", ["evaluates to inf", "9.0**9**9"]),
    ("x * log(-a)", ["evaluates to nan"]),
    ("x * 1e400", ["too large", "'1e400'"]),
    ("x + 1" + "0" * 400, ["too large"]),
]  # fmt: skip


@pytest.mark.parametrize("text,fragments", REJECTED, ids=[r[0] or "empty" for r in REJECTED])
def test_rejected_formulas_name_file_key_and_piece(text, fragments):
    with pytest.raises(ConfigError) as info:
        compile_formula(text, XY, PARAMS, file="surfaces/bad.toml")
    err = info.value
    assert err.file == "surfaces/bad.toml" and err.key == "formula"
    message = str(err)
    assert message.startswith("surfaces/bad.toml: formula: ")
    assert ";" in message  # what is wrong; the fix
    for fragment in fragments:
        assert fragment in message


def test_rejection_never_runs_the_code(tmp_path):
    probe = tmp_path / "probe"
    with pytest.raises(ConfigError):
        compile_formula(f"open({str(probe)!r}, 'w')", XY)
    with pytest.raises(ConfigError):
        compile_formula(f"__import__('pathlib').Path({str(probe)!r}).touch()", XY)
    assert not probe.exists()


def test_non_string_formula_is_rejected():
    with pytest.raises(ConfigError, match="expected a string"):
        compile_formula(3.0, XY, file="f.toml")  # type: ignore[arg-type]


def test_deep_nesting_is_rejected_cleanly():
    text = "(" * 150 + "x" + ")" * 150
    assert float(compile_formula(text, XY)(jnp.array([2.0, 0.0]))) == 2.0
    for deep in ("-" * 100_000 + "x", "-" * 9_000 + "x", "(" * 1000 + "x" + ")" * 1000):
        with pytest.raises(ConfigError, match=r"longer than|nested too deeply|syntax error"):
            compile_formula(deep, XY)


@pytest.mark.parametrize(
    "coords,params,fragment",
    [
        (["x", "pi"], {}, "'pi' is reserved"),
        (["x", "y"], {"sin": 1.0}, "'sin' is reserved"),
        (["x", "x"], {}, "'x' is used twice"),
        (["x", "y"], {"x": 1.0}, "'x' is used twice"),
        (["x-1"], {}, "not a valid name"),
    ],
)
def test_bad_coordinate_and_parameter_names(coords, params, fragment):
    with pytest.raises(ConfigError, match=fragment):
        compile_formula("1", coords, params, file="s.toml")


def test_evaluate_constants():
    assert evaluate("a**2", {"a": 1.5}) == 2.25
    assert evaluate("2*pi") == 2 * math.pi
    assert evaluate(3) == 3.0
    assert evaluate("sqrt(b)/e", {"b": 4.0}) == 2.0 / math.e
    with pytest.raises(ConfigError, match="unknown name 'x'") as info:
        evaluate("x + 1", {"a": 1.0}, file="s.toml", key="minima[0].point[0]")
    assert info.value.key == "minima[0].point[0]" and info.value.file == "s.toml"


def test_whitelist_is_short_and_only_maps_to_jax_numpy():
    assert len(FUNCTIONS) <= 20
    for name, (arity, jfn, nfn) in FUNCTIONS.items():
        assert arity in (1, 2)
        assert jfn is getattr(jnp, name) and nfn is getattr(np, name)
