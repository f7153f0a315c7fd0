"""A job's curves: what goes on which panel, and what is left out."""

from __future__ import annotations

import re
from html import unescape

from kfkit.report.evidence import Event, Measurement
from kfkit.report.plots import curves_svg, epoch_ends, panels, x_key

from . import synthetic


def svg_texts(svg: str) -> list[str]:
    return [unescape(t).strip() for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]


def test_panels_put_thresholds_where_their_metric_is_drawn():
    metrics = synthetic.trainer_metrics(2, 1, 0.94)
    accuracy = Measurement("test accuracy", 0.94, ">=", 0.9)
    loss = Measurement("validation cross-entropy", 0.08, "<", 0.6)
    seconds = Measurement("replicas ended after", 3, "<=", 60, unit="s")
    found = {p.quantity: p for p in panels(metrics, [accuracy, loss, seconds])}
    assert [s.label for s in found["loss"].series] == ["training loss", "test loss (cross-entropy)"]
    assert [s.label for s in found["accuracy"].series] == ["test accuracy"]
    assert found["accuracy"].thresholds == [accuracy]
    assert found["loss"].thresholds == [loss]
    assert x_key(metrics) == "samples"


def test_a_single_evaluation_gets_no_accuracy_chart():
    metrics = synthetic.trainer_metrics(1, 1, 0.94)
    metrics["evals"] = metrics["evals"][-1:]
    assert [p.quantity for p in panels(metrics)] == ["loss"]
    metrics["steps"] = metrics["steps"][:1]
    assert panels(metrics) == []
    assert curves_svg("job", metrics) is None


def test_epoch_ends_are_whole_epochs_on_the_samples_axis():
    metrics = synthetic.trainer_metrics(1, 3, 0.95)
    ends = epoch_ends(metrics, "samples")
    assert [epoch for epoch, _ in ends] == [1, 2, 3]
    assert [at for _, at in ends] == [16000, 32000, 48000]


def test_chart_text_is_readable():
    metrics = synthetic.trainer_metrics(2, 3, 0.95)
    events = [
        Event("j", "kill", "worker-0 killed after 12 logged steps", samples=3072),
        Event("j", "restart", "PyTorchJob j is restarting because worker-0 exited"),
        Event("j", "resume", "resumed", samples=2560, step=10),
    ]
    svg = curves_svg("j", metrics, [Measurement("test accuracy", 0.95, ">=", 0.9)], events)
    assert svg is not None
    texts = svg_texts(svg)
    assert {"worker-0 killed", "restarted", "resumed from step 10", "threshold >= 0.9"} <= set(
        texts
    )
    assert {"1", "2", "3", "end of epoch"} <= set(texts)
    # Sample counts with thousands separators, never fractional.
    ticks = [t for t in texts if re.fullmatch(r"[\d,.]+", t) and "," in t]
    assert ticks and all("." not in t for t in ticks)
    assert not any(t.startswith(("steps.", "evals.")) for t in texts)
