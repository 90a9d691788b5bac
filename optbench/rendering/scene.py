"""One animation frame: a static contour background and the artists that move.

The figure is drawn once with every moving artist marked ``animated``; the pixels are
kept (``copy_from_bbox``) and each frame restores them and draws only the trails, heads,
loss curves, cursor and step counter (``draw_artist``): matplotlib blitting on the Agg
canvas, with no display.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

from optbench.rendering import _style
from optbench.rendering.levels import Background, LossAxis, escape_floor

_CMAP_CACHE: dict[str, object] = {}


@dataclass
class Track:
    """One run's path: ``xy[i]`` after ``steps[i]`` steps, with its ``loss`` there.

    ``status`` is ``"ok"``, ``"diverged"`` (a cross where it stopped) or ``"escaped"``.
    A ``faint`` track (another seed) is drawn thin and pale, without a head or legend.
    """

    label: str
    color: str
    steps: np.ndarray
    xy: np.ndarray
    loss: np.ndarray
    status: str = "ok"
    faint: bool = False
    legend: bool = True


@dataclass
class Scene:
    """Everything static in an animation: background, title, marked points, axes."""

    background: Background
    title: str = ""
    starts: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    minima: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    loss_axis: LossAxis | None = None
    coords: tuple[str, str] = ("x", "y")


def _pale_cmap():
    if "pale" not in _CMAP_CACHE:
        from matplotlib import colormaps
        from matplotlib.colors import ListedColormap

        base = colormaps["viridis"](np.linspace(0.0, 1.0, 256))
        base[:, :3] = 0.42 * base[:, :3] + 0.58  # blend with white: paths stay in front
        _CMAP_CACHE["pale"] = ListedColormap(base)
    return _CMAP_CACHE["pale"]


class Frame:
    """A figure for ``scene`` and ``tracks`` that redraws itself at any step, fast.

    ``Frame(scene, tracks, size=(1000, 500), dpi=100).rgb(step)`` returns the frame at
    ``step`` as an ``[H, W, 3]`` uint8 array.
    """

    def __init__(
        self,
        scene: Scene,
        tracks: list[Track],
        *,
        size: tuple[int, int] = (1000, 500),
        dpi: float = 100.0,
    ):
        self.scene, self.tracks = scene, tracks
        w, h = size
        self.fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi, layout="constrained")
        self.canvas = FigureCanvasAgg(self.fig)
        with _rc():
            self._build()
        self._bg = None

    # --- static part -------------------------------------------------------------------
    def _build(self) -> None:
        scene, fig = self.scene, self.fig
        if scene.loss_axis is not None:
            ax, lax = fig.subplots(1, 2, width_ratios=[1.0, 1.05])
        else:
            ax, lax = fig.subplots(1, 1), None
        self.ax, self.lax = ax, lax
        bg = scene.background
        ax.contourf(bg.x, bg.y, bg.z, levels=bg.levels, cmap=_pale_cmap(), extend="both")
        ax.contour(bg.x, bg.y, bg.z, levels=bg.levels, colors="0.35", linewidths=0.5, alpha=0.5)
        ax.set_xlim(*bg.bounds[0])
        ax.set_ylim(*bg.bounds[1])
        ax.set_xlabel(scene.coords[0])
        ax.set_ylabel(scene.coords[1], rotation=0, labelpad=8)
        for side in ("top", "right"):
            ax.spines[side].set_visible(True)
        handles: list = []
        if len(scene.minima):
            ax.plot(*np.asarray(scene.minima).T, "*", ms=13, mfc="gold", mec="0.15", mew=0.8)
            handles.append(Line2D([], [], ls="", marker="*", ms=11, mfc="gold", mec="0.15"))
            handles[-1].set_label("minimum")
        if len(scene.starts):
            ax.plot(*np.asarray(scene.starts).T, "o", ms=7, mfc="white", mec="0.1", mew=1.3)
            handles.append(Line2D([], [], ls="", marker="o", ms=7, mfc="white", mec="0.1"))
            handles[-1].set_label("start")
        if scene.title:
            fig.suptitle(scene.title, fontsize=12)

        # Moving artists, one collection per kind (a frame draws a handful of artists,
        # not four per track): trails, heads and loss curves; faint tracks (other seeds)
        # underneath. A diverged run gets its own cross where it stopped.
        faint = [t for t in self.tracks if t.faint]
        main = [t for t in self.tracks if not t.faint]
        self._main = main

        def lines(axes, tracks: list[Track], lw: float, alpha: float) -> LineCollection:
            coll = LineCollection(
                [], colors=[t.color for t in tracks], linewidths=lw, alpha=alpha, animated=True
            )
            coll.set_capstyle("round")
            coll.set_joinstyle("round")
            axes.add_collection(coll, autolim=False)
            return coll

        self.trails = [lines(ax, faint, 0.8, 0.3), lines(ax, main, 2.0, 0.95)]
        self.heads = ax.scatter(
            np.full(len(main), np.nan),
            np.full(len(main), np.nan),
            s=49,
            c=[t.color for t in main] or "none",
            edgecolors="white",
            linewidths=1.0,
            zorder=3,
            animated=True,
        )
        self.curves = (
            [lines(lax, faint, 0.8, 0.3), lines(lax, main, 1.8, 0.95)] if lax is not None else []
        )
        la = scene.loss_axis

        def shown(tracks: list[Track]) -> list[np.ndarray]:  # (step, loss as plotted)
            if la is None:
                return []
            return [np.column_stack([t.steps, la.transform(t.loss)]) for t in tracks]

        # per group: tracks, trail collection, loss-curve collection, curve points
        self._groups = [
            (faint, self.trails[0], self.curves[:1], shown(faint)),
            (main, self.trails[1], self.curves[1:], shown(main)),
        ]
        self._ends: list[tuple[Track, Line2D, Line2D | None]] = []
        for t in main:
            if t.status == "diverged":
                cross = {"color": t.color, "mec": "black", "mew": 0.8, "clip_on": False}
                end = ax.plot([], [], "X", ms=12, animated=True, **cross)[0]
                lend = lax.plot([], [], "X", ms=10, animated=True, **cross)[0] if lax else None
                self._ends.append((t, end, lend))
            if t.legend:
                h = Line2D([], [], color=t.color, lw=2.0, marker="o", ms=5)
                h.set_label(t.label)
                handles.append(h)
        self.step_text = ax.text(
            0.03,
            0.97,
            "",
            transform=ax.transAxes,
            ha="left",
            va="top",
            fontsize=11,
            family="monospace",
            animated=True,
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "0.6", "alpha": 0.85},
        )
        self.cursor = None
        if lax is not None:
            self._setup_loss_axes(lax)
        ncol, size = legend_layout(fig, handles, max_cols=4 if lax is not None else 3)
        fig.legend(
            handles=handles, loc="outside lower center", ncol=ncol, frameon=False, fontsize=size
        )

    def _setup_loss_axes(self, lax) -> None:
        la = self.scene.loss_axis
        assert la is not None
        smax = max((int(t.steps[-1]) for t in self.tracks if len(t.steps)), default=1)
        _style.set_scale(lax, "x", "symlog", linthresh=1.0, linscale=0.3)
        lax.set_xlim(0, max(smax, 1) * 1.05)
        la.apply(lax)
        # diverged runs leave through the top: they do not set the scale
        kept = [t.loss for t in self.tracks if t.status != "diverged"]
        kept += [t.loss[:1] for t in self.tracks if t.status == "diverged"]
        vals = np.concatenate([la.transform(v) for v in kept] or [np.ones(1)])
        vals = vals[np.isfinite(vals)]
        if la.scale == "log":
            vals = vals[vals > 0]
        floor = escape_floor([la.transform(v) for v in kept]) if la.scale == "symlog" else None
        if floor is not None:  # runs far below the others leave through the bottom
            vals = vals[vals >= floor]
        if vals.size:
            lo, hi = float(vals.min()), float(vals.max())
            if la.scale == "log":
                lax.set_ylim(lo / 2.0, hi * 2.0)
            else:
                pad = 0.05 * max(hi - lo, la.linthresh if floor is None else 1e-12)
                lax.set_ylim(lo - pad, hi + pad)
        lax.set_xlabel("step")
        lax.grid(True, which="major", color="0.9", lw=0.6)
        self.cursor = lax.axvline(0, color="0.3", lw=1.0, ls="--", animated=True)

    # --- moving part -------------------------------------------------------------------
    def _draw_static(self) -> None:
        for a in self._moving():
            a.set_in_layout(False)
        with _rc():
            self.canvas.draw()
        self._bg = self.canvas.copy_from_bbox(self.fig.bbox)

    def _update(self, step: int) -> None:
        """Set every moving artist to its state after ``step`` steps."""
        la = self.scene.loss_axis
        for group, trails, curves, shown in self._groups:
            ks = [int(np.searchsorted(t.steps, step, side="right")) for t in group]
            trails.set_segments([t.xy[:k] for t, k in zip(group, ks, strict=True)])
            if curves:
                curves[0].set_segments([c[:k] for c, k in zip(shown, ks, strict=True)])
        heads = np.full((len(self._main), 2), np.nan)
        for i, (t, k) in enumerate(zip(self._main, ks, strict=True)):  # main tracks: last group
            if k:
                heads[i] = t.xy[k - 1]
        self.heads.set_offsets(heads)
        bounds = self.scene.background.bounds
        for t, end, lend in self._ends:
            done = len(t.steps) and t.steps[-1] <= step
            end.set_data(*(_stop_point(t.xy, bounds) if done else ([], [])))
            if lend is not None and la is not None:
                lend.set_data(*(_stop_loss(t, la, self.lax.get_ylim()) if done else ([], [])))
        if self.cursor is not None:
            self.cursor.set_xdata([step, step])
        self.step_text.set_text(f"step {step:,}")

    def draw(self, step: int) -> None:
        """Draw the frame at ``step`` into the canvas (blitting)."""
        if self._bg is None:
            self._draw_static()
        self.canvas.restore_region(self._bg)
        self._update(step)
        for a in self._moving():
            a.axes.draw_artist(a)

    def _moving(self) -> list:
        """The moving artists in drawing order."""
        out = [*self.trails, self.heads]
        out += [e for _, e, _ in self._ends] + [*self.curves]
        out += [le for _, _, le in self._ends if le is not None]
        out += [self.cursor] if self.cursor is not None else []
        return [*out, self.step_text]

    def rgb(self, step: int) -> np.ndarray:
        """The frame at ``step`` as an ``[H, W, 3]`` uint8 array."""
        self.draw(step)
        return np.asarray(self.canvas.buffer_rgba())[:, :, :3].copy()

    def image(self, step: int) -> Image.Image:
        """The frame at ``step`` as an RGB Pillow image (what :meth:`rgb` holds): Pillow
        drops the alpha channel in 1 ms where numpy's strided copy took 4 ms (1000x500)."""
        self.draw(step)
        w, h = self.canvas.get_width_height(physical=True)
        rgba = self.canvas.buffer_rgba()
        return Image.frombuffer("RGBA", (w, h), rgba, "raw", "RGBA", 0, 1).convert("RGB")

    def finish(self, step: int) -> Figure:
        """Turn the moving artists static at ``step`` (for PNG/PDF export); returns the figure.

        Nothing is drawn here: the figure is drawn once, by ``savefig``.
        """
        self._update(step)
        for a in self._moving():
            a.set_animated(False)
        if self.cursor is not None:
            self.cursor.set_visible(False)
        self._bg = None
        return self.fig


def legend_layout(
    fig: Figure, handles: list, *, max_cols: int = 4, max_rows: int = 4
) -> tuple[int, float]:
    """``(ncol, fontsize)`` for a figure legend of ``handles`` below the axes that fits the
    figure's width: the largest font (the rc legend size down to 6.5 pt) at which some column
    count up to ``max_cols`` fits in at most ``max_rows`` rows (else the smallest font), and
    at that font the most columns that fit. Each candidate legend is measured with the
    figure's renderer, then removed."""
    import matplotlib as mpl
    from matplotlib.font_manager import FontProperties

    n = len(handles)
    base = float(FontProperties(size=mpl.rcParams["legend.fontsize"]).get_size_in_points())
    if n == 0:
        return 1, base
    renderer = fig.canvas.get_renderer()
    sizes = [s for s in (base, base - 1.0, base - 1.5, base - 2.0, 6.5) if s >= 6.5] or [base]
    fallback = (1, sizes[-1])
    for size in sizes:
        for ncol in range(min(max_cols, n), 0, -1):
            leg = fig.legend(handles=handles, ncol=ncol, fontsize=size, frameon=False)
            width = leg.get_window_extent(renderer).width
            leg.remove()
            if width <= fig.bbox.width:
                if math.ceil(n / ncol) <= max_rows:
                    return ncol, size
                fallback = (ncol, size)
                break
    return fallback


def _stop_point(xy: np.ndarray, bounds: np.ndarray) -> tuple[list, list]:
    """Where a diverged path stopped, or where it left the plot box if it did."""
    xy = xy[np.isfinite(xy).all(axis=1)]
    if not len(xy):
        return [], []
    inside = ((xy >= bounds[:, 0]) & (xy <= bounds[:, 1])).all(axis=1)
    if inside[-1] or not inside.any():
        p = np.clip(xy[-1], bounds[:, 0], bounds[:, 1])
        return [float(p[0])], [float(p[1])]
    i = int(np.flatnonzero(inside)[-1])
    a, b = xy[i], xy[i + 1]
    d = np.where(b - a == 0, 1e-300, b - a)
    t_hi = np.max((bounds.T - a) / d, axis=0)  # exit parameter per coordinate
    t = float(np.clip(np.min(t_hi), 0.0, 1.0))
    p = a + t * (b - a)
    return [float(p[0])], [float(p[1])]


def _stop_loss(t: Track, la: LossAxis, ylim: tuple[float, float]) -> tuple[list, list]:
    """The last loss of a diverged run, pulled down to the top edge of the loss axes."""
    v = la.transform(t.loss)
    ok = np.isfinite(v)
    y = float(v[ok][-1]) if ok.any() else ylim[1]
    return [float(t.steps[-1])], [min(y, ylim[1])]


def _rc():
    import matplotlib as mpl

    return mpl.rc_context({**_style.RC, "savefig.bbox": None})
