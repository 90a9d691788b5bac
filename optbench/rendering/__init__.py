"""Rendering: trajectory GIFs, static figures and the HTML report of a results folder.

``render(dir)`` animates every 2-D surface problem; ``report(dir)`` writes
``report.html`` with loss curves, learning-rate sensitivity, the summary table (also as
``summary.csv`` and ``summary.tex``), the config and the run's metadata;
``render_and_report(dir)`` does both on all cores (what ``optbench run`` uses).
"""

from optbench.rendering.animation import render
from optbench.rendering.gif import animate, frame_steps
from optbench.rendering.page import report
from optbench.rendering.parallel import render_and_report, start_workers
from optbench.rendering.scene import Scene, Track
from optbench.rendering.summary import edge_warning, summary, to_latex

__all__ = [
    "Scene",
    "Track",
    "animate",
    "edge_warning",
    "frame_steps",
    "render",
    "render_and_report",
    "report",
    "start_workers",
    "summary",
    "to_latex",
]
