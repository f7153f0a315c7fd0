"""The benchmark plot: accuracy against training time beside the benchmark's JSON."""

from __future__ import annotations

import json

import pytest
from matplotlib import image

from kfkit.errors import KfkitError
from kfkit.report import benchmark


def document() -> dict:
    def evals(rate: float) -> list[dict]:
        return [
            {"samples": s, "train_seconds": s / rate, "accuracy": 0.93 + s / 1e6, "loss": 30 / s}
            for s in range(6000, 60001, 6000)
        ]

    return {
        "measured_at": "2026-12-01T23:00:00Z",
        "machine": {"cpus": 2},
        "runs": [
            {
                "run": "pytorch-fast-1",
                "world_size": 1,
                "time_to_target_s": 12.0,
                "evals": evals(2000),
            },
            {
                "run": "pytorch-fast-2",
                "world_size": 2,
                "time_to_target_s": 7.0,
                "evals": evals(3800),
            },
            {"run": "tf-ps-2", "world_size": 2, "error": "no metrics"},
        ],
    }


def test_png_and_html_beside_the_json(tmp_path):
    out = tmp_path / "time_to_accuracy.json"
    out.write_text(json.dumps(document()))
    png, html = benchmark.write_plots(out)
    assert png == tmp_path / "time_to_accuracy.png"
    height, width = image.imread(png).shape[:2]
    assert (width, height) == (1100, 418)
    page = html.read_text()
    assert 'src="data:image/png;base64,' in page  # one file, works offline
    # Every run is listed, also the one without evaluations (it is not drawn).
    assert [run in page for run in ("pytorch-fast-1", "pytorch-fast-2", "tf-ps-2")] == [True] * 3


def test_nothing_to_draw_still_writes_the_table(tmp_path):
    out = tmp_path / "b.json"
    out.write_text(json.dumps({"runs": [{"run": "tf-ps-2", "evals": [{"train_seconds": 1}]}]}))
    png, html = benchmark.write_plots(out)
    assert png is None and not (tmp_path / "b.png").exists()
    assert "tf-ps-2" in html.read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [("{", "invalid JSON"), ('{"runs": 3}', "runs: expected the list of benchmark runs")],
)
def test_bad_json_is_one_line(tmp_path, content, message):
    out = tmp_path / "b.json"
    out.write_text(content)
    with pytest.raises(KfkitError, match=message):
        benchmark.write_plots(out)
    assert benchmark.main([str(out)]) == 2
