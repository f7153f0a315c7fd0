"""The HTML report in a real browser: headless Chromium renders it; the screenshot is checked.

Two independent views of the rendered page: the page's own script writes the
counts it finds in the rendered summary into the title (read back with
--dump-dom), and the screenshot's pixels show the summary's colours in the
right proportions (a run with 3 passed and 1 failed scenario has a bar that
is three quarters green, a quarter red) under a red banner.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from kfkit.report import collect_environment, load, write_reports
from kfkit.report.html import COLOURS

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
