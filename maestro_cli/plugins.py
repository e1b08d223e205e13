"""The plugin manager: built-in plugins first, then the ``maestro_cli`` entry points."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib import metadata

import pluggy

from maestro_cli import hookspecs

ENTRY_POINT_GROUP = "maestro_cli"

#: Built-in backends, registered exactly like external plugins.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "maestro_cli.backends.alignment_metrics",
    "maestro_cli.backends.dtw",
    "maestro_cli.backends.generation_metrics",
    "maestro_cli.backends.local_executor",
    "maestro_cli.backends.maestro_dataset",
    "maestro_cli.backends.miditok_tokenizer",
    "maestro_cli.backends.onsets_frames",
    "maestro_cli.backends.performance_tokenizer",
    "maestro_cli.backends.soundfont",
    "maestro_cli.backends.transcription_metrics",
    "maestro_cli.backends.transformer",
)


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded, and why."""

    name: str
    reason: str


pm = pluggy.PluginManager("maestro_cli")
pm.add_hookspecs(hookspecs)
failures: list[PluginFailure] = []
_versions: dict[str, str] = {}
_loaded = False


def disabled_plugins() -> set[str]:
    """Names listed in ``MAESTRO_DISABLE_PLUGINS`` (comma-separated)."""
    raw = os.environ.get("MAESTRO_DISABLE_PLUGINS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def load_plugins() -> pluggy.PluginManager:
    """Register built-ins and installed plugins once; failures are recorded, never raised."""
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    blocked = disabled_plugins()
    for module_name in DEFAULT_PLUGINS:
        short = module_name.rsplit(".", 1)[-1]
        if short in blocked or module_name in blocked:
            pm.set_blocked(module_name)
            continue
        try:
            pm.register(importlib.import_module(module_name), name=module_name)
        except Exception as exc:  # a broken built-in must not break the CLI
            failures.append(PluginFailure(module_name, f"{type(exc).__name__}: {exc}"))
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in blocked or pm.get_plugin(entry_point.name) is not None:
            continue
        try:
            pm.register(entry_point.load(), name=entry_point.name)
            _versions[entry_point.name] = entry_point.dist.version if entry_point.dist else "unknown"
        except Exception as exc:
            failures.append(PluginFailure(entry_point.name, f"{type(exc).__name__}: {exc}"))
    return pm


def plugin_version(name: str) -> str | None:
    """The distribution version of a registered plugin (the core's for built-ins)."""
    if name.startswith("maestro_cli."):
        from maestro_cli import __version__

        return __version__
    return _versions.get(name)


def plugin_names() -> list[str]:
    """Names of the registered plugins, built-ins first."""
    return [name for name, _ in pm.list_name_plugin()]
