"""Rendering: trajectory GIFs, static figures and the HTML report of a results folder.

``render(dir)`` animates every 2-D surface problem; ``report(dir)`` writes
``report.html`` with loss curves, learning-rate sensitivity, the summary table (also as
``summary.csv`` and ``summary.tex``), the config and the run's metadata.
"""

from optbench.rendering.animation import render
from optbench.rendering.gif import animate, frame_steps
from optbench.rendering.report import report
from optbench.rendering.scene import Scene, Track
from optbench.rendering.summary import summary, to_latex

__all__ = ["Scene", "Track", "animate", "frame_steps", "render", "report", "summary", "to_latex"]
