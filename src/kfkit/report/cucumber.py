"""Cucumber JSON: read radish's output, bring it to the cucumber shape, merge, count.

radish 0.18.4 writes cucumber JSON that differs from what cucumber report tools
(cucumber-html-reporter, Jenkins' cucumber plugin) expect in two ways: a step's
``keyword`` lacks its trailing space while its ``name`` repeats the keyword
("Given a job"), and a scenario does not list the tags it inherits from its
feature. :func:`normalize` fixes both, so every consumer, ours included, reads
one shape: keyword ``"Given "``, name ``"a job"``, durations in nanoseconds.

Steps attach a job's training metrics as a cucumber embedding with the MIME
type :data:`METRICS_MIME`; it travels with the JSON through pipeline merges
and :func:`step_metrics` reads it back for the HTML report's plots.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfkit.errors import KfkitError

Feature = dict[str, Any]

PASSED, FAILED, SKIPPED, PENDING, UNDEFINED = "passed", "failed", "skipped", "pending", "undefined"
STEP_STATUSES = (PASSED, FAILED, SKIPPED, PENDING, UNDEFINED)
METRICS_MIME = "application/vnd.kfkit.metrics+json"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unnamed"


def _split_keyword(step: dict[str, Any]) -> tuple[str, str]:
    """``("Given ", "a job")`` from radish's ``keyword="Given", name="Given a job"``."""
    keyword = str(step.get("keyword") or "").strip()
    name = str(step.get("name") or "")
    if keyword and name.startswith(keyword + " "):
        name = name[len(keyword) + 1 :]
    return (keyword + " ") if keyword else "", name


def _normalize_step(step: dict[str, Any]) -> dict[str, Any]:
    keyword, name = _split_keyword(step)
    result = dict(step.get("result") or {})
    status = str(result.get("status") or PENDING)
    result["status"] = status if status in STEP_STATUSES else PENDING
    result["duration"] = int(result.get("duration") or 0)
    normalized = {**step, "keyword": keyword, "name": name, "result": result}
    normalized["line"] = int(step.get("line") or 0)
    return normalized


def _normalize_scenario(scenario: dict[str, Any], feature: Feature) -> dict[str, Any]:
    tags = list(feature.get("tags") or [])
    known = {tag["name"] for tag in tags}
    tags += [tag for tag in scenario.get("tags") or [] if tag["name"] not in known]
    normalized = {**scenario, "tags": tags}
    normalized["id"] = f"{_slug(feature['name'])};{_slug(str(scenario.get('name') or ''))}"
    normalized["steps"] = [_normalize_step(step) for step in scenario.get("steps") or []]
    normalized.setdefault("type", "scenario")
    normalized.setdefault("description", "")
    return normalized


def normalize(features: list[Feature]) -> list[Feature]:
    """Return a cucumber-shaped deep copy of radish's (or already normalized) JSON.

    Normalizing twice gives the same result, so merged reports can be
    normalized again safely.
    """
    out: list[Feature] = []
    for raw in copy.deepcopy(features):
        feature = {**raw, "tags": list(raw.get("tags") or [])}
        feature["name"] = str(feature.get("name") or "")
        feature["id"] = _slug(feature["name"])
        feature.setdefault("keyword", "Feature")
        feature.setdefault("description", "")
        feature["elements"] = [
            _normalize_scenario(scenario, feature) for scenario in raw.get("elements") or []
        ]
        out.append(feature)
    return out


def _check_shape(data: Any, source: str) -> list[Feature]:
    if not isinstance(data, list):
        raise KfkitError(f"{source}: not a cucumber JSON report (expected a list of features)")
    for index, feature in enumerate(data):
        if not isinstance(feature, dict) or not isinstance(feature.get("elements", []), list):
            raise KfkitError(f"{source}: [{index}]: not a cucumber feature")
    return data


def load(path: str | Path) -> list[Feature]:
    """Read and normalize one cucumber JSON file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise KfkitError(f"{path}: cannot read: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise KfkitError(f"{path}: invalid JSON: {error.msg} (line {error.lineno})") from None
    return normalize(_check_shape(data, str(path)))


def merge(reports: Iterable[list[Feature]]) -> list[Feature]:
    """One report from many: features with the same ``uri`` get their scenarios joined.

    Each pipeline task runs one group of feature files, so usually this is a
    plain concatenation; joining by uri keeps a feature whole when two runs
    each ran part of it (for example with different tags).
    """
    merged: dict[str, Feature] = {}
    for report in reports:
        for feature in normalize(report):
            key = str(feature.get("uri") or feature["name"])
            if key in merged:
                merged[key]["elements"].extend(feature["elements"])
            else:
                merged[key] = feature
    return list(merged.values())


def scenarios(features: list[Feature]) -> Iterator[tuple[Feature, dict[str, Any]]]:
    for feature in features:
        for scenario in feature.get("elements") or []:
            if scenario.get("type", "scenario") == "scenario":
                yield feature, scenario


def scenario_status(scenario: dict[str, Any]) -> str:
    """failed if a step failed, passed if every step passed, skipped otherwise."""
    statuses = [step["result"]["status"] for step in scenario.get("steps") or []]
    if FAILED in statuses:
        return FAILED
    if statuses and all(status == PASSED for status in statuses):
        return PASSED
    return SKIPPED


def feature_status(feature: Feature) -> str:
    statuses = [scenario_status(s) for s in feature.get("elements") or []]
    if FAILED in statuses:
        return FAILED
    if statuses and all(status == PASSED for status in statuses):
        return PASSED
    return SKIPPED


def scenario_error(scenario: dict[str, Any]) -> str | None:
    """The error message of the first failed step, if any."""
    for step in scenario.get("steps") or []:
        if step["result"]["status"] == FAILED:
            return str(step["result"].get("error_message") or "failed")
    return None


def scenario_duration_ns(scenario: dict[str, Any]) -> int:
    return sum(int(step["result"].get("duration") or 0) for step in scenario.get("steps") or [])


@dataclass
class Counts:
    """passed/failed/skipped of one kind of thing; pending and undefined count as skipped."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0

    def add(self, status: str) -> None:
        if status == PASSED:
            self.passed += 1
        elif status == FAILED:
            self.failed += 1
        else:
            self.skipped += 1

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped


@dataclass
class Summary:
    """What a run did, counted the way radish prints it at the end."""

    features: Counts = field(default_factory=Counts)
    scenarios: Counts = field(default_factory=Counts)
    steps: Counts = field(default_factory=Counts)
    duration_ns: int = 0

    @property
    def ok(self) -> bool:
        """True when something ran and nothing failed."""
        return self.scenarios.total > 0 and self.scenarios.failed == 0

    def lines(self) -> list[str]:
        def line(name: str, counts: Counts) -> str:
            return (
                f"{counts.total} {name} ({counts.passed} passed, {counts.failed} failed, "
                f"{counts.skipped} skipped)"
            )

        return [
            line("features", self.features),
            line("scenarios", self.scenarios),
            line("steps", self.steps),
        ]

    def as_dict(self) -> dict[str, Any]:
        def counts(c: Counts) -> dict[str, int]:
            return {"total": c.total, "passed": c.passed, "failed": c.failed, "skipped": c.skipped}

        return {
            "features": counts(self.features),
            "scenarios": counts(self.scenarios),
            "steps": counts(self.steps),
            "duration_s": round(self.duration_ns / 1e9, 3),
            "ok": self.ok,
        }


def summarize(features: list[Feature]) -> Summary:
    summary = Summary()
    for feature in features:
        summary.features.add(feature_status(feature))
    for _, scenario in scenarios(features):
        summary.scenarios.add(scenario_status(scenario))
        summary.duration_ns += scenario_duration_ns(scenario)
        for step in scenario.get("steps") or []:
            summary.steps.add(step["result"]["status"])
    return summary


def metrics_embedding(job: str, metrics: dict[str, Any]) -> dict[str, str]:
    """The cucumber embedding that carries one job's metrics (base64 JSON)."""
    payload = json.dumps({"job": job, "metrics": metrics}, sort_keys=True)
    return {"mime_type": METRICS_MIME, "data": base64.b64encode(payload.encode()).decode()}


def step_metrics(step: dict[str, Any]) -> list[dict[str, Any]]:
    """Every ``{"job": ..., "metrics": ...}`` a step attached; broken ones are ignored."""
    found = []
    for embedding in step.get("embeddings") or []:
        if embedding.get("mime_type") != METRICS_MIME:
            continue
        try:
            payload = json.loads(base64.b64decode(embedding.get("data") or ""))
        except (binascii.Error, ValueError):
            continue
        if isinstance(payload, dict) and isinstance(payload.get("metrics"), dict):
            found.append(payload)
    return found
