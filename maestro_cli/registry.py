"""Per-stage registries of backends, and ``-O key=value`` options validated against dataclasses."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

from maestro_cli.errors import NoBackendError, UsageError
from maestro_cli.plugins import load_plugins

#: stage name -> hook name
STAGE_HOOKS = {
    "dataset": "register_datasets",
    "tokenizer": "register_tokenizers",
    "generator": "register_generators",
    "renderer": "register_renderers",
    "transcriber": "register_transcribers",
    "aligner": "register_aligners",
    "metric": "register_metrics",
    "executor": "register_executors",
}


@dataclass(frozen=True)
class Backend:
    """One registered backend of a stage."""

    name: str
    factory: Callable[..., Any]
    options: type | None = None
    aliases: tuple[str, ...] = ()
    description: str = ""
    priority: int = 0
    plugin: str = ""

    def create(self, raw_options: list[str] | dict[str, Any] | None = None) -> Any:
        """Build the backend object with validated options."""
        return self.factory(parse_options(self, raw_options or []))


@dataclass
class Registry:
    """The backends of one stage, by name and alias."""

    stage: str
    backends: list[Backend] = field(default_factory=list)

    def names(self) -> list[str]:
        return [backend.name for backend in self.backends]

    def get(self, name: str | None = None) -> Backend:
        """The backend called ``name`` (or alias); the default one when ``name`` is None."""
        if not self.backends:
            raise NoBackendError(self.stage)
        if name is None:
            return max(self.backends, key=lambda backend: backend.priority)
        for backend in self.backends:
            if name == backend.name or name in backend.aliases:
                return backend
        raise UsageError(f"unknown {self.stage} backend '{name}'; installed: {', '.join(self.names())}")


_registries: dict[str, Registry] = {}


def get_registry(stage: str) -> Registry:
    """Collect the backends every plugin registers for ``stage`` (cached)."""
    if stage in _registries:
        return _registries[stage]
    pm = load_plugins()
    registry = Registry(stage)
    hook = getattr(pm.hook, STAGE_HOOKS[stage])
    for impl in reversed(hook.get_hookimpls()):  # registration order: built-ins first

        def register(name: str, factory: Callable[..., Any], options: type | None = None,
                     aliases: tuple[str, ...] = (), description: str = "", priority: int = 0,
                     _plugin: str = impl.plugin_name) -> None:
            registry.backends.append(Backend(name, factory, options, tuple(aliases), description, priority, _plugin))

        impl.function(register=register)
    _registries[stage] = registry
    return registry


def get_backend(stage: str, name: str | None = None) -> Backend:
    """Shortcut for ``get_registry(stage).get(name)``."""
    return get_registry(stage).get(name)


def create_backend(stage: str, name: str | None, options: list[str] | dict[str, Any] | None = None) -> Any:
    """Build a stage's backend by name: picklable as ``functools.partial`` (batch workers build their own)."""
    return get_backend(stage, name).create(options)


def _coerce(value: str, annotation: Any, key: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        if value not in [str(choice) for choice in choices]:
            raise ValueError(f"expected one of {', '.join(map(str, choices))}")
        return next(choice for choice in choices if str(choice) == value)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if value.lower() in ("none", "null", ""):
            return None
        return _coerce(value, args[0], key)
    if annotation is bool:
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true or false")
    if annotation in (int, float, str):
        return annotation(value)
    return value


def parse_options(backend: Backend, raw: list[str] | dict[str, Any]) -> Any:
    """Turn ``["key=value", ...]`` (or a dict) into the backend's options dataclass."""
    if backend.options is None:
        if raw:
            raise UsageError(f"backend '{backend.name}' takes no -O options")
        return None
    return parse_dataclass(backend.options, raw, backend.name)


def parse_dataclass(cls: type, raw: list[str] | dict[str, Any], owner: str) -> Any:
    """Build dataclass ``cls`` from ``["key=value", ...]`` (or a dict) with type coercion.

    Unknown keys and values of the wrong type raise :class:`UsageError` listing the valid keys.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    valid = ", ".join(f"{name} ({getattr(hints[name], '__name__', hints[name])})" for name in fields)
    values: dict[str, Any] = {}
    items = raw.items() if isinstance(raw, dict) else [_split(item) for item in raw]
    for key, value in items:
        key = key.replace("-", "_")
        if key not in fields:
            raise UsageError(f"unknown option '{key}' for backend '{owner}'; valid options: {valid}")
        try:
            values[key] = _coerce(value, hints[key], key) if isinstance(value, str) else value
        except ValueError as exc:
            raise UsageError(f"bad value '{value}' for option '{key}' of backend '{owner}': {exc}") from None
    return cls(**values)


def _split(item: str) -> tuple[str, str]:
    if "=" not in item:
        raise UsageError(f"option '{item}' must look like key=value")
    key, value = item.split("=", 1)
    return key.strip(), value.strip()
