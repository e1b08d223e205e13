"""Stage ``data``: browse a MAESTRO root."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from maestro_cli.cli.io import console, emit
from maestro_cli.cli.options import BACKEND, JSON
from maestro_cli.registry import get_backend

NAME = "data"


def command(
    root: Optional[Path] = typer.Option(None, "--root",
                                        help="Dataset root (default: $MAESTRO_HOME or the user data dir)."),
    composer: Optional[str] = typer.Option(None, "--composer",
                                           help="Composer filter (case/accent-insensitive substring)."),
    split: Optional[str] = typer.Option(None, "--split", help="train, validation or test."),
    year: Optional[int] = typer.Option(None, "--year", help="Competition year."),
    version: Optional[str] = typer.Option(None, "--version",
                                          help="Metadata version to read (default: the highest found)."),
    backend: Optional[str] = BACKEND,
    as_json: bool = JSON,
) -> None:
    """List the pieces of a dataset (rich table, or JSON lines) with counts and hours per split."""
    dataset = get_backend("dataset", backend).create([])
    selection = dataset.open(root=root, version=version).filter(composer=composer, split=split, year=year)
    if as_json:
        for record in selection:
            emit(record.to_dict(), as_json=True)
        console.print(_summary(selection))
        return
    out = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)
    out.print(_table(selection))
    out.print(_summary(selection))


def _table(selection):
    from rich.table import Table

    table = Table(title=f"MAESTRO {selection.version}: {len(selection)} performances ({selection.root})")
    for name, justify in (("composer", "left"), ("title", "left"), ("split", "left"), ("year", "right"),
                          ("duration", "right"), ("midi", "left"), ("audio", "center")):
        table.add_column(name, justify=justify)
    for record in selection:
        table.add_row(record.composer, record.title, record.split, str(record.year), _clock(record.duration),
                      str(record.midi_path.relative_to(selection.root)), "yes" if record.audio_path else "-")
    return table


def _summary(selection):
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

