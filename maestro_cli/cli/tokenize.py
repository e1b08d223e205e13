"""Stage ``tokenize``: performance MIDI to event tokens and back, and the training cache."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from maestro_cli.cli.io import emit, read_inputs, run_batch
from maestro_cli.cli.options import BACKEND, JSON, OPTIONS, OUT_DIR, OVERWRITE
from maestro_cli.data.composers import resolve_composer
from maestro_cli.errors import UsageError
from maestro_cli.registry import get_backend

NAME = "tokenize"


def command(
    inputs: Optional[List[str]] = typer.Argument(None, help="MIDI files to tokenize (token files with --decode)."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="Tokenizer backend (default: performance)."),
    composer: Optional[str] = typer.Option(None, "--composer", help="Composer token to prepend (e.g. Chopin)."),
    decode: bool = typer.Option(False, "--decode", help="Decode token files back to MIDI."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="Build the training cache of a MAESTRO root instead."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes for --dataset."),
    out_dir: Optional[Path] = OUT_DIR,
    options: Optional[List[str]] = OPTIONS,
    backend: Optional[str] = BACKEND,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON,
) -> None:
    """Tokenize MIDI into event sequences (.tokens.npz), decode them back, or build a dataset's token cache."""
    chosen = get_backend("tokenizer", tokenizer or backend).create(options or [])
    from maestro_cli.tokens import files as tokenize_io

    if dataset is not None:
        if inputs or decode or composer:
            raise UsageError("--dataset takes no input files, --decode or --composer")
        for path in tokenize_io.build_cache(chosen, dataset, out_dir, jobs):
            emit(path, as_json)
        return
    if composer is not None:
        if decode:
            raise UsageError("--composer is for encoding; token files carry their composer token")
        composer = resolve_composer(composer)
    paths = read_inputs(inputs)

    def work(path: Path) -> None:
        if decode:
            emit(tokenize_io.decode_file(chosen, path, out_dir, overwrite), as_json)
        else:
            emit(tokenize_io.encode_file(chosen, path, composer, out_dir, overwrite), as_json)

    if run_batch(paths, work, "decode" if decode else "tokenize"):
        raise typer.Exit(1)
