"""A self-contained HTML report: summary, scenarios with their steps, training curves, environment.

Everything is inline (CSS, SVG plots, a few lines of script), so the file can
be mailed, attached to a CI run or shown as a Kubeflow Pipelines artifact
without a web server. The script only reads the counts as the browser
rendered them and puts them into the page title; browser tests and humans
with many tabs both use it.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from kfkit.report.cucumber import (
    FAILED,
    PASSED,
    Counts,
    Feature,
    Summary,
    feature_status,
    scenario_duration_ns,
    scenario_status,
    step_metrics,
    summarize,
)
from kfkit.report.plots import curves_svg

# One colour per status, used by the summary bars, badges and the banner.
COLOURS = {"passed": "#2e7d32", "failed": "#c62828", "skipped": "#f9a825"}

CSS = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1d1d1d; background: #fafafa; }
header { padding: 18px 28px; color: white; }
header h1 { margin: 0; font-size: 22px; }
header p { margin: 4px 0 0; }
main { padding: 8px 28px 40px; }
.cards { display: flex; gap: 16px; flex-wrap: wrap; margin: 16px 0; }
.card { background: white; border: 1px solid #ddd; border-radius: 6px; padding: 12px 16px;
        min-width: 240px; }
.card h2 { margin: 0 0 8px; font-size: 15px; text-transform: capitalize; }
.count { display: inline-block; min-width: 64px; padding: 3px 8px; margin-right: 4px;
         border-radius: 4px; color: white; font-weight: 600; text-align: center; }
.bar { display: flex; height: 14px; margin-top: 10px; border-radius: 3px; overflow: hidden;
       background: #eee; }
.badge { padding: 1px 7px; border-radius: 3px; color: white; font-size: 12px; }
section.feature { background: white; border: 1px solid #ddd; border-radius: 6px;
                  margin: 14px 0; padding: 6px 16px 12px; }
details { margin: 8px 0; }
summary { cursor: pointer; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
td, th { border-bottom: 1px solid #eee; padding: 3px 6px; text-align: left; font-size: 13px;
         vertical-align: top; }
td.num { text-align: right; white-space: nowrap; }
pre.error { background: #fdecea; color: #8e1b1b; padding: 6px; white-space: pre-wrap;
            margin: 2px 0; }
.tag { color: #555; font-size: 12px; margin-right: 6px; }
.plot svg { max-width: 100%; height: auto; }
"""

SCRIPT = """
(function () {
  var parts = [];
  document.querySelectorAll(".card").forEach(function (card) {
    var counts = [];
    card.querySelectorAll(".count").forEach(function (c) { counts.push(c.textContent.trim()); });
    parts.push(card.dataset.kind + ": " + counts.join(", "));
  });
  document.title = "kfkit verify | " + parts.join(" | ");
})();
"""


def _badge(status: str) -> str:
    colour = COLOURS.get(status, COLOURS["skipped"])
    return f'<span class="badge" style="background:{colour}">{escape(status)}</span>'


def _card(kind: str, counts: Counts) -> str:
    total = max(counts.total, 1)
    spans, bars = [], []
    for status in ("passed", "failed", "skipped"):
        value = getattr(counts, status)
        colour = COLOURS[status]
        spans.append(
            f'<span class="count {status}" style="background:{colour}">{value} {status}</span>'
        )
        if value:
            bars.append(f'<div style="width:{100 * value / total:.2f}%;background:{colour}"></div>')
    return (
        f'<div class="card" data-kind="{kind}"><h2>{counts.total} {kind}</h2>'
        f'{"".join(spans)}<div class="bar">{"".join(bars)}</div></div>'
    )


def _tags(tags: list[dict[str, Any]]) -> str:
    return "".join(f'<span class="tag">{escape(t["name"])}</span>' for t in tags)


def _step_rows(scenario: dict[str, Any]) -> str:
    rows = []
    for step in scenario.get("steps") or []:
        result = step["result"]
        error = result.get("error_message")
        error_html = f'<pre class="error">{escape(str(error))}</pre>' if error else ""
        rows.append(
            f"<tr><td><b>{escape(step['keyword'])}</b>{escape(step['name'])}{error_html}</td>"
            f"<td>{_badge(result['status'])}</td>"
            f'<td class="num">{int(result.get("duration") or 0) / 1e9:.2f} s</td></tr>'
        )
    return "".join(rows)


def _scenario(scenario: dict[str, Any]) -> str:
    status = scenario_status(scenario)
    seconds = scenario_duration_ns(scenario) / 1e9
    opened = " open" if status == FAILED else ""
    return (
        f'<details class="scenario {status}"{opened}><summary>{_badge(status)} '
        f"{escape(str(scenario.get('keyword') or 'Scenario'))}: "
        f"<b>{escape(str(scenario.get('name') or ''))}</b> ({seconds:.1f} s) "
        f"{_tags(scenario.get('tags') or [])}</summary>"
        "<table><tr><th>step</th><th>status</th><th>duration</th></tr>"
        f"{_step_rows(scenario)}</table></details>"
    )


def _feature(feature: Feature) -> str:
    description = escape(str(feature.get("description") or ""))
    return (
        f'<section class="feature"><h3>{_badge(feature_status(feature))} '
        f"{escape(str(feature.get('keyword') or 'Feature'))}: {escape(feature['name'])}</h3>"
        f'<p>{description}</p><p class="tag">{escape(str(feature.get("uri") or ""))}</p>'
        f"{''.join(_scenario(s) for s in feature.get('elements') or [])}</section>"
    )


def _plots(features: list[Feature]) -> str:
    figures = []
    for feature in features:
        for scenario in feature.get("elements") or []:
            for step in scenario.get("steps") or []:
                for attached in step_metrics(step):
                    title = f"{attached['job']} ({scenario.get('name')})"
                    svg = curves_svg(title, attached["metrics"])
                    if svg:
                        figures.append(f'<div class="plot">{svg}</div>')
    if not figures:
        return "<p>No job attached training metrics in this run.</p>"
    return "".join(figures)


def _environment(environment: dict[str, str]) -> str:
    rows = "".join(
        f"<tr><th>{escape(key)}</th><td>{escape(str(value))}</td></tr>"
        for key, value in environment.items()
    )
    return f"<table>{rows}</table>"


def render_html(
    features: list[Feature],
    environment: dict[str, str] | None = None,
    summary: Summary | None = None,
    title: str = "kfkit verify",
) -> str:
    """The whole report as one HTML string."""
    summary = summary or summarize(features)
    verdict = PASSED if summary.ok else FAILED
    banner = COLOURS[verdict]
    headline = "all scenarios passed" if summary.ok else "some scenarios failed or none ran"
    if summary.scenarios.failed:
        headline = f"{summary.scenarios.failed} scenario(s) failed"
    cards = "".join(
        _card(kind, getattr(summary, kind)) for kind in ("features", "scenarios", "steps")
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f'<header id="verdict" class="{verdict}" style="background:{banner}">'
        f"<h1>{escape(title)}: {escape(headline)}</h1>"
        f"<p>{escape(' · '.join(summary.lines()))} · {summary.duration_ns / 1e9:.1f} s</p>"
        "</header><main>"
        f'<h2>Summary</h2><div class="cards" id="summary">{cards}</div>'
        f"<h2>Scenarios</h2>{''.join(_feature(f) for f in features)}"
        f"<h2>Training curves</h2>{_plots(features)}"
        f"<h2>Environment</h2>{_environment(environment or {})}"
        f"</main><script>{SCRIPT}</script></body></html>\n"
    )


def write_html(
    features: list[Feature], path: str | Path, environment: dict[str, str] | None = None
) -> Path:
    path = Path(path)
    path.write_text(render_html(features, environment), encoding="utf-8")
    return path
