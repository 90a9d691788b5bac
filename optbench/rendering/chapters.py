"""The report's sections that follow the lecture across problems: learning-rate decay,
normalization and regularization, the vanishing gradient (:mod:`.lecture` draws them).

:func:`sections` returns the HTML of those that apply, in the lecture's order; the page
puts the surface problems ("optimizers") before them and the tasks after them.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import matplotlib as mpl

from optbench.rendering import _inputs, _style, compare, lecture
from optbench.rendering._save import save_png_pdf
from optbench.rendering.tables import sig

#: Section keys in the lecture's order, with their heading and the page anchor.
ORDER = {
    "schedules": ("Learning-rate decay", "learning-rate-decay"),
    "regularization": ("Normalization and regularization", "normalization-regularization"),
    "vanishing": ("Vanishing gradient", "vanishing-gradient"),
}


def _img(src: str, caption: str) -> str:
    return (
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(caption[:120])}" '
        f'loading="lazy"><figcaption>{html.escape(caption)} (<a href="{html.escape(src[:-4])}'
        '.pdf">PDF</a>)</figcaption></figure>'
    )


def _save(fig: Any, figdir: Path, name: str) -> str:
    save_png_pdf(fig, figdir / name, dpi=150)
    return f"figures/{name}.png"


def _head(key: str, intro: str) -> str:
    title, anchor = ORDER[key]
    return f'<h2 id="{anchor}">{title}</h2><p class="sub">{html.escape(intro)}</p>'


def sections(res: Any, folder: Path, colors: dict[str, str]) -> dict[str, str]:
    """``{key: html}`` of the sections of :data:`ORDER` that the results can show (in that
    order), drawing and saving their figures in ``folder/figures``; {} when none applies."""
    figdir = folder / "figures"
    figdir.mkdir(exist_ok=True)
    out = {}
    with mpl.rc_context(_style.RC):
        for key, build in (
            ("schedules", _schedules),
            ("regularization", _regularization),
            ("vanishing", _vanishing),
        ):
            text = build(res, figdir, colors)
            if text:
                out[key] = text
    return out


def decay_problems(res: Any) -> list[str]:
    """The problems (config order) on which a scheduled optimizer runs, beside the
    constant-rate ones, that no other section draws (not one of a task's several problems,
    no gradient-flow rows): the page shows them in the learning-rate decay section."""
    scheduled = {o for o in _inputs.optimizers(res) if lecture.schedule_spec(res, o)}
    grouped = {p for ps in compare.task_groups(res).values() for p in ps}
    flow = getattr(res, "gradient_flow", None)
    if flow is not None and len(flow):
        runs = res.runs[res.runs["run_id"].astype(str).isin(flow["run_id"].astype(str))]
        grouped |= set(runs["problem"].astype(str))
    opts = res.runs.groupby(res.runs["problem"].astype(str))["optimizer"]
    ran = {str(p): set(map(str, o)) for p, o in opts.unique().items()}
    return [p for p in _inputs.problems(res) if p not in grouped and ran.get(p, set()) & scheduled]


def _schedules(res: Any, figdir: Path, colors: dict[str, str]) -> str:
    lines = lecture.schedule_lines(res)
    fig = lecture.lr_schedules(res, colors, lines)
    if fig is None:
        return ""
    budgets = "; ".join(f"{ln.optimizer}: {ln.problem}, {ln.total_steps:,} steps" for ln in lines)
    caption = (
        "lr(t) = the selected (peak) learning rate × the schedule's multiplier at update t, as "
        "the selected runs applied it; each optimizer on its first problem, the multiplier "
        f"fitted to that problem's budget ({budgets}). Constant-rate optimizers are not drawn."
    )
    intro = (
        "The lecture's advice: even for Adam and RMSProp the learning rate matters; use "
        "learning-rate decay. A large rate early moves fast, a small one late settles into "
        "the minimum instead of bouncing around it; a warmup ramps the rate up while "
        "adaptive optimizers' statistics are still poor."
    )
    return _head("schedules", intro) + _img(_save(fig, figdir, "lecture-lr-schedules"), caption)


def _table(frame: Any) -> str:
    head = ("problem", "optimizer", "lr", "seeds", "train loss", "val. loss", "gap", "test acc.")
    rows = []
    for _, r in frame.iterrows():
        cells = [
            html.escape(str(r["problem"])),
            html.escape(str(r["optimizer"])),
            sig(r["learning_rate"]),
            str(r["seeds"]),
            *(sig(r[c]) or "–" for c in ("train_loss", "val_loss", "gap", "test_accuracy")),
        ]
        rows.append(
            "<tr>"
            + "".join(f'<td class="{"l" if i < 2 else ""}">{c}</td>' for i, c in enumerate(cells))
            + "</tr>"
        )
    th = "".join(f'<th class="{"l" if i < 2 else ""}">{h}</th>' for i, h in enumerate(head))
    return (
        f"<div class='scroll'><table><thead><tr>{th}</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def _comparisons(res: Any, figdir: Path, groups: dict[str, list[str]]) -> list[str]:
    """Per task of ``groups``: a heading, :func:`compare.comparison` and its table."""
    parts = []
    for task, problems in groups.items():
        fig = compare.comparison(res, task, problems)
        if fig is None:
            continue
        differ = compare.varied(res, problems)
        what = f" (they differ in: {', '.join(differ)})" if differ else ""
        parts.append(f"<h3>{html.escape(task)}: {html.escape(', '.join(problems))}{what}</h3>")
        slug = _style.slug(task)
        caption = (
            f"The problems of task {task}: per problem the selected runs of its best optimizer "
            "(in the legend and the table), median over seeds; train loss solid, validation "
            "loss dashed, in the problem's colour."
        )
        parts.append(_img(_save(fig, figdir, f"lecture-compare-{slug}"), caption))
        table = compare.comparison_table(res, problems)
        parts.append(_table(table))
        parts.append(
            "<p class='sub'>Final values of the same runs (medians over seeds); gap = "
            "validation loss − train loss.</p>"
        )
    return parts


def _regularization(res: Any, figdir: Path, colors: dict[str, str]) -> str:
    parts = _comparisons(res, figdir, compare.split_groups(res)[0])
    if not parts:
        return ""
    intro = (
        "Better optimizers reduce the training loss, but what matters is the error on new "
        "data. Normalization (batchnorm) makes the loss less sensitive to the weights and "
        "easier to optimise; regularization (an L2 penalty, dropout, data augmentation) "
        "aims to shrink the gap between training and validation loss. Below, for each task "
        "whose problems differ in normalization or regularization: each problem's best "
        "optimizer (the lowest mean validation loss of the optimizers' selected grid "
        "points), its selected runs, median "
        "over seeds. The train loss is the mean minibatch loss as training computed it "
        "(dropout and augmentation on, batchnorm on batch statistics, no penalty term), the "
        "validation loss in evaluation mode, so a regularised model's train loss can lie "
        "above its validation loss (a negative gap)."
    )
    return _head("regularization", intro) + "\n".join(parts)


_TIME = (
    "Each line: the root mean square over a fixed batch of ‖∂J/∂hₜ‖, divided by its value at "
    "the last hidden state h_T (so each line starts at 1), against the steps back, T − t; "
    "per problem, the median over the seeds of the selected runs of its best optimizer (the "
    "lowest mean validation loss; in the legend), at initialisation (step 0) and at the runs' "
    "last measured step. By the chain rule ∂J/∂hₜ = ∂h_(t+1)/∂hₜ ⋯ ∂h_T/∂h_(T−1) · ∂J/∂h_T: when "
    "these Jacobians are small the signal shrinks geometrically as it travels back (a "
    "falling straight line on this log axis), so the updates see only short-term effects; "
    "above 1 it grows instead (exploding). The tanh RNN has nothing but that product. The "
    "LSTM's cell state cₜ = fₜ ∘ c_(t−1) + iₜ ∘ c̃ₜ passes the gradient on through the forget "
    "gate f (near 1 keeps it). The GRU's hₜ = (1 − zₜ) ∘ nₜ + zₜ ∘ h_(t−1) passes it through "
    "the update gate z: the code's z is the slide's 1 − u (the slide writes "
    "hₜ = (1 − uₜ) ∘ h_(t−1) + uₜ ∘ h̃ₜ), so z near 1, the slide's u near 0, keeps the state."
)
_DEPTH = (
    "The same for deep MLPs: the gradient at the output of hidden layer l relative to the "
    "last hidden layer, against depth − l; per problem the median over the seeds of its "
    "best optimizer's selected runs. A plain stack (dashed) multiplies the layers' "
    "Jacobians, so the lower layers receive a fading signal and train slower; a residual "
    "block (solid), hₗ = h_(l−1) + f(h_(l−1)), adds an identity path, ∂hₗ/∂h_(l−1) = I + ∂f/∂h, "
    "and the gradient reaches the first layers (the skip connections of ResNet)."
)


def _vanishing(res: Any, figdir: Path, colors: dict[str, str]) -> str:
    parts = []
    for flow, name, caption in (("time", "time", _TIME), ("depth", "depth", _DEPTH)):
        fig = lecture.gradient_flow(res, flow)
        if fig is not None:
            parts.append(_img(_save(fig, figdir, f"lecture-gradient-{name}"), caption))
    cells = _comparisons(res, figdir, compare.split_groups(res)[1])
    if parts and cells:
        parts.append(
            "<p class='sub'>Does the kept gradient pay off? The same architectures' train and "
            "validation loss:</p>"
        )
    parts += cells
    if not parts:
        return ""
    intro = (
        "Vanishing gradient is present in all deep architectures: when the derivatives along "
        "the chain rule are small, the gradient signal gets smaller and smaller as it "
        "backpropagates further, through the timesteps of a recurrent network or the layers "
        "of a deep one. Gated cells (LSTM, GRU) can keep a path open where their gates keep "
        "the state (by initialisation or once trained); skip connections keep one by "
        "construction."
    )
    return _head("vanishing", intro) + "\n".join(parts)
