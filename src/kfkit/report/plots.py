"""Training curves (loss and accuracy) of one job, drawn as inline SVG.

The trainers write their metrics as JSON: groups of records such as
``{"epochs": [{"epoch": 1, "loss": 0.3, "accuracy": 0.91}, ...]}``. Rather than
tie the report to one trainer's keys, :func:`curves` takes every list of records
it finds, uses its step/epoch field as x, and sorts the numeric fields into a
loss panel and an accuracy panel. SVG keeps the HTML report self-contained
and sharp; text stays text (``svg.fonttype = none``) so it is small.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

X_KEYS = ("global_step", "step", "epoch", "iteration")


@dataclass
class Curve:
    label: str
    x_label: str
    xs: list[float]
    ys: list[float]

    @property
    def panel(self) -> str | None:
        name = self.label.lower()
        if "loss" in name or "entropy" in name:
            return "loss"
        if "acc" in name:
            return "accuracy"
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _record_groups(metrics: Any, prefix: str = "") -> list[tuple[str, list[dict[str, Any]]]]:
    """Every non-empty list of dicts in ``metrics``, with a dotted name."""
    if isinstance(metrics, list) and metrics and all(isinstance(r, dict) for r in metrics):
        return [(prefix or "metrics", metrics)]
    groups = []
    if isinstance(metrics, dict):
        for key, value in metrics.items():
            groups += _record_groups(value, f"{prefix}.{key}" if prefix else str(key))
    return groups


def curves(metrics: Any) -> list[Curve]:
    found = []
    for group, records in _record_groups(metrics):
        x_key = next((key for key in X_KEYS if key in records[0]), None)
        fields = sorted({key for record in records for key in record if key != x_key})
        for name in fields:
            points = []
            for index, record in enumerate(records):
                x = _number(record.get(x_key)) if x_key else float(index)
                y = _number(record.get(name))
                if x is not None and y is not None:
                    points.append((x, y))
            if points:
                xs, ys = [p[0] for p in points], [p[1] for p in points]
                curve = Curve(f"{group}.{name}", x_key or "index", xs, ys)
                if curve.panel:
                    found.append(curve)
    return found


def curves_svg(title: str, metrics: Any) -> str | None:
    """An ``<svg>`` element with the loss and accuracy panels, or None without curves.

    Single points (one evaluation, one epoch) are left out when real curves exist.
    """
    found = curves(metrics)
    if any(len(c.xs) > 1 for c in found):
        found = [c for c in found if len(c.xs) > 1]
    if not found:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # One panel per quantity and x axis: loss per step and loss per epoch differ in scale.
    panels = sorted({(c.panel or "", c.x_label) for c in found}, key=lambda p: (p[0] != "loss", p))
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": title}):
        figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.0), squeeze=False)
        for ax, (panel, x_label) in zip(axes[0], panels, strict=True):
            for curve in (c for c in found if (c.panel, c.x_label) == (panel, x_label)):
                ax.plot(curve.xs, curve.ys, marker="o" if len(curve.xs) < 30 else None, ms=3)
                ax.lines[-1].set_label(curve.label)
            ax.set_title(f"{panel} per {x_label}")
            ax.set_xlabel(x_label)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        figure.suptitle(title, fontsize=10)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
        plt.close(figure)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]
