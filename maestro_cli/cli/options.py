"""Typer option declarations and helpers shared by the stage commands."""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Optional

import typer

from maestro_cli.errors import UsageError

BACKEND = typer.Option(None, "--backend", "-b",
                       help="Backend to use (see `maestro plugins`); default: the best installed.")
OPTIONS = typer.Option(None, "--option", "-O",
                       help="Backend option key=value (repeatable: -O threshold=0.4); unknown keys are listed.")
OUTPUT = typer.Option(None, "--output", "-o", help="Output FILE (one input only).")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace existing outputs instead of failing.")
JSON = typer.Option(False, "--json", help="Print one JSON object per line on stdout instead of paths.")
OUT_DIR = typer.Option(None, "--out-dir", help="Directory for outputs (default: the current directory).")

_OPTION = re.compile(r"^[A-Za-z_][\w-]*=")


def reject_old_option_flag(argv: list[str]) -> None:
    """``-o key=value`` gave backend options before ``-O`` did: say so instead of writing a file called that."""
    pairs = [(flag, value) for flag, value in zip(argv, argv[1:]) if flag in ("-o", "--output")]
    pairs += [("-o", flag[2:]) for flag in argv if flag.startswith("-o") and len(flag) > 2]  # -okey=value
    for _, value in pairs:
        if _OPTION.match(value):
            raise UsageError(f"-o is the output file; backend options are given with -O (-O {value})")


def single_output(out_file: Path | None, inputs: list[Path], out_dir: Path | None) -> None:
    """Usage checks for ``-o FILE``: one input only, not together with --out-dir."""
    if out_file is not None and len(inputs) != 1:
        raise UsageError("-o FILE takes exactly one input; use --out-dir for several")
    if out_file is not None and out_dir is not None:
        raise UsageError("use either -o FILE or --out-dir, not both")


__all__ = ["BACKEND", "OPTIONS", "JOBS", "EXECUTOR", "MANIFEST", "SKIP_EXISTING",
           "OUTPUT", "OVERWRITE", "JSON", "OUT_DIR", "Path", "List", "Optional",
           "reject_old_option_flag", "single_output"]


JOBS = typer.Option(None, "--jobs", "-j", min=1,
                    help="Workers: local processes (default 1: in this process) or Ray actors "
                         "(default: as many as the cluster holds).")
EXECUTOR = typer.Option(None, "--executor", help="How the batch runs: local (default) or an installed executor (ray).")
MANIFEST = typer.Option(None, "--manifest",
                        help="Write one JSON line per input: input, output, status, error, seconds.")
SKIP_EXISTING = typer.Option(False, "--skip-existing",
                             help="Keep outputs that already exist (resume a killed batch) instead of failing on them.")
