"""README.md's commands run as written, from a checkout elsewhere (under the temp dir).

Every ```bash and ```python block runs, in order, in a copy of the checkout's
layout under a temporary directory (its entries linked, ``.venv`` pointing at
this interpreter's environment) with a private ``$KFKIT_HOME``. The README is
read as one shell session: once a block has run ``source .venv/bin/activate``,
later blocks run with the venv active. A block that
needs a cluster, runs for long, or holds placeholders says so just above it
with ``<!-- docs-test: skip: WHY -->``, and is skipped with that reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
SKIP = re.compile(r"^<!-- docs-test: skip: (?P<why>.+?) -->$")
FENCE = re.compile(r"^```(?P<lang>\w*)$")
RUNNABLE = {"bash": ["bash", "-euo", "pipefail", "-c"], "python": [sys.executable, "-c"]}

pytestmark = pytest.mark.integration


ACTIVATE = "source .venv/bin/activate"


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    code: str
    skip: str | None
    activated: bool  # an earlier block activated the venv

    def __str__(self) -> str:
        return f"README.md:{self.line}:{self.lang}"


def blocks(text: str) -> list[Block]:
    """The runnable code blocks of ``text`` and their skip reasons."""
    found: list[Block] = []
    activated = False
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        fence = FENCE.match(lines[number])
        if not fence:
            number += 1
            continue
        end = next(i for i in range(number + 1, len(lines)) if lines[i] == "```")
        previous = next((lines[i] for i in range(number - 1, -1, -1) if lines[i].strip()), "")
        marker = SKIP.match(previous)
        if fence["lang"] in RUNNABLE:
            code = "\n".join(lines[number + 1 : end]) + "\n"
            why = marker["why"] if marker else None
            found.append(Block(number + 1, fence["lang"], code, why, activated))
            activated = activated or ACTIVATE in code
        number = end + 1
    return found


README_BLOCKS = blocks(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkout's entries, linked from a directory under the temp dir, with ``.venv``."""
    where = tmp_path_factory.mktemp("readme-checkout")
    for entry in REPO.iterdir():
        if entry.name not in (".git", ".venv", "reports", ".cache"):
            (where / entry.name).symlink_to(entry)
    (where / ".venv").symlink_to(Path(sys.prefix))
    return where


def test_the_readme_has_blocks_that_run_and_say_why_others_do_not() -> None:
    assert any(b.skip is None and "kfkit run" in b.code for b in README_BLOCKS)
    assert all(b.skip for b in README_BLOCKS if "--backend kubernetes" in b.code)
    assert all(b.skip for b in README_BLOCKS if "make demo" in b.code)


@pytest.mark.parametrize("block", README_BLOCKS, ids=str)
def test_readme_block_runs_as_written(block: Block, checkout: Path, tmp_path: Path) -> None:
    if block.skip:
        pytest.skip(f"{block}: {block.skip}")
    env = {**os.environ, "KFKIT_HOME": str(tmp_path / "kfkit-home")}
    env.pop("FORCE_COLOR", None)
    code = f"{ACTIVATE}\n{block.code}" if block.activated and block.lang == "bash" else block.code
    done = subprocess.run(
        [*RUNNABLE[block.lang], code],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{block} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
