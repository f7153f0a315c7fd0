"""Fixtures of the verification-suite tests: a real radish run of a small demo feature."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEMO = HERE / "radish_demo"
RADISH_MAIN = "import sys; from radish.main import main; sys.exit(main())"


@dataclass
class RadishRun:
    cucumber_json: Path
    exit_code: int
    output: str


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> RadishRun:
    """radish on radish_demo/demo.feature: 4 scenarios, one of them failing."""
    out = tmp_path_factory.mktemp("radish-demo") / "cucumber.json"
    command = [sys.executable, "-c", RADISH_MAIN, str(DEMO / "demo.feature")]
    command += ["-b", str(DEMO), "--cucumber-json", str(out), "--no-ansi"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO)
    return RadishRun(out, done.returncode, done.stdout + done.stderr)
