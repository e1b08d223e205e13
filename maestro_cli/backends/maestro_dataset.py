"""The ``maestro`` dataset backend: fetch MAESTRO v1/v2/v3 and browse a MAESTRO root."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from maestro_cli.data.maestro import MaestroDataset, default_root, open_dataset
from maestro_cli.hookspecs import hookimpl


@dataclass
class MaestroOptions:
    """Network behaviour of ``maestro fetch`` (``-o key=value``)."""

    retries: int = 6
    backoff: float = 1.0
    timeout: float = 20.0
    budget: float = 60.0


class MaestroDatasetBackend:
    """Downloads official MAESTRO zips and reads MAESTRO-layout folders."""

    def __init__(self, options: MaestroOptions | None = None):
        self.options = options or MaestroOptions()

    def fetch(self, version: str | None = None, midi_only: bool = False, root: Path | None = None,
              mirror: str | None = None, from_zip: Path | None = None, sha256: str | None = None) -> Path:
        """Download (or import) and extract a release; returns its folder ``<root>/maestro-vX.Y.Z``."""
        from maestro_cli.data.download import RetryPolicy, fetch, get_release, release_for_zip

        root = Path(root).expanduser() if root is not None else default_root()
        if from_zip is not None:
            release = release_for_zip(from_zip, version)
        else:
            release = get_release(version or "v3", midi_only)
        policy = RetryPolicy(retries=self.options.retries, backoff=self.options.backoff,
                             timeout=self.options.timeout, budget=self.options.budget)
        return fetch(root, release, mirror=mirror, sha256=sha256, from_zip=from_zip, policy=policy)

    def open(self, root: Path | None = None, version: str | None = None) -> MaestroDataset:
        """The dataset API's :func:`~maestro_cli.data.maestro.open_dataset`."""
        return open_dataset(root, version)

    def show(self, root: Path | None = None, composer: str | None = None, split: str | None = None,
             year: int | None = None, as_json: bool = False, version: str | None = None) -> MaestroDataset:
        """Print the selection on stdout (a rich table, or JSON lines) and its summary."""
        from rich.console import Console

        from maestro_cli.cli.io import console

        selection = open_dataset(root, version).filter(composer=composer, split=split, year=year)
        if as_json:
            for record in selection:
                print(json.dumps(record.to_dict(), ensure_ascii=False), flush=True)
            console.print(_summary(selection))
            return selection
        out = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)
        out.print(_table(selection))
        out.print(_summary(selection))
        return selection


def _table(selection: MaestroDataset):
    from rich.table import Table

    table = Table(title=f"MAESTRO {selection.version}: {len(selection)} performances ({selection.root})")
    for name, justify in (("composer", "left"), ("title", "left"), ("split", "left"), ("year", "right"),
                          ("duration", "right"), ("midi", "left"), ("audio", "center")):
        table.add_column(name, justify=justify)
    for record in selection:
        table.add_row(record.composer, record.title, record.split, str(record.year), _clock(record.duration),
                      str(record.midi_path.relative_to(selection.root)), "yes" if record.audio_path else "-")
    return table


def _summary(selection: MaestroDataset):
    from rich.console import Group
    from rich.table import Table

    splits = Table(title="per split")
    for name in ("split", "performances", "hours"):
        splits.add_column(name, justify="left" if name == "split" else "right")
    counts, hours = selection.counts_by_split(), selection.hours_by_split()
    for split in counts:
        splits.add_row(split, str(counts[split]), f"{hours[split]:.1f}")
    splits.add_row("all", str(len(selection)), f"{sum(hours.values()):.1f}")
    composers = Table(title="top composers")
    for name in ("composer", "performances", "hours"):
        composers.add_column(name, justify="left" if name == "composer" else "right")
    for name, count in selection.top_composers(10):
        seconds = sum(record.duration for record in selection if record.composer == name)
        composers.add_row(name, str(count), f"{seconds / 3600:.1f}")
    return Group(splits, composers)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}:{rest:02d}"


@hookimpl
def register_datasets(register):
    register("maestro", MaestroDatasetBackend, options=MaestroOptions,
             description="MAESTRO v1/v2/v3 (Magenta): resumable verified download, metadata, splits",
             priority=100)
