"""Animated GIFs: a log-time frame schedule, one global palette, a size budget.

Frames come from :class:`~optbench.rendering.scene.Frame` (blitting), are quantized
against ONE palette computed once, and Pillow writes them as delta frames (only the
changed rectangle, unchanged pixels transparent). Browsers turn delays under 20 ms into
100 ms, so delays are kept at >= 20 ms in multiples of 10 ms; the GIF loops forever.
"""

from __future__ import annotations

import heapq
import io
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from optbench._errors import ConfigError
from optbench.rendering.scene import Frame, Scene, Track
from optbench.results import write_bytes


def frame_steps(steps: np.ndarray, n: int, schedule: str = "log") -> np.ndarray:
    """Choose at most ``n`` of the available ``steps``, always the first and last.

    ``"log"`` spaces them evenly in ``log(1 + step)`` (early steps, where optimizers
    differ most, get most frames); ``"linear"`` evenly in steps.

    >>> frame_steps(np.arange(1001), 5).tolist()
    [0, 5, 31, 177, 1000]
    """
    c = np.unique(np.asarray(steps, dtype=np.int64))
    if len(c) <= n:
        return c
    if n < 2:
        return c[-1:]
    u = np.log1p(c.astype(float)) if schedule == "log" else c.astype(float)
    targets = np.linspace(u[0], u[-1], n)
    idx = np.clip(np.searchsorted(u, targets), 1, len(u) - 1)
    left = u[idx - 1]
    idx = np.where(np.abs(targets - left) <= np.abs(u[idx] - targets), idx - 1, idx)
    chosen = set(np.unique(np.concatenate([[0, len(c) - 1], idx])).tolist())
    # fill up to n by splitting the widest gaps (early steps merge when rounded)
    order = sorted(chosen)
    heap = [(-(u[b] - u[a]), a, b) for a, b in itertools.pairwise(order) if b - a > 1]
    heapq.heapify(heap)
    while len(chosen) < n and heap:
        _, a, b = heapq.heappop(heap)
        k = int(np.clip(np.searchsorted(u, (u[a] + u[b]) / 2), a + 1, b - 1))
        chosen.add(k)
        for lo, hi in ((a, k), (k, b)):
            if hi - lo > 1:
                heapq.heappush(heap, (-(u[hi] - u[lo]), lo, hi))
    return c[sorted(chosen)]


def delays(n: int, duration: float, hold: float) -> list[int]:
    """Per-frame delays in ms: ``duration`` seconds spread over ``n`` frames (>= 20 ms,
    multiples of 10 ms), the last frame held ``hold`` seconds."""
    d = max(20, round(duration * 1000 / max(n, 1) / 10.0) * 10)
    out = [d] * n
    if n:
        out[-1] = max(d, round(hold * 100) * 10)
    return out


def global_palette(samples: list[np.ndarray], colors: int = 255) -> Image.Image:
    """One palette for the whole animation, from a few representative RGB frames.

    At most 255 colours, so that one index stays free for transparent delta pixels.
    """
    stacked = Image.fromarray(np.concatenate(samples, axis=0))
    return stacked.quantize(colors=min(colors, 255), method=Image.Quantize.MEDIANCUT)


def quantize(rgb: np.ndarray | Image.Image, palette: Image.Image) -> Image.Image:
    """Map an RGB frame onto ``palette`` (nearest colour, no dithering: it compresses)."""
    image = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)
    return image.quantize(palette=palette, dither=Image.Dither.NONE)


def encode(frames: list[Image.Image], durations: list[int]) -> bytes:
    """GIF bytes of palettized ``frames``: looping forever, delta frames."""
    buf = io.BytesIO()
    frames[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=0,
        optimize=True,
        disposal=1,
    )
    return buf.getvalue()


@dataclass
class GifInfo:
    """What :func:`animate` settled on to meet the size budget."""

    frames: int
    size: tuple[int, int]
    colors: int
    bytes: int
    steps: np.ndarray


def animate(
    scene: Scene,
    tracks: list[Track],
    path: str | Path,
    *,
    frames: int = 150,
    duration: float = 8.0,
    hold: float = 2.5,
    size: tuple[int, int] = (1000, 500),
    dpi: float = 100.0,
    max_bytes: int = 2_000_000,
    schedule: str = "log",
    min_frames: int = 24,
) -> GifInfo:
    """Write ``tracks`` over ``scene`` as an animated GIF at ``path``, within ``max_bytes``.

    Over budget, it first drops frames (down to ``min_frames``, keeping the schedule's
    shape), then shrinks the pixel size (down to half), then the palette (down to 32).
    Raises ``ConfigError`` when even that does not fit.
    """
    all_steps = np.concatenate([np.asarray(t.steps) for t in tracks] or [np.zeros(1)])
    n_avail = len(np.unique(all_steps))
    n, scale, colors = min(frames, n_avail), 1.0, 255
    min_n = min(min_frames, n)
    last = None
    for _ in range(12):
        steps = frame_steps(all_steps, n, schedule)
        px = (round(size[0] * scale) // 2 * 2, round(size[1] * scale) // 2 * 2)
        data = _render(scene, tracks, steps, px, dpi * scale, colors, duration, hold)
        last = GifInfo(len(steps), px, colors, len(data), steps)
        if len(data) <= max_bytes:
            write_bytes(path, data)
            return last
        shrink = max_bytes / len(data) * 0.93
        if n > min_n:
            n = max(min_n, int(n * shrink))
        elif scale > 0.5:
            scale = max(0.5, scale * math.sqrt(shrink))
        elif colors > 32:
            colors //= 2
        else:
            break
    assert last is not None
    raise ConfigError(
        f"cannot fit the animation into {max_bytes:,} bytes (smallest try: {last.bytes:,} "
        f"bytes, {last.frames} frames, {last.size[0]}x{last.size[1]} px); raise max_bytes",
        key="max_bytes",
    )


def _render(scene, tracks, steps, px, dpi, colors, duration, hold) -> bytes:
    frame = Frame(scene, tracks, size=px, dpi=dpi)
    last = frame.rgb(int(steps[-1]))
    first = frame.rgb(int(steps[0]))
    palette = global_palette([last, first], colors)
    images = [quantize(frame.image(int(s)), palette) for s in steps[:-1]]
    images.append(quantize(last, palette))
    return encode(images, delays(len(images), duration, hold))
