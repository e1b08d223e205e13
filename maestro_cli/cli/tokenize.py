"""Stage ``tokenize``: performance MIDI to event tokens and back, and the training cache."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import List, Optional

import typer

from maestro_cli.cli.batch import BatchFlags, backend_job, batch_inputs, run_files, split_executor_options
from maestro_cli.cli.io import emit
from maestro_cli.cli.options import BACKEND, EXECUTOR, JSON, MANIFEST, OPTIONS, OUT_DIR, OVERWRITE, SKIP_EXISTING
from maestro_cli.data.composers import resolve_composer
from maestro_cli.errors import UsageError
from maestro_cli.registry import get_backend

NAME = "tokenize"


def command(
    inputs: Optional[List[str]] = typer.Argument(None, help="MIDI files to tokenize (token files with --decode)."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="Tokenizer backend (default: performance)."),
    composer: Optional[str] = typer.Option(None, "--composer", help="Composer token to prepend (e.g. Chopin)."),
    decode: bool = typer.Option(False, "--decode", help="Decode token files back to MIDI."),
    dataset: Optional[Path] = typer.Option(None, "--dataset",
                                           help="Build the training cache of a MAESTRO root instead."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1,
                                       help="Workers (default 1: in this process); with --dataset, worker processes."),
    executor: Optional[str] = EXECUTOR,
    manifest: Optional[Path] = MANIFEST,
    skip_existing: bool = SKIP_EXISTING,
    out_dir: Optional[Path] = OUT_DIR,
    options: Optional[List[str]] = OPTIONS,
    backend: Optional[str] = BACKEND,
    overwrite: bool = OVERWRITE,
    as_json: bool = JSON,
) -> None:
    """Tokenize MIDI into event sequences (.tokens.npz), decode them back, or build a dataset's token cache."""
    from maestro_cli.tokens import files as tokenize_io

    if dataset is not None:
        if inputs or decode or composer:
            raise UsageError("--dataset takes no input files, --decode or --composer")
        chosen = get_backend("tokenizer", tokenizer or backend).create(options or [])
        for path in tokenize_io.build_cache(chosen, dataset, out_dir, jobs or 1):
            emit(path, as_json)
        return
    if composer is not None:
        if decode:
            raise UsageError("--composer is for encoding; token files carry their composer token")
        composer = resolve_composer(composer)
    flags = BatchFlags(jobs, executor, manifest, skip_existing, overwrite, as_json)
    options, executor_options = split_executor_options(flags, options or [])
    paths = batch_inputs(inputs, (tokenize_io.TOKEN_SUFFIX,) if decode else (".mid", ".midi"))

    def plan(path: Path) -> tuple[Path, ...]:
        name = tokenize_io.decoded_name(path) if decode else path.with_name(path.stem + tokenize_io.TOKEN_SUFFIX)
        return ((out_dir or Path.cwd()) / name.name,)

    work = partial(decode_one if decode else encode_one, composer=composer, out_dir=out_dir)
    run_files("decode" if decode else "tokenize", paths, plan,
              backend_job("tokenizer", tokenizer or backend, options, work), flags, executor_options)


def encode_one(tokenizer, item: tuple[Path, tuple[Path, ...]], *, composer: str | None, out_dir: Path | None) -> None:
    """One batch item: a MIDI file to its token file (runs in a worker)."""
    from maestro_cli.tokens.files import encode_file

    encode_file(tokenizer, item[0], composer, out_dir, overwrite=True)


def decode_one(tokenizer, item: tuple[Path, tuple[Path, ...]], *, composer: str | None, out_dir: Path | None) -> None:
    """One batch item: a token file back to MIDI (runs in a worker)."""
    from maestro_cli.tokens.files import decode_file

    decode_file(tokenizer, item[0], out_dir, overwrite=True)
