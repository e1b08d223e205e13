"""Option parsing against backend dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import pytest

from maestro_cli.errors import NoBackendError, UsageError
from maestro_cli.registry import Backend, Registry, parse_options


@dataclass
class Opts:
    threshold: float = 0.5
    steps: int = 10
    fast: bool = False
    mode: Literal["a", "b"] = "a"
    name: Optional[str] = None


BACKEND = Backend("demo", lambda options: options, Opts)


def test_values_are_coerced_to_field_types():
    options = parse_options(BACKEND, ["threshold=0.25", "steps=3", "fast=yes", "mode=b", "name=x"])
    assert options == Opts(0.25, 3, True, "b", "x")


@pytest.mark.parametrize("raw, message", [
    (["nope=1"], "unknown option 'nope' for backend 'demo'; valid options: threshold (float), steps (int)"),
    (["steps=many"], "bad value 'many' for option 'steps' of backend 'demo'"),
    (["mode=c"], "expected one of a, b"),
    (["fast=maybe"], "expected true or false"),
    (["threshold"], "option 'threshold' must look like key=value"),
])
def test_bad_options_raise_usage_errors(raw, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_options(BACKEND, raw)


def test_default_is_highest_priority_and_aliases_resolve():
    registry = Registry("renderer", [Backend("low", dict, priority=1),
                                     Backend("high", dict, aliases=("h",), priority=5)])
    assert registry.get().name == "high"
    assert registry.get("h").name == "high"
    with pytest.raises(UsageError, match="installed: low, high"):
        registry.get("other")
    with pytest.raises(NoBackendError, match="no backend installed for stage 'aligner'"):
        Registry("aligner").get()
