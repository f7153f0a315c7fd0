"""Every step of every feature (@full and @cluster ones too, which CI does not run) matches
exactly one step definition of stepfile.py, with arguments of the right types."""

from __future__ import annotations

import importlib.util

import pytest
from parse import Parser
from radish.core import Core
from radish.customtyperegistry import CustomTypeRegistry
from radish.scenariooutline import ScenarioOutline
from radish.stepregistry import StepRegistry

from .conftest import REPO


@pytest.fixture(scope="module")
def patterns() -> list[str]:
    registry = StepRegistry()
    registry.clear()
    spec = importlib.util.spec_from_file_location("kfkit_stepfile", REPO / "stepfile.py")
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    found = [p for p in registry.steps if isinstance(p, str)]
    registry.clear()
    return found


def feature_steps() -> list[tuple[str, str]]:
    core = Core()
    core.parse_features([str(p) for p in sorted((REPO / "features").glob("*.feature"))], None)
    steps = []
    for feature in core.features:
        for scenario in feature.all_scenarios:
            if isinstance(scenario, ScenarioOutline):
                continue  # its examples are in all_scenarios with the values filled in
            for step in scenario.steps:
                steps.append((f"{feature.path}:{step.line}", step.context_sensitive_sentence))
    return steps


def test_every_feature_step_has_exactly_one_definition(patterns):
    custom = CustomTypeRegistry().custom_types
    parsers = [Parser(p, custom) for p in patterns]
    steps = feature_steps()
    assert len(steps) > 50
    problems = []
    for where, sentence in steps:
        matches = [p for p in parsers if p.parse(sentence) is not None]
        if len(matches) != 1:
            problems.append(f"{where}: {sentence!r} matches {len(matches)} definitions")
    assert not problems, "\n".join(problems)
