"""The surface catalogue: minima, literature values, loading, user folders, register."""

from __future__ import annotations

import math
import shutil
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optbench import ConfigError, surfaces
from optbench.surfaces import Surface, SurfaceSpec

REQUIRED = {
    "saddle", "monkey_saddle", "rosenbrock", "quadratic", "beale", "booth", "himmelblau",
    "rastrigin", "ackley", "styblinski_tang", "goldstein_price", "six_hump_camel", "quadratic_nd",
}  # fmt: skip
ALL = surfaces.names()


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield


def f64(surface: Surface, point) -> float:
    return float(surface.fn(jnp.asarray(point, dtype=jnp.float64)))


def test_catalogue_has_the_required_surfaces():
    assert REQUIRED <= set(ALL)
    assert ALL == sorted(ALL)


@pytest.mark.parametrize("name", ALL)
def test_every_surface_is_well_formed(name):
    s = surfaces.get(name)
    spec = surfaces.catalogue()[name]
    assert isinstance(s, Surface) and isinstance(spec, SurfaceSpec)
    assert s.name == name and spec.dim == s.dim == len(s.coords)
    assert s.start.ndim == 2 and s.start.shape[1] == s.dim
    assert s.plot_bounds.shape == s.escape_bounds.shape == (s.dim, 2)
    assert np.all(s.plot_bounds[:, 0] < s.plot_bounds[:, 1])
    # the escape box contains the plot box and the starts
    assert np.all(s.escape_bounds[:, 0] <= s.plot_bounds[:, 0])
    assert np.all(s.escape_bounds[:, 1] >= s.plot_bounds[:, 1])
    assert np.all((s.start >= s.escape_bounds[:, 0]) & (s.start <= s.escape_bounds[:, 1]))
    assert s.description and "\n" not in s.description
    assert s.reference and "\n" not in s.reference
    assert len(s.minima_smooth) == len(s.minima)
    assert s.bounded_below == bool(s.minima)
    if s.minima:
        assert s.min_value == min(v for _, v in s.minima)
    else:
        assert s.min_value is None
    assert not s.start.flags.writeable  # shared, cached objects are read-only


def test_default_escape_box_is_the_plot_box_scaled_10x():
    s = surfaces.get("rosenbrock")
    np.testing.assert_array_equal(s.plot_bounds, [[-2, 2], [-1, 3]])
    np.testing.assert_array_equal(s.escape_bounds, [[-20, 20], [-19, 21]])


MINIMA = [(name, i) for name in ALL for i in range(len(surfaces.get(name).minima))]


@pytest.mark.parametrize("name,i", MINIMA, ids=[f"{n}-{i}" for n, i in MINIMA])
def test_minima_have_their_value_and_zero_gradient(x64, name, i):
    s = surfaces.get(name)
    point, value = s.minima[i]
    assert point.dtype == np.float64
    assert f64(s, point) == pytest.approx(value, rel=1e-12, abs=1e-12)
    if s.minima_smooth[i]:
        grad = jax.grad(s.fn)(jnp.asarray(point))
        assert float(jnp.linalg.norm(grad)) <= 1e-6
    # a minimum: nothing lower close by
    rng = np.random.default_rng(i)
    for d in rng.normal(size=(8, s.dim)):
        assert f64(s, point + 1e-3 * d / np.linalg.norm(d)) > value


def test_unbounded_surfaces_have_no_minima():
    for name in ("saddle", "monkey_saddle"):
        s = surfaces.get(name)
        assert s.minima == [] and not s.bounded_below and s.min_value is None
    assert surfaces.get("himmelblau").min_value == 0.0
    assert len(surfaces.get("himmelblau").minima) == 4
    assert len(surfaces.get("six_hump_camel").minima) == 2


# Values from the literature (Jamil & Yang 2013; Surjanovic & Bingham's Virtual Library
# of Simulation Experiments) and from the definitions.
KNOWN = [
    ("beale", (0.0, 0.0), 14.203125),
    ("goldstein_price", (0.0, 0.0), 600.0),
    ("goldstein_price", (1.0, 1.0), 1876.0),
    ("rosenbrock", (-1.2, 1.0), 24.2),
    ("rosenbrock", (0.0, 0.0), 1.0),
    ("booth", (0.0, 0.0), 74.0),
    ("himmelblau", (0.0, 0.0), 170.0),
    ("six_hump_camel", (1.0, 1.0), 3.0 + 1.0 / 3.0 - 0.1),
    ("six_hump_camel", (0.0, 0.0), 0.0),
    ("styblinski_tang", (0.0, 0.0), 0.0),
    ("styblinski_tang", (1.0, 1.0), -10.0),
    ("rastrigin", (1.0, 1.0), 2.0),
    ("rastrigin", (0.5, 0.5), 40.5),
    ("ackley", (1.0, 1.0), 20.0 * (1.0 - math.exp(-0.2))),
    ("saddle", (1.0, 2.0), -3.0),
    ("monkey_saddle", (1.0, 1.0), -2.0),
    ("monkey_saddle", (-2.0, 0.5), -6.5),
]


@pytest.mark.parametrize("name,point,value", KNOWN, ids=[f"{n}{p}" for n, p, _ in KNOWN])
def test_known_values(x64, name, point, value):
    assert f64(surfaces.get(name), point) == pytest.approx(value, rel=1e-13, abs=1e-13)


def test_known_local_extrema(x64):
    # Himmelblau's local maximum and the camel's side minimum, to the digits published.
    assert f64(surfaces.get("himmelblau"), (-0.270845, -0.923039)) == pytest.approx(
        181.617, abs=1e-3
    )
    assert f64(surfaces.get("six_hump_camel"), (-1.7036, 0.7961)) == pytest.approx(
        -0.2155, abs=1e-4
    )
    # Styblinski-Tang: -39.16617 per coordinate (to the published digits)
    assert surfaces.get("styblinski_tang").min_value / 2 == pytest.approx(-39.16617, abs=1e-5)


@pytest.mark.parametrize("kappa,theta", [(20.0, 0.5235987755982988), (5.0, 0.0), (1e3, 1.2)])
def test_quadratic_condition_number_and_rotation(x64, kappa, theta):
    params = {"kappa": kappa, "theta": theta}
    s = surfaces.get("quadratic", **params)
    hessian = jax.jit(jax.hessian(s.fn))(jnp.zeros(2))
    eigenvalues, vectors = np.linalg.eigh(np.asarray(hessian))
    np.testing.assert_allclose(eigenvalues, [1.0, kappa], rtol=1e-12)
    steep = vectors[:, 1] * np.sign(vectors[1, 1] or 1.0)
    np.testing.assert_allclose(
        np.abs(steep), np.abs([-math.sin(theta), math.cos(theta)]), atol=1e-9
    )
    assert s.min_value == 0.0 and s.minima[0][0].tolist() == [0.0, 0.0]
    assert surfaces.get("quadratic").params["kappa"] == 20.0


def test_quadratic_nd_spectrum_and_minimum(x64):
    s = surfaces.get("quadratic_nd")
    assert s.dim == 100 and s.params == {"dim": 100, "seed": 0}
    hessian = np.asarray(jax.jit(jax.hessian(s.fn))(jnp.zeros(100)))
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-12)
    eigenvalues = np.linalg.eigvalsh(hessian)
    assert np.sum((eigenvalues > 0) & (eigenvalues < 1)) == 90
    assert np.sum((eigenvalues > 30) & (eigenvalues < 60)) == 10
    point, value = s.minima[0]
    assert value == 0.0 and not point.any()
    assert s.start.shape == (1, 100) and f64(s, s.start[0]) > 1.0
    assert f64(s, s.start[0]) == pytest.approx(0.5 * s.start[0] @ hessian @ s.start[0])


def test_quadratic_nd_is_seeded():
    a, b = surfaces.get("quadratic_nd", seed=1), surfaces.get("quadratic_nd", seed=1)
    c = surfaces.get("quadratic_nd", seed=2)
    x = jnp.linspace(-1.0, 1.0, 100)
    assert float(a.fn(x)) == float(b.fn(x)) != float(c.fn(x))
    assert not np.array_equal(a.start, c.start)
    small = surfaces.get("quadratic_nd", dim=20, seed=3)
    assert small.dim == 20 and small.coords[:2] == ("x0", "x1")
    eigenvalues = np.linalg.eigvalsh(np.asarray(jax.jit(jax.hessian(small.fn))(jnp.zeros(20))))
    assert np.sum(eigenvalues > 30) == 2


@pytest.mark.parametrize("name", ALL)
def test_float32_under_jit_and_grad(name):
    s = surfaces.get(name)
    x = jnp.asarray(s.start[0], dtype=jnp.float32)
    value = jax.jit(s.fn)(x)
    grad = jax.jit(jax.grad(s.fn))(x)
    assert value.dtype == jnp.float32 and value.shape == ()
    assert grad.dtype == jnp.float32 and grad.shape == (s.dim,)
    assert np.isfinite(float(value)) and np.all(np.isfinite(grad))
    batch = jnp.asarray(np.tile(s.start[:1], (3, 1)), dtype=jnp.float32)
    assert jax.vmap(s.fn)(batch).dtype == jnp.float32


def test_parameters_change_the_surface_and_its_minima(x64):
    s = surfaces.get("rosenbrock", a=2.0, b=10.0)
    assert s.params == {"a": 2.0, "b": 10.0}
    point, value = s.minima[0]
    assert point.tolist() == [2.0, 4.0] and value == 0.0
    assert f64(s, (0.0, 1.0)) == 4.0 + 10.0
    assert surfaces.get("rastrigin", A=5.0).fn(jnp.array([0.5, 0.5])) == pytest.approx(20.5)


def test_same_parameters_give_the_same_object():
    assert surfaces.get("rosenbrock") is surfaces.get("rosenbrock", a=1.0)
    assert surfaces.get("rosenbrock", b=5.0) is surfaces.get("rosenbrock", b=5)
    assert surfaces.get("rosenbrock", b=5.0) is not surfaces.get("rosenbrock")


def test_bad_names_and_parameters():
    with pytest.raises(ConfigError, match="unknown surface 'rosenbrok'; did you mean 'rosenbrock'"):
        surfaces.get("rosenbrok")
    with pytest.raises(ConfigError, match="no parameter 'bb'; did you mean 'b'") as info:
        surfaces.get("rosenbrock", bb=3.0)
    assert info.value.key == "bb" and "rosenbrock" in str(info.value)
    with pytest.raises(ConfigError, match="takes no parameters"):
        surfaces.get("beale", a=1.0)
    with pytest.raises(ConfigError, match="must be a number"):
        surfaces.get("rosenbrock", a="1")
    with pytest.raises(ConfigError, match="must be a number"):
        surfaces.get("rosenbrock", a=True)
    with pytest.raises(ConfigError, match="must be finite"):
        surfaces.get("rosenbrock", a=float("nan"))
    with pytest.raises(ConfigError, match="must be an integer"):
        surfaces.get("quadratic_nd", dim=10.5)
    with pytest.raises(ConfigError, match="dim must be >= 1"):
        surfaces.get("quadratic_nd", dim=0)
    with pytest.raises(ConfigError, match=r"out of range; use a value in \[1.0"):
        surfaces.get("quadratic", kappa=0.5)


def test_loading_is_cached_and_independent_of_the_working_directory(tmp_path, monkeypatch):
    first = surfaces.catalogue()
    monkeypatch.chdir(tmp_path)
    second = surfaces.catalogue()
    assert all(first[n] is second[n] for n in first)
    folder = surfaces.builtin_folder()
    assert folder.is_absolute() and folder.is_dir()
    assert {p.stem for p in folder.glob("*.toml")} >= REQUIRED


def test_installed_catalogue_location_is_preferred(tmp_path, monkeypatch):
    fake_pkg = tmp_path / "optbench"
    shutil.copytree(surfaces.builtin_folder(), fake_pkg / "_catalogue" / "surfaces")
    monkeypatch.setattr(
        surfaces, "__file__", str(fake_pkg / "problems" / "surfaces" / "__init__.py")
    )
    assert surfaces.builtin_folder() == (fake_pkg / "_catalogue" / "surfaces").resolve()
    specs = surfaces._read_folder(surfaces.builtin_folder(), {})
    assert set(specs) == set(surfaces.names()) - set(surfaces._REGISTERED)


def write(folder, name, text):
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(textwrap.dedent(text))
    return path


BOWL = """\
    name = "tilted_bowl"
    description = "A tilted bowl."
    formula = "(x - c)**2 + 2*y**2"
    coords = ["x", "y"]
    plot_bounds = [[-3, 3], [-3, 3]]
    escape_bounds = [[-5, 5], [-4, 4]]
    start = [[2.0, 1.0], [-2.0, -1.0]]
    [params]
    c = 0.5
    [[minima]]
    point = ["c", 0]
    value = 0
"""


def test_user_folder_loads(tmp_path, x64):
    write(tmp_path / "mine", "tilted_bowl", BOWL)
    names = surfaces.names([tmp_path / "mine"])
    assert "tilted_bowl" in names and "rosenbrock" in names
    assert "tilted_bowl" not in surfaces.names()
    spec = surfaces.catalogue([str(tmp_path / "mine")])["tilted_bowl"]
    assert spec.file == tmp_path / "mine" / "tilted_bowl.toml"
    s = spec.build(c=1.5)
    assert s.start.shape == (2, 2) and s.escape_bounds.tolist() == [[-5, 5], [-4, 4]]
    assert s.minima[0][0].tolist() == [1.5, 0.0]
    assert f64(s, (0.0, 1.0)) == 1.5**2 + 2.0


@pytest.mark.parametrize(
    "change,key,fragment",
    [
        (lambda t: t.replace('formula = "(x - c)**2 + 2*y**2"', 'formula = "(x - c)**2 + z"'),
         "formula", "unknown name 'z'"),
        (lambda t: t.replace("formula =", "formla ="), "formla", "did you mean 'formula'"),
        (lambda t: t.replace('coords = ["x", "y"]', ""), "coords", "missing key 'coords'"),
        (lambda t: t.replace('name = "tilted_bowl"', ""), "name", "missing key 'name'"),
        (lambda t: t.replace("start = [[2.0, 1.0], [-2.0, -1.0]]", "start = [1, 2, 3]"),
         "start", "expected points of 2 numbers"),
        (lambda t: t.replace("start = [[2.0, 1.0], [-2.0, -1.0]]", "start = [9.0, 0.0]"),
         "start", "outside the escape box"),
        (lambda t: t.replace("point = [\"c\", 0]", "point = [\"c\", \"q\"]"),
         "minima[0].point[1]", "unknown name 'q'"),
        (lambda t: t.replace("value = 0", "value = 0\nsmoth = true"), "minima[0].smoth",
         "did you mean 'smooth'"),
        (lambda t: t.replace("c = 0.5", 'c = "half"'), "params.c", "expected a finite number"),
        (lambda t: t.replace("[[-3, 3], [-3, 3]]", "[[3, -3], [-3, 3]]"), "plot_bounds", "lo < hi"),
        (lambda t: 'kind = "quadratic_nd"\n' + t, "kind", "either 'formula' or 'kind'"),
        (lambda t: t.replace("[params]", "[params\n"), None, "not valid TOML"),
    ],
    ids=["formula", "typo", "no-coords", "no-name", "start-shape", "start-outside",
         "minimum-formula", "minimum-key", "param-type", "bounds", "both", "toml"],
)  # fmt: skip
def test_malformed_files_are_rejected_naming_file_and_key(tmp_path, change, key, fragment):
    path = write(tmp_path, "broken", change(textwrap.dedent(BOWL)))
    with pytest.raises(ConfigError) as info:
        surfaces.catalogue([tmp_path])
    err = info.value
    assert err.file == str(path) and err.key == key
    assert fragment in str(err) and str(err).startswith(str(path))


@pytest.mark.parametrize(
    "change,key,fragment",
    [
        (lambda t: t.replace("value = 0", "value = 0\nsmooth = 1"), "minima[0].smooth",
         "true or false"),
        (lambda t: t.replace("value = 0", ""), "minima[0].value", "missing key 'value'"),
        (lambda t: t.replace('point = ["c", 0]', "point = [1, 2, 3]"), "minima[0].point",
         "expected points of 2 numbers"),
        (lambda t: t.replace("c = 0.5", "c = 0.5\n[param_bounds]\nd = [0, 1]"),
         "param_bounds.d", "unknown parameter 'd'"),
        (lambda t: t.replace("c = 0.5", "c = 0.5\n[param_bounds]\nc = [2, 1]"),
         "param_bounds.c", "lo <= hi"),
        (lambda t: t.replace("c = 0.5", "c = 0.5\n[param_bounds]\nc = [1, inf]"),
         "param_bounds.c", "lies outside [1, inf]"),
        (lambda t: t.replace('"A tilted bowl."', '"""A\ntilted bowl."""'), "description",
         "one line"),
        (lambda t: t.replace('name = "tilted_bowl"', "name = 3"), "name", "put it in quotes"),
        (lambda t: "params = 3\n" + t.replace("[params]\nc = 0.5\n", ""), "params",
         "must be a table"),
        (lambda t: t.replace('formula = "(x - c)**2 + 2*y**2"', ""), "formula",
         "missing key 'formula'"),
        (lambda t: t.replace("start = [[2.0, 1.0], [-2.0, -1.0]]", ""), "start",
         "missing key 'start'"),
        (lambda t: t.replace("escape_bounds = [[-5, 5], [-4, 4]]", "escape_bounds = [1, 1]"),
         "escape_bounds", "lo < hi"),
    ],
    ids=["smooth-type", "no-value", "minimum-point", "bounds-name", "bounds-order",
         "bounds-default", "two-lines", "name-type", "params-type", "no-formula", "no-start",
         "escape"],
)  # fmt: skip
def test_more_malformed_files_name_file_and_key(tmp_path, change, key, fragment):
    path = write(tmp_path, "broken", change(textwrap.dedent(BOWL)))
    with pytest.raises(ConfigError) as info:
        surfaces.catalogue([tmp_path])
    err = info.value
    assert err.file == str(path) and err.key == key
    assert fragment in str(err) and str(err).startswith(str(path))


@pytest.mark.parametrize(
    "extra,key,fragment",
    [
        ("[params]\ndim = 10.5\n", "params.dim", "must be an integer"),
        ("[params]\ndimm = 3\n", "params.dimm", "did you mean 'dim'"),
        ("[params]\nseed = -1\n", "params.seed", "seed must be >= 0"),
        ("start = [0, 0]\n[params]\ndim = 3\n", "start", "expected points of 3 numbers"),
        ("escape_bounds = [3, 1]\n", "escape_bounds", "lo < hi"),
    ],
)
def test_malformed_generator_files(tmp_path, extra, key, fragment):
    text = 'name = "b"\nkind = "quadratic_nd"\nplot_bounds = [-2, 2]\n' + extra
    path = write(tmp_path, "big", text)
    with pytest.raises(ConfigError) as info:
        surfaces.catalogue([tmp_path])
    assert info.value.file == str(path) and info.value.key == key
    assert fragment in str(info.value)
    write(tmp_path, "big", 'name = "b"\nkind = "quadratic_nd"\n')
    with pytest.raises(ConfigError, match="missing key 'plot_bounds'") as info:
        surfaces.catalogue([tmp_path])
    assert info.value.key == "plot_bounds"


def test_parameter_errors_say_what_failed():
    with pytest.raises(ConfigError, match="a must be finite, got inf") as info:
        surfaces.get("rosenbrock", a=float("inf"))
    assert info.value.key == "a"
    with pytest.raises(ConfigError, match="must be an integer") as info:
        surfaces.get("quadratic_nd", seed=True)
    assert info.value.key == "seed"
    with pytest.raises(ConfigError, match="seed must be >= 0") as info:
        surfaces.get("quadratic_nd", seed=-1)
    assert info.value.key == "seed"
    assert surfaces.get("rosenbrock", a=np.float32(2.0)).params["a"] == 2.0
    assert surfaces.get("quadratic_nd", dim=np.int64(4)).dim == 4


def test_register_checks_minima():
    kwargs = dict(dim=2, start=[0, 0], plot_bounds=[-1, 1])
    with pytest.raises(ConfigError, match="value must be a finite number") as info:
        surfaces.register("bad_test", jnp.sum, minima=[([0, 0], float("nan"))], **kwargs)
    assert info.value.key == "minima[0].value"
    with pytest.raises(ConfigError, match="expected one point") as info:
        surfaces.register("bad_test", jnp.sum, minima=[([[0, 0], [1, 1]], 0.0)], **kwargs)
    assert info.value.key == "minima[0]"
    with pytest.raises(ConfigError, match="lo < hi") as info:
        surfaces.register("bad_test", jnp.sum, dim=2, start=[0, 0], plot_bounds=[1, -1])
    assert info.value.key == "plot_bounds"
    assert "bad_test" not in surfaces.names()


def test_generator_files(tmp_path):
    write(tmp_path, "big", """\
        name = "big_quadratic"
        kind = "quadratic_nd"
        plot_bounds = [-2, 2]
        [params]
        dim = 30
        seed = 7
    """)  # fmt: skip
    s = surfaces.catalogue([tmp_path])["big_quadratic"].build()
    assert s.dim == 30 and s.params == {"dim": 30, "seed": 7}
    assert s.plot_bounds.shape == (30, 2) and s.escape_bounds[0].tolist() == [-20, 20]
    bad = 'name = "b"\nkind = "quadratic_nd"\nplot_bounds = [-2, 2]\n[params]\ndim = 0\n'
    path = write(tmp_path, "big", bad)
    with pytest.raises(ConfigError, match="dim must be >= 1") as info:
        surfaces.catalogue([tmp_path])
    assert info.value.file == str(path) and info.value.key == "params.dim"
    write(tmp_path, "big", 'name = "b"\nkind = "quadratic_ndd"\nplot_bounds = [-2, 2]\n')
    with pytest.raises(ConfigError, match="did you mean 'quadratic_nd'") as info:
        surfaces.catalogue([tmp_path])
    assert info.value.key == "kind"
    write(
        tmp_path,
        "big",
        'name = "b"\nkind = "quadratic_nd"\nplot_bounds = [-2, 2]\ncoords = ["x"]\n',
    )
    with pytest.raises(ConfigError, match="the generator provides it"):
        surfaces.catalogue([tmp_path])


def test_duplicate_names_are_rejected(tmp_path):
    path = write(tmp_path / "a", "rosenbrock", BOWL.replace("tilted_bowl", "rosenbrock"))
    with pytest.raises(ConfigError, match=r"already defined in .*rosenbrock\.toml") as info:
        surfaces.catalogue([tmp_path / "a"])
    assert info.value.file == str(path) and info.value.key == "name"
    write(tmp_path / "b", "one", BOWL)
    second = write(tmp_path / "b", "two", BOWL)
    with pytest.raises(ConfigError, match="'tilted_bowl' is already defined") as info:
        surfaces.catalogue([tmp_path / "b"])
    assert info.value.file == str(second)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(ConfigError, match="surface folder not found") as info:
        surfaces.catalogue([tmp_path / "nope"])
    assert info.value.file == str(tmp_path / "nope")
    with pytest.raises(ConfigError, match="holds no surface files"):
        surfaces.names([tmp_path])


def test_files_are_reparsed_only_when_changed(tmp_path):
    path = write(tmp_path, "tilted_bowl", BOWL)
    first = surfaces.catalogue([tmp_path])["tilted_bowl"]
    assert surfaces.catalogue([tmp_path])["tilted_bowl"] is first
    path.write_text(textwrap.dedent(BOWL).replace("c = 0.5", "c = 0.25 "))
    assert surfaces.catalogue([tmp_path])["tilted_bowl"].params == {"c": 0.25}


def test_register(x64):
    def fn(x, scale):
        return scale * jnp.sum(x**4)

    spec = surfaces.register(
        "quartic_test", fn, dim=3, start=[1.0, -1.0, 0.5], plot_bounds=[-2, 2],
        minima=[([0, 0, 0], 0.0)], params={"scale": 2.0}, description="x^4 bowl",
    )  # fmt: skip
    try:
        assert "quartic_test" in surfaces.names()
        assert spec.kind == "python" and spec.origin == "register()"
        s = surfaces.get("quartic_test", scale=3.0)
        assert s.dim == 3 and s.coords == ("x0", "x1", "x2")
        assert f64(s, (1.0, 1.0, 1.0)) == 9.0
        assert s.escape_bounds.tolist() == [[-20, 20]] * 3 and s.min_value == 0.0
        assert surfaces.get("quartic_test") is surfaces.get("quartic_test", scale=2.0)
        with pytest.raises(ConfigError, match="already registered; pass replace=True"):
            surfaces.register("quartic_test", fn, dim=3, start=[0, 0, 0], plot_bounds=[-1, 1])
        surfaces.register(
            "quartic_test", lambda x: jnp.sum(x**2), dim=3, start=[0, 0, 0],
            plot_bounds=[-1, 1], replace=True,
        )  # fmt: skip
        assert surfaces.get("quartic_test").params == {}
    finally:
        surfaces.unregister("quartic_test")
    assert "quartic_test" not in surfaces.names()


def test_register_rejects_bad_input():
    with pytest.raises(ConfigError, match="is a built-in surface"):
        surfaces.register("saddle", jnp.sum, dim=2, start=[0, 0], plot_bounds=[-1, 1])
    with pytest.raises(ConfigError, match="expected points of 2 numbers"):
        surfaces.register("bad_test", jnp.sum, dim=2, start=[0, 0, 0], plot_bounds=[-1, 1])
    with pytest.raises(ConfigError, match="dim must be a positive integer"):
        surfaces.register("bad_test", jnp.sum, dim=0, start=[0], plot_bounds=[-1, 1])
    assert "bad_test" not in surfaces.names()


def test_registered_name_clashes_with_user_folder(tmp_path):
    surfaces.register("tilted_bowl", jnp.sum, dim=2, start=[0, 0], plot_bounds=[-1, 1])
    try:
        write(tmp_path, "tilted_bowl", BOWL)
        with pytest.raises(ConfigError, match=r"already defined in register\(\)"):
            surfaces.catalogue([tmp_path])
    finally:
        surfaces.unregister("tilted_bowl")


def test_readme_surface_example_loads_and_a_wrong_minimum_is_refused(tmp_path):
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (block,) = re.findall(r'```toml\n(name = "my_bowl".*?)```', readme, flags=re.S)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "my_bowl.toml").write_text(block)
    s = surfaces.catalogue([folder])["my_bowl"].build()
    assert s.min_value == 0.0 and s.dim == 2
    (folder / "my_bowl.toml").write_text(block.replace("value = 0.0", "value = -1.0"))
    with pytest.raises(ConfigError) as e:
        surfaces.catalogue([folder])["my_bowl"].build()
    assert "my_bowl.toml" in str(e.value) and "minima[0]" in str(e.value)


@pytest.mark.parametrize("name", ALL)
def test_numpy_twin_matches_the_jax_function(x64, name):
    # the minima check at build time evaluates this twin instead of dispatching jax
    s = surfaces.get(name)
    rng = np.random.default_rng(0)
    lo, hi = s.plot_bounds.T
    points = [*s.start, *(p for p, _ in s.minima), *rng.uniform(lo, hi, (5, s.dim))]
    for p in points:
        assert s.fn.numpy(np.asarray(p)) == pytest.approx(f64(s, p), rel=1e-12, abs=1e-12)
