"""Command ``plugins``: what is installed and which backends each plugin registers."""

from __future__ import annotations

from maestro_cli.cli.io import emit
from maestro_cli.cli.options import JSON


def describe() -> list[dict]:
    """One record per plugin (failed ones included) with its backends per stage and the stages whose default
    backend (the highest priority) it provides."""
    from maestro_cli import plugins as manager
    from maestro_cli.registry import STAGE_HOOKS, get_registry

    manager.load_plugins()
    records: dict[str, dict] = {
        name: {"name": name, "version": manager.plugin_version(name), "status": "ok",
               "builtin": name in manager.DEFAULT_PLUGINS, "backends": {}, "defaults": {}}
        for name in manager.plugin_names()
    }
    for stage in STAGE_HOOKS:
        registry = get_registry(stage)
        for backend in registry.backends:
            records[backend.plugin]["backends"].setdefault(stage, []).append(backend.name)
        if registry.backends and stage != "metric":  # metric sets are chosen by name, not by priority
            default = registry.get()
            records[default.plugin]["defaults"][stage] = default.name
    for failure in manager.failures:
        records[failure.name] = {"name": failure.name, "version": None, "status": "failed",
                                 "builtin": failure.name in manager.DEFAULT_PLUGINS, "error": failure.reason,
                                 "backends": {}, "defaults": {}}
    return list(records.values())


def command(as_json: bool = JSON) -> None:
    """List installed plugins, their versions and the backends they register per stage."""
    records = describe()
    if as_json:
        for record in records:
            emit(record, as_json=True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table()
    table.add_column("plugin", no_wrap=True)
    for label in ("version", "status", "backends"):
        table.add_column(label)
    for record in records:
        backends = "; ".join(f"{stage}: " + ", ".join(f"{name} (default)" if record["defaults"].get(stage) == name
                                                      else name for name in names)
                             for stage, names in record["backends"].items())
        name = f"{record['name'].rsplit('.', 1)[-1]} (built-in)" if record["builtin"] else record["name"]
        table.add_row(name, record["version"] or "", record["status"], backends or record.get("error", ""))
    Console().print(table)
