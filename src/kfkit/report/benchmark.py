"""The time-to-accuracy benchmark as a picture: every run's accuracy against training time.

``benchmarks/time_to_accuracy.py`` writes one JSON document with a ``runs``
list; each run has ``evals`` records (``train_seconds``, ``accuracy``,
``loss``). :func:`write_plots` draws them beside that JSON, with the same stem:
a PNG (for docs and CI pages) and a small HTML page holding the PNG inline and
a table of the runs (works offline, like the verification report).

Only those fields are read, and a run without them is listed but not drawn,
so the plot survives changes to the rest of the document. Re-plot an existing
document with ``python -m kfkit.report.benchmark reports/time_to_accuracy.json``.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import sys
from html import escape
from pathlib import Path
from typing import Any

from kfkit.errors import KfkitError

ACCURACY_TARGET = 0.9662
LOSS_TARGET = 0.10


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def run_points(run: dict[str, Any], y: str) -> tuple[list[float], list[float]]:
    """(training seconds, ``y``) of a run's evaluations, in time order."""
    points = sorted(
        (x, v)
        for record in run.get("evals") or []
        if isinstance(record, dict)
        and (x := _number(record.get("train_seconds"))) is not None
        and (v := _number(record.get(y))) is not None
    )
    return [p[0] for p in points], [p[1] for p in points]


def read_document(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise KfkitError(f"{path}: cannot read: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise KfkitError(f"{path}: invalid JSON: {error.msg} (line {error.lineno})") from None
    if not isinstance(document, dict) or not isinstance(document.get("runs"), list):
        raise KfkitError(f"{path}: runs: expected the list of benchmark runs")
    return document


def _label(run: dict[str, Any]) -> str:
    return str(run.get("run") or run.get("job") or "run")


def draw_png(document: dict[str, Any], png: Path) -> bool:
    """Accuracy (left) and cross-entropy (right) against training time; False without points."""
    runs = [r for r in document["runs"] if isinstance(r, dict)]
    drawn = [r for r in runs if len(run_points(r, "accuracy")[0]) > 1]
    if not drawn:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (accuracy, loss) = plt.subplots(1, 2, figsize=(10, 3.8))
    for run in drawn:
        (line,) = accuracy.plot(*run_points(run, "accuracy"), marker="o", ms=3, label=_label(run))
        xs, ys = run_points(run, "loss")
        if len(xs) > 1:
            loss.plot(xs, ys, marker="o", ms=3, color=line.get_color(), label=_label(run))
        reached = _number(run.get("time_to_target_s"))
        if reached is not None:
            accuracy.axvline(reached, color=line.get_color(), ls=":", lw=1)
    accuracy.axhline(ACCURACY_TARGET, color="#c62828", ls="--", lw=1.2, label="96.62% target")
    loss.axhline(LOSS_TARGET, color="#c62828", ls="--", lw=1.2, label="cross-entropy 0.10")
    low = min(min(run_points(r, "accuracy")[1]) for r in drawn)
    accuracy.set_ylim(max(low, 0.9) - 0.005, 1.0)
    accuracy.set_title("test accuracy (dotted: time to target)")
    loss.set_title("test cross-entropy")
    for ax in (accuracy, loss):
        ax.set_xlabel("training time (s), evaluations excluded")
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    measured = document.get("measured_at") or ""
    cpus = (document.get("machine") or {}).get("cpus")
    figure.suptitle(f"time to accuracy, {measured}" + (f", {cpus} CPUs" if cpus else ""))
    figure.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=110)
    plt.close(figure)
    return True


def _cell(value: Any, digits: int = 4) -> str:
    number = _number(value)
    if number is None:
        return "" if value is None else escape(str(value))
    return f"{number:.{digits}f}" if abs(number) < 1 else f"{number:.1f}"


def render_html(document: dict[str, Any], png: Path | None) -> str:
    image = ""
    if png is not None and png.is_file():
        data = base64.b64encode(png.read_bytes()).decode()
        image = f'<img alt="accuracy against training time" src="data:image/png;base64,{data}">'
    rows = "".join(
        f"<tr><td>{escape(_label(run))}</td><td>{_cell(run.get('world_size'))}</td>"
        f"<td>{_cell(run.get('time_to_target_s'))}</td><td>{_cell(run.get('final_accuracy'))}</td>"
        f"<td>{_cell(run.get('final_loss'))}</td><td>{_cell(run.get('samples_per_second'))}</td></tr>"
        for run in document["runs"]
        if isinstance(run, dict)
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>kfkit time to accuracy</title><style>"
        "body{font-family:system-ui,sans-serif;margin:20px}img{max-width:100%}"
        "table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:3px 8px;"
        "text-align:right}td:first-child,th:first-child{text-align:left}</style></head><body>"
        f"<h1>Time to accuracy</h1><p>{escape(str(document.get('measured_at') or ''))}</p>"
        f"{image}<table><tr><th>run</th><th>world size</th><th>time to target (s)</th>"
        "<th>final accuracy</th><th>final loss</th><th>samples/s</th></tr>"
        f"{rows}</table></body></html>\n"
    )


def write_plots(json_path: str | Path) -> tuple[Path | None, Path]:
    """Write ``<stem>.png`` (when a run has a curve) and ``<stem>.html`` beside the JSON."""
    path = Path(json_path)
    document = read_document(path)
    png = path.with_suffix(".png")
    drawn = draw_png(document, png)
    html = path.with_suffix(".html")
    html.write_text(render_html(document, png if drawn else None), encoding="utf-8")
    return (png if drawn else None), html


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Plot a time-to-accuracy benchmark JSON.")
    parser.add_argument("json", type=Path)
    args = parser.parse_args(argv)
    try:
        png, html = write_plots(args.json)
    except KfkitError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"wrote {html}" + (f" and {png}" if png else " (no run has two evaluations to plot)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
