"""Our cucumber JSON in a standard cucumber tool: cucumber-html-reporter (npm, pinned).

The tool prints each step as keyword + name and reads durations as
nanoseconds; radish's own JSON repeats the keyword ("Given Given ..."), ours
must not, and the tool must count what radish counted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest

from kfkit.report import load

from .conftest import HERE

pytestmark = pytest.mark.integration

CACHE = Path(os.environ.get("KFKIT_CACHE") or Path.home() / ".cache" / "kfkit")
REPORTER = CACHE / "verify" / "cucumber-html-reporter"
RENDER = HERE / "cucumber_reporter" / "render.js"


def render(cucumber_json: Path, out: Path) -> str:
    if not (REPORTER / "node_modules" / "cucumber-html-reporter").is_dir():
        pytest.fail(
            f"cucumber-html-reporter is not in {REPORTER}: run `make verify-cucumber-reporter`"
        )
    node = shutil.which("node")
    assert node, "node is not installed"
    env = dict(os.environ, NODE_PATH=str(REPORTER / "node_modules"))
    subprocess.run(
        [node, str(RENDER), str(cucumber_json), str(out)],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )
    return unescape(out.read_text())


def counts(html: str) -> dict[str, int]:
    """Scenario counts (per feature) and step counts (per scenario), summed over the page."""
    found: dict[str, int] = {}
    pattern = r'title="(\d+) (Scenarios|Steps) (Passed|Failed|Skipped)"'
    for n, what, status in re.findall(pattern, html):
        found[f"{what} {status}"] = found.get(f"{what} {status}", 0) + int(n)
    return found


def steps(html: str) -> list[str]:
    found = re.findall(
        r'class="keyword highlight">([^<]*)</span>\s*<span class="stepname">([^<]*)<', html
    )
    return [" ".join((keyword + name).split()) for keyword, name in found]


def test_cucumber_html_reporter_reads_our_json(demo_run, tmp_path):
    ours = tmp_path / "cucumber.json"
    ours.write_text(json.dumps(load(demo_run.cucumber_json)))
    html = render(ours, tmp_path / "ours.html")
    assert counts(html) == {
        "Scenarios Passed": 3,
        "Scenarios Failed": 1,
        "Steps Passed": 11,
        "Steps Failed": 1,
        "Steps Skipped": 1,
    }
    assert steps(html)[:3] == ["Given the number 3", "When I add 4", "Then the result is 7"]
    assert "expected 8, got 7" in html
    # The measurements and the traceback the steps attached are shown under their steps.
    assert "result 7 == 7" in html and "result 7, required == 8" in html
    assert "Traceback (most recent call last):" in html
    # Durations are nanoseconds: the tool prints this demo's steps in (milli)seconds, never hours.
    durations = re.findall(r'step-duration">\s*([^<]*?)\s*<', html)
    assert durations and not any("h" in d or "m " in d for d in durations), durations


def test_radish_json_as_is_repeats_the_keyword(demo_run, tmp_path):
    """The reason for kfkit.report.normalize: radish's own JSON reads "Given Given ..."."""
    html = render(demo_run.cucumber_json, tmp_path / "raw.html")
    assert steps(html)[0] == "Given Given the number 3"
