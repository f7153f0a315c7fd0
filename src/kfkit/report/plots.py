"""A job's training curves as inline SVG: loss and accuracy against samples seen.

The trainers write their metrics as JSON with three lists of records:
``steps`` (training loss every few steps), ``evals`` (test accuracy and loss)
and ``epochs``; step and eval records carry ``samples``, the training samples
seen by all replicas together. Samples, not steps, are the x axis, so runs
with different world sizes (different global batches) line up.

What a reader needs from a chart is drawn on it: the threshold the scenario
asserted (a dashed line), where a replica was killed and where training
resumed (vertical lines), the epoch boundaries (integer ticks on the top
axis). A quantity with a single point is not a curve and gets no panel; its
value is in the step row and the results table. Text stays text in the SVG
(``svg.fonttype = none``), so it is small and searchable.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any

from kfkit.report.evidence import Event, Measurement

# Colours that stay apart for colour-blind readers (Okabe-Ito), one per quantity in every chart.
SERIES_COLOURS = {
    "training loss": "#0072b2",
    "test loss (cross-entropy)": "#e69f00",
    "test accuracy": "#009e73",
}
EVENT_STYLES = {
    "kill": ("#d55e00", "-"),
    "restart": ("#7f7f7f", ":"),
    "resume": ("#56b4e9", "-."),
}


@dataclass
class Series:
    """One line of a panel: a readable label and its points (x: samples, or steps/epochs)."""

    label: str
    xs: list[float]
    ys: list[float]


@dataclass
class Panel:
    """One quantity of one job: ``loss`` or ``accuracy``."""

    quantity: str
    series: list[Series] = field(default_factory=list)
    thresholds: list[Measurement] = field(default_factory=list)

    @property
    def is_curve(self) -> bool:
        return any(len(s.xs) > 1 for s in self.series)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _records(metrics: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = metrics.get(key)
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []


def x_key(metrics: dict[str, Any]) -> str:
    """``samples`` when the trainer recorded it, else ``step``, else ``epoch``."""
    records = _records(metrics, "steps") + _records(metrics, "evals")
    for key in ("samples", "step", "epoch"):
        if records and all(_number(r.get(key)) is not None for r in records):
            return key
    return "samples"


def _series(label: str, records: list[dict[str, Any]], x: str, y: str) -> Series | None:
    points = [
        (_number(r.get(x)), _number(r.get(y)))
        for r in records
        if _number(r.get(x)) is not None and _number(r.get(y)) is not None
    ]
    if not points:
        return None
    points.sort()
    return Series(label, [float(p[0]) for p in points], [float(p[1]) for p in points])  # type: ignore[arg-type]


def panels(metrics: dict[str, Any], measurements: list[Measurement] | None = None) -> list[Panel]:
    """The loss and accuracy panels of one job's metrics, with the thresholds that apply.

    A measurement of a metric naming accuracy goes on the accuracy panel, one of
    loss or cross-entropy on the loss panel; others (seconds, restarts) on none.
    """
    x = x_key(metrics)
    steps, evals = _records(metrics, "steps"), _records(metrics, "evals")
    loss = Panel("loss")
    for label, records, y in (
        ("training loss", steps, "loss"),
        ("test loss (cross-entropy)", evals, "loss"),
    ):
        found = _series(label, records, x, y)
        if found:
            loss.series.append(found)
    accuracy = Panel("accuracy")
    found = _series("test accuracy", evals, x, "accuracy")
    if found:
        accuracy.series.append(found)
    for measurement in measurements or []:
        name = measurement.metric.lower()
        if "accuracy" in name:
            accuracy.thresholds.append(measurement)
        elif "loss" in name or "entropy" in name:
            loss.thresholds.append(measurement)
    return [p for p in (loss, accuracy) if p.is_curve]


def epoch_ends(metrics: dict[str, Any], x: str) -> list[tuple[int, float]]:
    """``(epoch, x at its last record)`` for every epoch that has records."""
    ends: dict[int, float] = {}
    for record in _records(metrics, "steps") + _records(metrics, "evals"):
        epoch, at = _number(record.get("epoch")), _number(record.get(x))
        if epoch is not None and at is not None and epoch.is_integer():
            ends[int(epoch)] = max(ends.get(int(epoch), at), at)
    return sorted(ends.items())


def _event_positions(events: list[Event]) -> list[tuple[Event, float]]:
    """Where each event goes on the samples axis; a restart without one goes at the kill."""
    kill_at = next((e.samples for e in events if e.kind == "kill" and e.samples is not None), None)
    placed = []
    for event in events:
        at = (
            event.samples
            if event.samples is not None
            else (kill_at if event.kind == "restart" else None)
        )
        if at is not None:
            placed.append((event, at))
    return placed


def event_label(event: Event) -> str:
    """A short legend entry: ``worker-0 killed``, ``restarted``, ``resumed from step 10``."""
    if event.kind == "kill":
        return f"{event.label.split()[0]} killed" if event.label else "killed"
    if event.kind == "resume":
        return f"resumed from step {event.step}" if event.step is not None else "resumed"
    return "restarted"


X_LABELS = {"samples": "training samples seen (all replicas)", "step": "step", "epoch": "epoch"}


def curves_svg(
    title: str,
    metrics: dict[str, Any],
    measurements: list[Measurement] | None = None,
    events: list[Event] | None = None,
) -> str | None:
    """An ``<svg>`` with one job's loss and accuracy panels, or None when it has no curve."""
    found = panels(metrics, measurements)
    if not found:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    x = x_key(metrics)
    ends = epoch_ends(metrics, x) if x != "epoch" else []
    placed = _event_positions(events or []) if x == "samples" else []
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": title, "font.size": 9}):
        figure, axes = plt.subplots(
            1, len(found), figsize=(5.2 * len(found), 3.4), squeeze=False, sharex=True
        )
        for ax, panel in zip(axes[0], found, strict=True):
            for series in panel.series:
                colour = SERIES_COLOURS.get(series.label, "#cc79a7")
                marker = "o" if len(series.xs) < 30 else None
                ax.plot(series.xs, series.ys, color=colour, marker=marker, ms=3, label=series.label)
            for measurement in panel.thresholds:
                ax.axhline(
                    measurement.threshold,
                    color="#c62828",
                    ls="--",
                    lw=1.2,
                    label=f"threshold {measurement.comparison} {measurement.threshold:g}",
                )
            for event, at in placed:
                colour, style = EVENT_STYLES[event.kind]
                ax.axvline(at, color=colour, ls=style, lw=1.2, label=event_label(event))
            ax.set_title("test accuracy" if panel.quantity == "accuracy" else "loss")
            ax.set_xlabel(X_LABELS[x])
            ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
            if x == "samples":
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            if len(ends) > 1:
                top = ax.secondary_xaxis("top")
                top.set_xticks([at for _, at in ends], labels=[str(e) for e, _ in ends])
                top.set_xlabel("end of epoch", fontsize=8)
            ax.set_xlim(left=0)
            ax.grid(alpha=0.3)
        # One legend under the panels: it never hides a curve, and says each thing once.
        legend: dict[str, Any] = {}
        for ax in axes[0]:
            for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
                legend.setdefault(label, handle)
        rows = math.ceil(len(legend) / 3)
        figure.set_size_inches(5.2 * len(found), 3.0 + 0.22 * rows)
        figure.legend(
            list(legend.values()),
            list(legend),
            loc="lower center",
            ncol=3,
            fontsize=8,
            frameon=False,
        )
        figure.suptitle(title, fontsize=10)
        figure.tight_layout(rect=(0, 0.07 * rows + 0.02, 1, 1))
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
        plt.close(figure)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]
