"""Read job manifests from files and directories: load -> check -> admit -> default.

The order is the cluster's: the CRD schema (with the API server's pruning of
nulls), the API server's rules for names and paths, then the operator's
validating webhook on the manifest *as submitted*, then the controller's defaults.

Every document of every file is checked before any job is returned, and all
problems are reported together, each prefixed with the file it came from, so a
typo in the third document stops the first one from starting.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kfkit.errors import ValidationError
from kfkit.jobs import names
from kfkit.jobs.defaults import apply_defaults
from kfkit.jobs.model import API_VERSION, KINDS, Job
from kfkit.jobs.schema import check_job
from kfkit.jobs.webhook import advisories, validate

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass
class Document:
    """One YAML document and where it came from."""

    source: str
    index: int
    body: Any


def manifest_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories (recursively) into their manifest files, sorted."""
    files: list[Path] = []
    problems: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found: list[Path] = []
            # os.walk does not follow links to directories, so a link loop cannot hang it.
            for directory, _, names in os.walk(path):
                found += [Path(directory, n) for n in names if Path(n).suffix in MANIFEST_SUFFIXES]
            for file in sorted(found):
                if file.is_file():
                    files.append(file)
                elif file.exists() or file.is_symlink():
                    # A FIFO or a device would block or never end: refuse it, never read it.
                    problems.append(f"{file}: not a regular file")
        elif path.is_file() or str(path) == "-":
            files.append(path)
        elif path.exists():
            problems.append(f"{path}: not a regular file")
        else:
            problems.append(f"{path}: no such file or directory")
    if problems:
        raise ValidationError(problems)
    return files


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping.

    PyYAML keeps the last value silently; kubectl's strict field validation
    refuses the object, and a duplicated key is nearly always a mistake.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep)


def read_documents(path: Path) -> Iterator[Document]:
    """Yield the non-empty YAML documents of one file (``-`` reads stdin)."""
    import sys

    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValidationError([f"{path}: cannot read: {error}"]) from None
    try:
        for index, body in enumerate(yaml.load_all(text, Loader=_StrictLoader)):
            if body is not None:
                yield Document(str(path), index, body)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValidationError([f"{path}: {where}invalid YAML: {problem}"]) from None


def is_job_document(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("kind"), str) and body["kind"] in KINDS


def _job_problems(document: Document) -> tuple[Job | None, list[str]]:
    """Check, admit and default one document; return the job or its problems."""
    body = document.body
    if not isinstance(body, dict):
        return None, ["document is not a mapping"]
    kind = body.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        return None, [f"kind: {kind!r} is not a training job (expected one of {', '.join(KINDS)})"]
    if body.get("apiVersion") != API_VERSION:
        return None, [f"apiVersion: must be {API_VERSION}, got {body.get('apiVersion')!r}"]
    problems: list[str] = []
    body = names.drop_nulls(body, problems)
    if problems:
        return None, problems
    problems = check_job(body, f"{kind}Spec")
    if problems:
        return None, problems
    problems = names.job_problems(body, KINDS[kind].replica_specs_key)
    if problems:
        return None, problems
    admission = validate(body)
    if not admission.allowed:
        return None, [str(error) for error in admission.errors]
    manifest = apply_defaults(body)
    warnings = admission.warnings + advisories(manifest)
    return Job(manifest=manifest, source=document.source, warnings=warnings, submitted=body), []


def load_manifest(body: Any, source: str = "<manifest>") -> Job:
    """Check, admit and default one manifest dict (from code rather than a file)."""
    job, problems = _job_problems(Document(source, 0, body))
    if job is None:
        raise ValidationError(f"{source}: {problem}" for problem in problems)
    return job


def _where(document: Document) -> str:
    return document.source if document.index == 0 else f"{document.source}[{document.index}]"


def _in_namespace(body: Any, namespace: str | None) -> Any:
    """The document moved to ``namespace`` (``kfkit run -n``), before it is checked."""
    if namespace is None or not isinstance(body, dict):
        return body
    metadata = body.get("metadata")
    return {
        **body,
        "metadata": {**(metadata if isinstance(metadata, dict) else {}), "namespace": namespace},
    }


def load_jobs(
    paths: Iterable[str | Path], skip_other_kinds: bool = False, namespace: str | None = None
) -> list[Job]:
    """Load every job in ``paths``; raise ``ValidationError`` listing all problems.

    With ``skip_other_kinds`` documents that are not PyTorchJob/TFJob (a PVC
    next to the job, say) are ignored instead of reported. ``namespace``
    replaces every job's namespace and is checked like one written in the file.
    """
    jobs: list[Job] = []
    problems: list[str] = []
    seen: dict[tuple[str, str, str], str] = {}
    for path in manifest_files(paths):
        try:
            documents = list(read_documents(path))
        except ValidationError as error:
            problems += error.problems
            continue
        for document in documents:
            if skip_other_kinds and not is_job_document(document.body):
                continue
            document.body = _in_namespace(document.body, namespace)
            job, job_problems = _job_problems(document)
            problems += [f"{_where(document)}: {problem}" for problem in job_problems]
            if job is None:
                continue
            key = (job.kind, job.namespace, job.name)
            if key in seen:
                problems.append(
                    f"{_where(document)}: metadata.name: {job.describe()} is also defined in "
                    f"{seen[key]}"
                )
                continue
            seen[key] = _where(document)
            jobs.append(job)
    if problems:
        raise ValidationError(problems)
    if not jobs:
        raise ValidationError([f"{', '.join(map(str, paths))}: no PyTorchJob or TFJob found"])
    return jobs
