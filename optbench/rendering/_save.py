"""Saving a figure for the page and for papers: PNG and PDF, each written atomically."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from optbench.results import atomic_path


def save_png_pdf(fig: Figure, base: Path, *, dpi: float) -> list[Path]:
    """Write ``base.png`` (at ``dpi``) and ``base.pdf``; returns both paths.

    The layout is computed once, for the PNG, and then frozen, so the PDF does not pay
    for a second constrained-layout pass.
    """
    # the suffix is appended, never substituted: a dot in ``base`` stays part of the name
    png, pdf = base.parent / f"{base.name}.png", base.parent / f"{base.name}.pdf"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=dpi)
    fig.set_layout_engine("none")
    with atomic_path(pdf) as tmp:
        fig.savefig(tmp)
    return [png, pdf]
