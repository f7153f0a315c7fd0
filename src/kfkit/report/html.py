"""A self-contained HTML report: verdict, what was measured, where to look when something failed.

Read top to bottom it answers, in order: did the run pass (banner and counts);
what did the platform achieve against which threshold (the results table);
what failed and why (the failed-first list, linking to each scenario, which
opens with its exception, traceback and the failing replicas' last log
lines); how each feature and tag fared (overview tables); and each scenario's
steps with the measured value in the step row and the job's curves beside
them. Run metadata and versions close the page.

Everything is inline (CSS, SVG plots, a little script), so the file can be
mailed, attached to a CI run or shown as a Kubeflow Pipelines artifact, and
works offline. Links to logs and the other report files are relative, so they
work where the report directory was copied whole. The script filters
scenarios by status, tag and text (also from the link: ``#status=failed``,
``#tag=@fast``), expands or collapses them all, and writes the rendered
counts into the page title (browser tests read them back).
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any

from kfkit.report.cucumber import (
    FAILED,
    PASSED,
    SKIPPED,
    Counts,
    Feature,
    Summary,
    feature_status,
    scenario_duration_ns,
    scenario_error,
    scenario_status,
    scenarios,
    step_metrics,
    summarize,
)
from kfkit.report.evidence import (
    Event,
    JobRecord,
    format_value,
    step_events,
    step_failure,
    step_jobs,
    step_measurements,
    step_texts,
)
from kfkit.report.plots import curves_svg
from kfkit.report.results import results, scenario_anchor, scenario_measurements

# One colour per status, used by the summary bars, badges and the banner.
COLOURS = {"passed": "#2e7d32", "failed": "#c62828", "skipped": "#f9a825"}

# The other files of a report directory, linked from the page.
REPORT_FILES = ("cucumber.json", "junit.xml", "results.json", "summary.json")

CSS = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1d1d1d; background: #fafafa; }
header { padding: 18px 28px; color: white; }
header h1 { margin: 0; font-size: 22px; }
header p { margin: 4px 0 0; }
main { padding: 8px 28px 40px; }
h2 { font-size: 18px; margin: 22px 0 8px; }
a { color: #0b57a4; }
.cards { display: flex; gap: 16px; flex-wrap: wrap; margin: 16px 0; }
.card { background: white; border: 1px solid #ddd; border-radius: 6px; padding: 12px 16px;
        min-width: 240px; }
.card h2 { margin: 0 0 8px; font-size: 15px; text-transform: capitalize; }
.count { display: inline-block; min-width: 64px; padding: 3px 8px; margin-right: 4px;
         border-radius: 4px; color: white; font-weight: 600; text-align: center; }
.bar { display: flex; height: 14px; margin-top: 10px; border-radius: 3px; overflow: hidden;
       background: #eee; }
.badge { padding: 1px 7px; border-radius: 3px; color: white; font-size: 12px; }
.meta { color: #444; font-size: 13px; margin: 4px 0; }
.meta span { margin-right: 14px; }
section.feature { background: white; border: 1px solid #ddd; border-radius: 6px;
                  margin: 14px 0; padding: 6px 16px 12px; }
details { margin: 8px 0; }
summary { cursor: pointer; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; background: white; }
td, th { border-bottom: 1px solid #eee; padding: 3px 6px; text-align: left; font-size: 13px;
         vertical-align: top; }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
tr.failed td.value { color: #8e1b1b; font-weight: 600; }
pre.error { background: #fdecea; color: #8e1b1b; padding: 6px; white-space: pre-wrap;
            margin: 2px 0; }
pre.traceback, pre.log { background: #f4f4f4; padding: 6px; white-space: pre-wrap; margin: 2px 0;
                         font-size: 12px; max-height: 24em; overflow: auto; }
.measurement { display: inline-block; margin: 2px 0; padding: 1px 6px; border-radius: 3px;
               font-family: ui-monospace, monospace; font-size: 13px; }
.measurement.passed { background: #e8f5e9; color: #1b5e20; }
.measurement.failed { background: #fdecea; color: #8e1b1b; }
.output { color: #444; font-size: 12px; margin: 1px 0; }
.where { color: #777; font-size: 11px; }
.tag { color: #555; font-size: 12px; margin-right: 6px; }
.toolbar { position: sticky; top: 0; background: #fafafa; padding: 8px 0; z-index: 1;
           display: flex; gap: 10px; flex-wrap: wrap; align-items: center;
           border-bottom: 1px solid #ddd; }
.toolbar button, .toolbar select, .toolbar input { font-size: 13px; padding: 3px 8px; }
.toolbar button.on { background: #333; color: white; }
.plot svg { max-width: 100%; height: auto; }
.hidden { display: none; }
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

  var state = { status: "all", tag: "", text: "" };
  function apply() {
    document.querySelectorAll("details.scenario").forEach(function (s) {
      var tags = (s.dataset.tags || "").split(" ");
      var show = (state.status === "all" || s.dataset.status === state.status) &&
        (!state.tag || tags.indexOf(state.tag) >= 0) &&
        (!state.text || s.textContent.toLowerCase().indexOf(state.text) >= 0);
      s.classList.toggle("hidden", !show);
    });
    document.querySelectorAll("section.feature").forEach(function (f) {
      f.classList.toggle("hidden", !f.querySelector("details.scenario:not(.hidden)"));
    });
    document.querySelectorAll("button[data-status]").forEach(function (b) {
      b.classList.toggle("on", b.dataset.status === state.status);
    });
  }
  document.querySelectorAll("button[data-status]").forEach(function (b) {
    b.addEventListener("click", function () { state.status = b.dataset.status; apply(); });
  });
  var tag = document.getElementById("filter-tag");
  if (tag) { tag.addEventListener("change", function () { state.tag = tag.value; apply(); }); }
  var text = document.getElementById("filter-text");
  if (text) {
    text.addEventListener("input", function () { state.text = text.value.toLowerCase(); apply(); });
  }
  function openAll(open) {
    document.querySelectorAll("details.scenario").forEach(function (d) { d.open = open; });
  }
  var expand = document.getElementById("expand-all");
  if (expand) { expand.addEventListener("click", function () { openAll(true); }); }
  var collapse = document.getElementById("collapse-all");
  if (collapse) { collapse.addEventListener("click", function () { openAll(false); }); }
  // A link to a scenario (#s-...) opens it; #status=failed or #tag=@fast sets the filter,
  // so a filtered view can be shared as a link.
  function fromHash() {
    var hash = decodeURIComponent(location.hash.slice(1));
    if (hash.indexOf("status=") === 0) { state.status = hash.slice(7); }
    else if (hash.indexOf("tag=") === 0) {
      state.tag = hash.slice(4);
      if (tag) { tag.value = state.tag; }
    } else {
      var target = hash && document.getElementById(hash);
      if (target && target.tagName === "DETAILS") { target.open = true; }
    }
    apply();
  }
  window.addEventListener("hashchange", fromHash);
  fromHash();
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


def _table(head: Iterable[str], rows: Iterable[str], table_id: str) -> str:
    cells = "".join(
        f'<th class="num">{escape(h[1:])}</th>' if h.startswith("#") else f"<th>{escape(h)}</th>"
        for h in head
    )
    return f'<table id="{table_id}"><tr>{cells}</tr>{"".join(rows)}</table>'


def _seconds(nanoseconds: int) -> str:
    return f"{nanoseconds / 1e9:.1f} s"


# --- the top of the page: what was measured, what failed, how features and tags fared --------


def _results_table(features: list[Feature]) -> str:
    rows = []
    # What the paper also measured first (accuracy, cross-entropy), then the other checks.
    for row in sorted(results(features), key=lambda r: r.measurement.paper_value is None):
        m = row.measurement
        status = PASSED if m.passed else FAILED
        unit = f" {m.unit}" if m.unit else ""
        paper = format_value(m.paper_value) if m.paper_value is not None else ""
        rows.append(
            f'<tr class="result {status}" data-metric="{escape(m.metric)}">'
            f'<td><a href="#{row.anchor}">{escape(row.scenario)}</a></td>'
            f"<td>{escape(m.job or '')}</td>"
            f'<td class="num">{m.world_size if m.world_size is not None else ""}</td>'
            f"<td>{escape(m.metric)}</td>"
            f'<td class="num value">{escape(format_value(m.value, m.unit) + unit)}</td>'
            f'<td class="num threshold">{escape(m.comparison)} '
            f"{escape(format_value(m.threshold, m.unit) + unit)}</td>"
            f'<td class="num">{escape(paper)}</td><td>{_badge(status)}</td></tr>'
        )
    if not rows:
        return "<p>No step of this run measured a value.</p>"
    head = ("scenario", "job", "#world size", "metric", "#value", "#threshold", "#paper", "")
    return _table(head, rows, "results")


def _failed_list(features: list[Feature]) -> str:
    items = []
    for feature, scenario in scenarios(features):
        if scenario_status(scenario) != FAILED:
            continue
        error = (scenario_error(scenario) or "failed").splitlines()[0]
        items.append(
            f'<li><a href="#{scenario_anchor(feature, scenario)}">'
            f"{escape(feature['name'])}: {escape(str(scenario.get('name') or ''))}</a>"
            f' <span class="where">{escape(error)}</span></li>'
        )
    if not items:
        return ""
    return f'<h2>Failed scenarios</h2><ol id="failed">{"".join(items)}</ol>'


def _count_cells(counts: Counts) -> str:
    return "".join(
        f'<td class="num">{getattr(counts, status)}</td>' for status in (PASSED, FAILED, SKIPPED)
    )


def _features_table(features: list[Feature]) -> str:
    rows = []
    for feature in features:
        counts, steps, duration = Counts(), Counts(), 0
        for scenario in feature.get("elements") or []:
            counts.add(scenario_status(scenario))
            duration += scenario_duration_ns(scenario)
            for step in scenario.get("steps") or []:
                steps.add(step["result"]["status"])
        rows.append(
            f'<tr><td><a href="#f-{escape(feature["id"])}">{escape(feature["name"])}</a></td>'
            f"<td>{_badge(feature_status(feature))}</td>{_count_cells(counts)}"
            f'<td class="num">{steps.total}</td><td class="num">{_seconds(duration)}</td></tr>'
        )
    head = ("feature", "status", "#passed", "#failed", "#skipped", "#steps", "#duration")
    return _table(head, rows, "features")


def _tag_counts(features: list[Feature]) -> dict[str, tuple[Counts, int]]:
    found: dict[str, tuple[Counts, int]] = {}
    for _, scenario in scenarios(features):
        for tag in scenario.get("tags") or []:
            counts, duration = found.setdefault(tag["name"], (Counts(), 0))
            counts.add(scenario_status(scenario))
            found[tag["name"]] = (counts, duration + scenario_duration_ns(scenario))
    return dict(sorted(found.items()))


def _tags_table(tags: dict[str, tuple[Counts, int]]) -> str:
    rows = [
        f'<tr><td class="tag-name">{escape(name)}</td>{_count_cells(counts)}'
        f'<td class="num">{counts.total}</td><td class="num">{_seconds(duration)}</td></tr>'
        for name, (counts, duration) in tags.items()
    ]
    if not rows:
        return "<p>No scenario has tags.</p>"
    return _table(
        ("tag", "#passed", "#failed", "#skipped", "#scenarios", "#duration"), rows, "tags"
    )


def _toolbar(tags: Iterable[str]) -> str:
    buttons = "".join(
        f'<button type="button" data-status="{s}">{s}</button>'
        for s in ("all", PASSED, FAILED, SKIPPED)
    )
    options = "".join(f'<option value="{escape(t)}">{escape(t)}</option>' for t in tags)
    return (
        f'<div class="toolbar" id="toolbar">show: {buttons}'
        f'<select id="filter-tag"><option value="">every tag</option>{options}</select>'
        '<input id="filter-text" type="search" placeholder="search scenarios">'
        '<button type="button" id="expand-all">expand all</button>'
        '<button type="button" id="collapse-all">collapse all</button></div>'
    )


# --- one scenario: its steps with what they measured, its jobs and their curves -------------


def _step_extras(step: dict[str, Any]) -> str:
    """Under the step's text: measurements, other output, and a failure's type and traceback."""
    parts = []
    measured = step_measurements(step)
    for m in measured:
        status = PASSED if m.passed else FAILED
        parts.append(
            f'<div><span class="measurement {status}" data-value="{m.value}" '
            f'data-threshold="{m.threshold}">{escape(m.text())}</span></div>'
        )
    shown = {m.text() for m in measured}
    failure = step_failure(step)
    for text in step_texts(step):
        if text in shown or (failure and text == failure["traceback"]):
            continue
        parts.append(f'<div class="output">{escape(text)}</div>')
    error = step["result"].get("error_message")
    if error and any(str(error).startswith(m.text()) for m in measured):
        error = None  # the measurement above already says it, in red
    if error:
        kind = f"{failure['type']}: " if failure else ""
        parts.append(f'<pre class="error">{escape(kind + str(error))}</pre>')
    if failure and failure["traceback"]:
        parts.append(
            f'<details class="traceback" open><summary>traceback ({escape(failure["location"])})'
            f'</summary><pre class="traceback">{escape(failure["traceback"])}</pre></details>'
        )
    return "".join(parts)


def _step_rows(feature: Feature, scenario: dict[str, Any]) -> str:
    rows = []
    uri = str(feature.get("uri") or "")
    for step in scenario.get("steps") or []:
        result = step["result"]
        where = f"{uri}:{step.get('line')}" if uri else ""
        rows.append(
            f'<tr class="step {result["status"]}"><td><b>{escape(step["keyword"])}</b>'
            f'{escape(step["name"])} <span class="where">{escape(where)}</span>'
            f"{_step_extras(step)}</td><td>{_badge(result['status'])}</td>"
            f'<td class="num">{int(result.get("duration") or 0) / 1e9:.2f} s</td></tr>'
        )
    return "".join(rows)


def _job_block(record: JobRecord, scenario_failed: bool) -> str:
    links = " ".join(
        f'<a class="log" href="{escape(path)}">{escape(replica)}.log</a>'
        for replica, path in record.logs.items()
    )
    parts = [f'<p class="job"><b>{escape(record.text())}</b> · logs: {links or "none"}</p>']
    if scenario_failed and record.phase != "Succeeded":
        # The failing replicas' last lines; when none is marked failed, every replica's.
        replicas = record.failed_replicas or list(record.log_tails)
        for replica in replicas:
            lines = record.log_tails.get(replica) or []
            parts.append(
                f'<details class="log-tail" open><summary>last {len(lines)} lines of '
                f'{escape(replica)}</summary><pre class="log">{escape(chr(10).join(lines))}'
                "</pre></details>"
            )
    return "".join(parts)


def _scenario_jobs(scenario: dict[str, Any]) -> tuple[list[JobRecord], list[Event]]:
    jobs, events = [], []
    for step in scenario.get("steps") or []:
        jobs += step_jobs(step)
        events += step_events(step)
    return jobs, events


def _scenario_plots(scenario: dict[str, Any], events: list[Event]) -> str:
    measurements = scenario_measurements(scenario)
    figures = []
    for step in scenario.get("steps") or []:
        for attached in step_metrics(step):
            job = str(attached["job"])
            own = [m for m in measurements if m.job in (None, job)]
            svg = curves_svg(job, attached["metrics"], own, [e for e in events if e.job == job])
            if svg:
                figures.append(f'<div class="plot" data-job="{escape(job)}">{svg}</div>')
    return "".join(figures)


def _scenario(feature: Feature, scenario: dict[str, Any]) -> str:
    status = scenario_status(scenario)
    seconds = scenario_duration_ns(scenario) / 1e9
    opened = " open" if status == FAILED else ""
    tags = " ".join(t["name"] for t in scenario.get("tags") or [])
    jobs, events = _scenario_jobs(scenario)
    return (
        f'<details class="scenario {status}" id="{scenario_anchor(feature, scenario)}" '
        f'data-status="{status}" data-tags="{escape(tags)}"{opened}><summary>{_badge(status)} '
        f"{escape(str(scenario.get('keyword') or 'Scenario'))}: "
        f"<b>{escape(str(scenario.get('name') or ''))}</b> ({seconds:.1f} s) "
        f"{_tags(scenario.get('tags') or [])}</summary>"
        "<table><tr><th>step</th><th>status</th><th>duration</th></tr>"
        f"{_step_rows(feature, scenario)}</table>"
        f"{''.join(_job_block(j, status == FAILED) for j in jobs)}"
        f"{_scenario_plots(scenario, events)}</details>"
    )


def _feature(feature: Feature) -> str:
    description = escape(str(feature.get("description") or ""))
    return (
        f'<section class="feature" id="f-{escape(feature["id"])}">'
        f"<h3>{_badge(feature_status(feature))} "
        f"{escape(str(feature.get('keyword') or 'Feature'))}: {escape(feature['name'])}</h3>"
        f'<p>{description}</p><p class="tag">{escape(str(feature.get("uri") or ""))}</p>'
        f"{''.join(_scenario(feature, s) for s in feature.get('elements') or [])}</section>"
    )


# Run metadata shown under the banner, in this order, when the environment has it.
META_KEYS = ("target", "cluster context", "git commit", "host", "date (UTC)", "tags")


def _meta(environment: dict[str, str]) -> str:
    spans = [
        f'<span data-key="{escape(key)}">{escape(key)}: '
        f"<b>{escape(str(environment[key]))}</b></span>"
        for key in META_KEYS
        if environment.get(key)
    ]
    links = " ".join(f'<a href="{name}">{name}</a>' for name in REPORT_FILES)
    return f'<p class="meta" id="run">{"".join(spans)}</p><p class="meta">files: {links}</p>'


def _environment(environment: dict[str, str]) -> str:
    rows = "".join(
        f"<tr><th>{escape(key)}</th><td>{escape(str(value))}</td></tr>"
        for key, value in environment.items()
    )
    return f'<table id="environment">{rows}</table>'


def render_html(
    features: list[Feature],
    environment: dict[str, str] | None = None,
    summary: Summary | None = None,
    title: str = "kfkit verify",
) -> str:
    """The whole report as one HTML string."""
    environment = environment or {}
    summary = summary or summarize(features)
    verdict = PASSED if summary.ok else FAILED
    banner = COLOURS[verdict]
    headline = "all scenarios passed" if summary.ok else "some scenarios failed or none ran"
    if summary.scenarios.failed:
        headline = f"{summary.scenarios.failed} scenario(s) failed"
    cards = "".join(
        _card(kind, getattr(summary, kind)) for kind in ("features", "scenarios", "steps")
    )
    tags = _tag_counts(features)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f'<header id="verdict" class="{verdict}" style="background:{banner}">'
        f"<h1>{escape(title)}: {escape(headline)}</h1>"
        f"<p>{escape(' · '.join(summary.lines()))} · {summary.duration_ns / 1e9:.1f} s</p>"
        "</header><main>"
        f'<h2>Summary</h2><div class="cards" id="summary">{cards}</div>'
        f"{_meta(environment)}"
        f"<h2>Results</h2>{_results_table(features)}"
        f"{_failed_list(features)}"
        f"<h2>Features</h2>{_features_table(features)}"
        f"<h2>Tags</h2>{_tags_table(tags)}"
        f"<h2>Scenarios</h2>{_toolbar(tags)}{''.join(_feature(f) for f in features)}"
        f"<h2>Environment</h2>{_environment(environment)}"
        f"</main><script>{SCRIPT}</script></body></html>\n"
    )


def write_html(
    features: list[Feature], path: str | Path, environment: dict[str, str] | None = None
) -> Path:
    path = Path(path)
    path.write_text(render_html(features, environment), encoding="utf-8")
    return path
