"""What steps attach to the cucumber JSON besides pass/fail: measurements, jobs, events, failures.

A report that only says "the test accuracy is at least 0.9662 — passed" hides
what the platform achieved. So every assertion step attaches its measured
value with the threshold it was held to, and the steps that run jobs attach
where each job's logs are and how it ended. Each record travels as two
cucumber embeddings:

- ``text/plain``: one human line (``test accuracy 0.9872 >= 0.9662``), which
  every cucumber consumer (cucumber-html-reporter, Jenkins' cucumber plugin)
  shows under the step;
- a kfkit JSON type (:data:`MEASUREMENT_MIME` and friends, base64 like any
  embedding), which :mod:`kfkit.report.html` and :mod:`kfkit.report.junit` read
  back to build the results table, ``results.json``, chart threshold lines and
  kill/resume markers.

Writers take a radish step (anything with ``embed(data, mime_type=...)``);
readers take a step of the cucumber JSON. Broken embeddings are skipped, never
fatal: a report must render whatever a run left behind.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

MEASUREMENT_MIME = "application/vnd.kfkit.measurement+json"
JOB_MIME = "application/vnd.kfkit.job+json"
EVENT_MIME = "application/vnd.kfkit.event+json"
FAILURE_MIME = "application/vnd.kfkit.failure+json"
TEXT_MIME = "text/plain"

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}

# What the paper (the 2021 setup in the README) reported for the metrics the features assert.
PAPER_VALUES = {"test accuracy": 0.9662, "validation cross-entropy": 2.277}


class Embeds(Protocol):
    """A radish step, as far as attaching goes."""

    def embed(self, data: str, mime_type: str = ..., encode_data_to_base64: bool = ...) -> None: ...


def format_value(value: float | None, unit: str = "") -> str:
    """0.9872 for fractions, 2.277, 12 for counts, 41.2 for seconds; ``none`` when not measured."""
    if value is None or not math.isfinite(value):
        return "none"
    if unit == "s" and not float(value).is_integer():
        return f"{value:.1f}"
    if float(value).is_integer():
        return str(int(value))
    if abs(value) < 1:
        return f"{value:.4f}"
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"


@dataclass
class Measurement:
    """One measured value against the threshold an assertion step holds it to."""

    metric: str
    value: float | None
    comparison: str
    threshold: float
    unit: str = ""
    job: str | None = None
    world_size: int | None = None
    paper_value: float | None = None

    def __post_init__(self) -> None:
        if self.comparison not in COMPARISONS:
            raise ValueError(f"comparison must be one of {', '.join(COMPARISONS)}")
        if self.paper_value is None:
            self.paper_value = PAPER_VALUES.get(self.metric)

    @property
    def passed(self) -> bool:
        if self.value is None or not math.isfinite(self.value):
            return False
        return COMPARISONS[self.comparison](self.value, self.threshold)

    def _quantity(self, value: float | None) -> str:
        return format_value(value, self.unit) + (f" {self.unit}" if self.unit else "")

    def text(self) -> str:
        """``test accuracy 0.9872 >= 0.9662``, or ``..., required >= 0.9662`` when it failed."""
        value, threshold = self._quantity(self.value), self._quantity(self.threshold)
        if self.passed:
            line = f"{self.metric} {value} {self.comparison} {threshold}"
        else:
            line = f"{self.metric} {value}, required {self.comparison} {threshold}"
        return f"{line} ({self.job})" if self.job else line

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "text": self.text()}


@dataclass
class JobRecord:
    """How a job of a step ended and where its files are (paths relative to the report)."""

    job: str
    kind: str
    phase: str
    world_size: int | None = None
    seconds: float | None = None
    logs: dict[str, str] = field(default_factory=dict)
    log_tails: dict[str, list[str]] = field(default_factory=dict)
    failed_replicas: list[str] = field(default_factory=list)

    def text(self) -> str:
        took = f" after {self.seconds:.1f} s" if self.seconds is not None else ""
        failed = f"; failed: {', '.join(self.failed_replicas)}" if self.failed_replicas else ""
        return f"job {self.job} ({self.kind}): {self.phase}{took}{failed}"


@dataclass
class Event:
    """Something a step did to a job that its curves should show (a kill, a resume)."""

    job: str
    kind: str  # "kill", "restart" or "resume"
    label: str
    samples: float | None = None
    step: int | None = None

    def text(self) -> str:
        return self.label


def _embed(step: Embeds, mime_type: str, record: dict[str, Any], text: str | None) -> None:
    if text:
        step.embed(text, mime_type=TEXT_MIME)
    step.embed(json.dumps(record, sort_keys=True), mime_type=mime_type)


def attach_measurement(step: Embeds, measurement: Measurement) -> Measurement:
    _embed(step, MEASUREMENT_MIME, measurement.as_dict(), measurement.text())
    return measurement


def attach_job(step: Embeds, record: JobRecord) -> None:
    _embed(step, JOB_MIME, asdict(record), record.text())


def attach_event(step: Embeds, event: Event) -> None:
    _embed(step, EVENT_MIME, asdict(event), event.text())


def attach_failure(step: Any) -> None:
    """After a failed radish step: the exception's type, location and traceback.

    radish writes only the exception's message into the cucumber JSON; this
    keeps the rest. The traceback goes as plain text too, so cucumber tools
    show it under the step.
    """
    failure = getattr(step, "failure", None)
    if failure is None:
        return
    record = {
        "type": str(getattr(failure, "name", "") or "Error"),
        "message": str(getattr(failure, "reason", "") or ""),
        "traceback": str(getattr(failure, "traceback", "") or ""),
        "location": f"{getattr(failure, 'filename', '?')}:{getattr(failure, 'line', '?')}",
    }
    _embed(step, FAILURE_MIME, record, record["traceback"] or None)


def name_example_row(scenario: Any) -> None:
    """Name a Scenario Outline's row by its example values, not radish's "- row 0".

    Called before each scenario; ``Sums from a table - row 1`` becomes
    ``Sums from a table (a=5, b=5, sum=10)`` in radish's output, the cucumber
    JSON and so in every report.
    """
    example: Any = getattr(scenario, "example", None)
    outline: Any = getattr(scenario, "parent", None)
    header = getattr(outline, "examples_header", None)
    if example is None or outline is None or not header:
        return
    values = ", ".join(f"{k}={v}" for k, v in zip(header, example.data, strict=False))
    scenario.sentence = f"{outline.sentence} ({values})"


# --- reading them back from the cucumber JSON ----------------------------------------------


def _payloads(step: dict[str, Any], mime_type: str) -> list[dict[str, Any]]:
    found = []
    for embedding in step.get("embeddings") or []:
        if embedding.get("mime_type") != mime_type:
            continue
        try:
            payload = json.loads(base64.b64decode(embedding.get("data") or "", validate=True))
        except (binascii.Error, ValueError):
            continue
        if isinstance(payload, dict):
            found.append(payload)
    return found


def step_texts(step: dict[str, Any]) -> list[str]:
    """The plain-text embeddings of a step (what cucumber tools show under it)."""
    texts = []
    for embedding in step.get("embeddings") or []:
        if embedding.get("mime_type") == TEXT_MIME:
            try:
                texts.append(
                    base64.b64decode(embedding.get("data") or "").decode("utf-8", "replace")
                )
            except (binascii.Error, ValueError):
                continue
    return texts


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def step_measurements(step: dict[str, Any]) -> list[Measurement]:
    found = []
    for payload in _payloads(step, MEASUREMENT_MIME):
        threshold = _number(payload.get("threshold"))
        if threshold is None or payload.get("comparison") not in COMPARISONS:
            continue
        world_size = payload.get("world_size")
        found.append(
            Measurement(
                metric=str(payload.get("metric") or "value"),
                value=_number(payload.get("value")),
                comparison=str(payload["comparison"]),
                threshold=threshold,
                unit=str(payload.get("unit") or ""),
                job=str(payload["job"]) if payload.get("job") else None,
                world_size=world_size if isinstance(world_size, int) else None,
                paper_value=_number(payload.get("paper_value")),
            )
        )
    return found


def step_jobs(step: dict[str, Any]) -> list[JobRecord]:
    found = []
    for payload in _payloads(step, JOB_MIME):
        if not payload.get("job"):
            continue
        logs: dict[str, Any] = payload["logs"] if isinstance(payload.get("logs"), dict) else {}
        tails: dict[str, Any] = (
            payload["log_tails"] if isinstance(payload.get("log_tails"), dict) else {}
        )
        found.append(
            JobRecord(
                job=str(payload["job"]),
                kind=str(payload.get("kind") or ""),
                phase=str(payload.get("phase") or ""),
                world_size=payload.get("world_size")
                if isinstance(payload.get("world_size"), int)
                else None,
                seconds=_number(payload.get("seconds")),
                logs={str(k): str(v) for k, v in logs.items()},
                log_tails={
                    str(k): [str(x) for x in v] for k, v in tails.items() if isinstance(v, list)
                },
                failed_replicas=[str(r) for r in payload.get("failed_replicas") or []],
            )
        )
    return found


def step_events(step: dict[str, Any]) -> list[Event]:
    found = []
    for payload in _payloads(step, EVENT_MIME):
        if not payload.get("job") or payload.get("kind") not in ("kill", "restart", "resume"):
            continue
        step_number = payload.get("step")
        found.append(
            Event(
                job=str(payload["job"]),
                kind=str(payload["kind"]),
                label=str(payload.get("label") or payload["kind"]),
                samples=_number(payload.get("samples")),
                step=step_number if isinstance(step_number, int) else None,
            )
        )
    return found


def step_failure(step: dict[str, Any]) -> dict[str, str] | None:
    for payload in _payloads(step, FAILURE_MIME):
        return {
            key: str(payload.get(key) or "") for key in ("type", "message", "traceback", "location")
        }
    return None
