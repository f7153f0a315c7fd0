"""The verification suite as a Kubeflow pipeline (kfp 2.17).

    feature groups ──ParallelFor──► run-feature-group (one per feature file, in parallel)
                                          │ cucumber JSON each
                                          ▼
                                    merge-reports ──► HTML report (shown in the KFP UI),
                                          │           JUnit XML, cucumber JSON, Markdown summary
                                          ▼
                                    check-verdict  (fails the run when a scenario failed)

Every component is a lightweight Python component on the kit image whose body
imports kfkit and calls its API, so ``kfkit pipeline run --local`` can run the
same pipeline with kfp.local's SubprocessRunner (no cluster, no Docker), or with its
DockerRunner in the kit image (``--runner container``).
The verdict is a task of its own because a failed task records no outputs:
the report must be written before the run is failed.

Compile with ``python pipelines/verify_pipeline.py`` (or ``kfkit pipeline
compile``); the compiled verify_pipeline.yaml is committed and a test checks
that it is up to date.
"""

# kfp reads the components' annotations at decoration time: no `from __future__ import annotations`.
import sys
from pathlib import Path
from typing import NamedTuple

from kfp import compiler, dsl
from kfp.dsl import HTML, Artifact, Input, Markdown, Output

from kfkit.containers.images import IMAGES

# The image every component runs on: kfkit installed, the suite (features/, stepfile.py,
# manifests/) under SUITE_DIR. Its name comes from the one table of the kit's images, which
# `make images` builds from dockerfiles/kit. The image ships kfp, so the components do not
# pip-install it at start (that needs an index, and kfp.local runs such components one at a
# time).
KIT_IMAGE = IMAGES["kit"].name
SUITE_DIR = "/opt/kfkit"
FEATURE_GROUPS = [
    "features/pytorch_mnist.feature",
    "features/tfjob_mnist.feature",
    "features/fault_tolerance.feature",
    "features/notebook_poddefault.feature",
    "features/container_builder.feature",
    "features/helm_configuration.feature",
]
COMPILED = Path(__file__).with_suffix(".yaml")


@dsl.component(base_image=KIT_IMAGE, install_kfp_package=False)
def run_feature_group(
    feature: str, tags: str, target: str, suite_dir: str, cucumber_json: Output[Artifact]
) -> int:
    """Run one feature file with kfkit verify; return how many of its scenarios failed.

    Failed scenarios do not fail this task: their report still has to reach
    the merge. A group with no scenario for the tags gives an empty report.
    """
    import shutil
    import tempfile
    from pathlib import Path

    from kfkit.verify import NoScenariosError, verify

    with tempfile.TemporaryDirectory() as report_dir:
        try:
            result = verify(
                [str(Path(suite_dir) / feature)],
                tags=tags or None,
                target=target,
                report_dir=report_dir,
                suite_dir=suite_dir,
            )
        except NoScenariosError as error:
            print(f"{feature}: {error}")
            Path(cucumber_json.path).write_text("[]\n", encoding="utf-8")
            return 0
        shutil.copyfile(result.reports.cucumber_json, cucumber_json.path)
        return result.reports.summary.scenarios.failed


@dsl.component(base_image=KIT_IMAGE, install_kfp_package=False)
def merge_reports(
    reports: Input[list[Artifact]],
    target: str,
    tags: str,
    html_report: Output[HTML],
    junit_xml: Output[Artifact],
    cucumber_json: Output[Artifact],
    results_json: Output[Artifact],
    summary: Output[Markdown],
) -> NamedTuple("Verdict", [("scenarios", int), ("failed", int)]):  # type: ignore[valid-type]
    """Merge the groups' cucumber JSON and write the reports the KFP UI shows."""
    import shutil
    import tempfile
    from collections import namedtuple

    from kfkit.report import collect_environment, load, merge, write_reports
    from kfkit.verify.pipeline import summary_markdown

    features = merge(load(report.path) for report in reports)
    environment = collect_environment(target=target, tags=tags, runner="Kubeflow Pipelines")
    with tempfile.TemporaryDirectory() as report_dir:
        written = write_reports(features, report_dir, environment)
        shutil.copyfile(written.html, html_report.path)
        shutil.copyfile(written.junit_xml, junit_xml.path)
        shutil.copyfile(written.cucumber_json, cucumber_json.path)
        shutil.copyfile(written.results_json, results_json.path)
    counts = written.summary
    with open(summary.path, "w", encoding="utf-8") as out:
        out.write(summary_markdown(counts))
    print("\n".join(counts.lines()))
    verdict = namedtuple("Verdict", ["scenarios", "failed"])
    return verdict(counts.scenarios.total, counts.scenarios.failed)


@dsl.component(base_image=KIT_IMAGE, install_kfp_package=False)
def check_verdict(scenarios: int, failed: int) -> None:
    """Fail the run when a scenario failed or none ran."""
    if failed:
        raise RuntimeError(f"{failed} of {scenarios} scenarios failed (see the HTML report)")
    if scenarios == 0:
        raise RuntimeError("no scenario ran: check the tags and feature groups")
    print(f"all {scenarios} scenarios passed")


@dsl.pipeline(
    name="kfkit-verify",
    description="Run the kfkit verification suite (radish) and report like cucumber.",
)
def verify_pipeline(
    tags: str = "fast",
    target: str = "kubernetes",
    suite_dir: str = SUITE_DIR,
    groups: list = FEATURE_GROUPS,
) -> None:
    with dsl.ParallelFor(groups) as group:
        run = run_feature_group(feature=group, tags=tags, target=target, suite_dir=suite_dir)
        run.set_display_name("run-feature-group")
    merged = merge_reports(
        reports=dsl.Collected(run.outputs["cucumber_json"]), target=target, tags=tags
    )
    check_verdict(scenarios=merged.outputs["scenarios"], failed=merged.outputs["failed"])


def compile_pipeline(path: str | Path = COMPILED) -> Path:
    compiler.Compiler().compile(verify_pipeline, str(path))
    return Path(path)


if __name__ == "__main__":
    print(compile_pipeline(sys.argv[1] if len(sys.argv) > 1 else COMPILED))
