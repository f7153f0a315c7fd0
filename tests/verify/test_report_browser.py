"""The HTML report in a real browser: headless Chromium renders it; DOM and screenshot are checked.

Views of the rendered page: the page's own script writes the counts it finds
in the rendered summary into the title; the DOM as Chromium holds it after
the script ran (``--dump-dom``, parsed with lxml) must show the measured
values beside their thresholds, the threshold lines and kill/resume markers
in the scenarios' charts and the overview tables, for a passing and a failing
run (synthetic cucumber JSON, see ``synthetic.py``); and the screenshot's
pixels show the summary's colours in the right proportions (a run with 3
passed and 1 failed scenario has a bar that is three quarters green, a
quarter red) under a red banner.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import lxml.html
import numpy as np
import pytest
from matplotlib import image

from kfkit.report import collect_environment, load, write_reports
from kfkit.report.html import COLOURS

from . import synthetic

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: run `make verify-chromium`")
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


STATUSES = list(COLOURS)


def status_map(pixels: np.ndarray) -> np.ndarray:
    """Per pixel: the index of the status colour it shows (within 3 levels), or -1."""
    found = np.full(pixels.shape[:2], -1)
    for index, colour in enumerate(COLOURS.values()):
        close = np.abs(pixels.astype(int) - np.array(rgb(colour))).max(axis=2) <= 3
        found[close] = index
    return found


def colour_runs(row: np.ndarray) -> list[tuple[str, int, int]]:
    """Runs of one status colour along a row of :func:`status_map`: (status, start x, length)."""
    edges = np.flatnonzero(np.diff(row)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(row)]])
    return [
        (STATUSES[row[a]], int(a), int(b - a))
        for a, b in zip(starts, ends, strict=True)
        if row[a] >= 0
    ]


@pytest.fixture(scope="module")
def rendered(demo_run, tmp_path_factory):
    reports = write_reports(
        load(demo_run.cucumber_json),
        tmp_path_factory.mktemp("report"),
        collect_environment(target="local"),
    )
    return reports.html


def test_title_shows_the_rendered_counts(rendered, tmp_path):
    dom = chromium(tmp_path, "--dump-dom", rendered.as_uri()).stdout
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title, dom[:500]
    assert title.group(1) == (
        "kfkit verify | features: 0 passed, 1 failed, 0 skipped"
        " | scenarios: 3 passed, 1 failed, 0 skipped"
        " | steps: 11 passed, 1 failed, 1 skipped"
    )


def test_screenshot_shows_the_summary(rendered, tmp_path):
    png = tmp_path / "report.png"
    chromium(tmp_path, "--window-size=1280,900", f"--screenshot={png}", rendered.as_uri())
    pixels = status_map((image.imread(png)[:, :, :3] * 255).round().astype(np.uint8))
    keep = Path(__file__).parent.parent.parent / "reports" / "browser-test-report.png"
    keep.parent.mkdir(exist_ok=True)
    shutil.copyfile(png, keep)  # for a human to look at

    # The banner at the top is red: a scenario failed.
    assert colour_runs(pixels[10])[0][0] == "failed"
    assert colour_runs(pixels[10])[0][2] > 1000

    # The summary bars: a row where a green run touches a red one. Three cards side by side:
    # features (all red), scenarios (3 green : 1 red), steps (11 green : 1 red : 1 amber).
    bar_rows = [
        y
        for y in range(60, 400)
        if any(
            a[0] == "passed" and b[0] == "failed" and a[1] + a[2] == b[1]
            for a, b in zip(colour_runs(pixels[y]), colour_runs(pixels[y])[1:], strict=False)
        )
    ]
    assert bar_rows, "no summary bar found in the screenshot"
    runs = [(s, n) for s, _, n in colour_runs(pixels[bar_rows[len(bar_rows) // 2]]) if n > 2]
    statuses = [s for s, _ in runs]
    assert statuses == ["failed", "passed", "failed", "passed", "failed", "skipped"], runs
    features_width = runs[0][1]
    scenarios_green, scenarios_red = runs[1][1], runs[2][1]
    steps_green, steps_red, steps_amber = runs[3][1], runs[4][1], runs[5][1]
    assert scenarios_green / (scenarios_green + scenarios_red) == pytest.approx(0.75, abs=0.02)
    assert steps_green / (steps_green + steps_red + steps_amber) == pytest.approx(11 / 13, abs=0.02)
    assert scenarios_green + scenarios_red == pytest.approx(features_width, abs=2)


# --- what was measured, in the DOM Chromium rendered -----------------------------------------


@pytest.fixture(scope="module")
def synthetic_reports(tmp_path_factory) -> dict[str, Path]:
    environment = collect_environment(target="local")
    return {
        name: write_reports(synthetic.run(failing), tmp_path_factory.mktemp(name), environment).html
        for name, failing in (("passing", False), ("failing", True))
    }


def dom(tmp_path: Path, url: str) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(chromium(tmp_path, "--dump-dom", url).stdout)


def find(element, tag: str, *classes: str, **attributes: str) -> list:
    """Descendants ``tag`` with every class in ``classes`` and the given attribute values."""
    tests = [f"contains(concat(' ', normalize-space(@class), ' '), ' {c} ')" for c in classes]
    tests += [f"@{name.replace('_', '-')}='{value}'" for name, value in attributes.items()]
    return element.xpath(f".//{tag}" + "".join(f"[{t}]" for t in tests))


def text(element) -> str:
    return " ".join(element.text_content().split())


def texts(elements) -> list[str]:
    return [text(e) for e in elements]


def svg_texts(element) -> list[str]:
    """The legend and axis texts of the charts under ``element`` (SVG keeps text as text)."""
    return texts(element.xpath(".//*[local-name()='text']"))


def scenario(page, name_part: str):
    (found,) = [
        d for d in find(page, "details", "scenario") if name_part in text(d.xpath("./summary/b")[0])
    ]
    return found


def table_rows(page, table_id: str) -> list[list[str]]:
    return [texts(tr.xpath("./td")) for tr in page.xpath(f"//table[@id='{table_id}']//tr[td]")]


def test_passing_run_shows_measured_values_thresholds_and_overview(synthetic_reports, tmp_path):
    page = dom(tmp_path, synthetic_reports["passing"].as_uri())
    assert page.get_element_by_id("verdict").get("class") == "passed"

    # The results table: one row per measured value, with threshold and the paper's value.
    rows = find(page, "tr", "result")
    accuracy = [r for r in rows if r.get("data-metric") == "test accuracy"]
    assert [texts(r.xpath("./td"))[1:7] for r in accuracy] == [
        ["pytorch-mnist-gloo-t1", "2", "test accuracy", "0.9430", ">= 0.9000", "0.9662"],
        ["pytorch-mnist-gloo-t2", "3", "test accuracy", "0.9320", ">= 0.9000", "0.9662"],
    ]
    assert {r.get("data-metric") for r in rows} == {
        "test accuracy",
        "restarts",
        "resumed from step",
    }

    # The step row says what was measured, next to the step.
    row = scenario(page, "workers=1")
    assert texts(find(row, "span", "measurement")) == [
        "test accuracy 0.9430 >= 0.9000 (pytorch-mnist-gloo-t1)"
    ]
    # The scenario's chart: readable legends, the threshold line, samples on the x axis.
    chart = svg_texts(find(row, "div", "plot")[0])
    assert {"training loss", "test accuracy", "threshold >= 0.9"} <= set(chart)
    assert "training samples seen (all replicas)" in chart
    assert not any(t.startswith(("steps.", "evals.")) for t in chart)

    # The fault scenario's chart marks the kill, the restart and the resume.
    fault = svg_texts(find(scenario(page, "killed worker"), "div", "plot")[0])
    assert {"worker-0 killed", "restarted", "resumed from step 10"} <= set(fault)
    assert "end of epoch" in fault

    # Overview: features and tags, no failed list, the run's metadata and the other files.
    features = table_rows(page, "features")
    assert [r[0] for r in features] == ["Distributed PyTorch MNIST", "Fault tolerance"]
    tags = {r[0]: r[1:4] for r in table_rows(page, "tags")}
    assert tags["@fast"] == ["3", "0", "0"]
    assert not page.xpath("//*[@id='failed']")
    assert texts(page.xpath("//*[@id='run']/span[@data-key='target']/b")) == ["local"]
    files = [a.get("href") for a in find(page, "p", "meta")[1].xpath(".//a")]
    assert files == ["cucumber.json", "junit.xml", "results.json", "summary.json"]
    assert all((synthetic_reports["passing"].parent / name).is_file() for name in files)


def test_failing_run_leads_to_the_cause(synthetic_reports, tmp_path):
    page = dom(tmp_path, synthetic_reports["failing"].as_uri())
    assert page.get_element_by_id("verdict").get("class") == "failed"

    # The failed-first list links to each failed scenario, which is open.
    links = page.xpath("//*[@id='failed']/li/a")
    assert len(links) == 2
    for link in links:
        target = page.get_element_by_id(link.get("href")[1:])
        assert target.tag == "details" and target.get("open") is not None

    # The low accuracy: in the step row and the results table, with the threshold it missed.
    low = scenario(page, "workers=2")
    assert texts(find(low, "span", "measurement", "failed")) == [
        "test accuracy 0.8500, required >= 0.9000 (pytorch-mnist-gloo-t2)"
    ]
    (failed_row,) = find(page, "tr", "result", "failed")
    assert texts(find(failed_row, "td", "value")) == ["0.8500"]

    # The failed job: exception type and message, traceback with its location, the failing
    # replica's last lines, and links to every replica's log.
    broken = scenario(page, "worker fails")
    assert text(find(broken, "pre", "error")[0]).startswith(
        "AssertionError: pytorch-mnist-gloo-broken did not succeed"
    )
    assert "stepfile.py:84" in text(find(broken, "details", "traceback")[0].xpath("./summary")[0])
    assert "AssertionError: did not succeed" in text(find(broken, "pre", "traceback")[0])
    tails = find(broken, "details", "log-tail")
    assert [text(t.xpath("./summary")[0]) for t in tails] == ["last 2 lines of worker-0"]
    assert "RuntimeError: gloo timed out" in text(find(broken, "pre", "log")[0])
    assert [a.get("href") for a in find(broken, "a", "log")] == [
        "work/jobs/pytorch-mnist-gloo-broken/logs/master-0.log",
        "work/jobs/pytorch-mnist-gloo-broken/logs/worker-0.log",
    ]


def test_link_filters_by_status_and_tag(synthetic_reports, tmp_path):
    url = synthetic_reports["failing"].as_uri()
    shown = {
        fragment: [
            d.get("data-status")
            for d in find(dom(tmp_path, f"{url}#{fragment}"), "details", "scenario")
            if "hidden" not in d.get("class").split()
        ]
        for fragment in ("status=failed", "status=passed", "tag=@broken")
    }
    assert shown == {
        "status=failed": ["failed", "failed"],
        "status=passed": ["passed", "passed"],
        "tag=@broken": ["failed"],
    }
