"""Token files (``<stem>.tokens.npz``) and the per-split training cache of a MAESTRO root.

Cache layout (``cache_dir_for(root, tokenizer)`` unless ``--out-dir``)::

    vocab.json            {"tokenizer": name, "version": v, "vocab_size": n, "vocab": {token: id}}
    <split>.u16           every piece of the split concatenated, one flat little-endian uint16 array
    <split>.index.json    [{file, composer, composer_class, offset, length, mtime, size}, ...]

A piece is whatever the tokenizer encodes without a composer (for ``performance``: START, events, END);
the composer lives in the index. Rebuilding re-tokenizes only files whose mtime or size changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maestro_cli.data.composers import composer_class
from maestro_cli.errors import MaestroError
from maestro_cli.outputs import atomic_output, output_path
from maestro_cli.reporting import progress

log = logging.getLogger(__name__)

TOKEN_SUFFIX = ".tokens.npz"
SPLIT_ORDER = ("train", "validation", "test")
VOCAB_FILE = "vocab.json"


def vocab_record(tokenizer: Any) -> dict[str, Any]:
    """What identifies a tokenizer's vocabulary: name, version, size and the token -> id map."""
    vocab = dict(tokenizer.vocab)
    return {"tokenizer": tokenizer.name, "version": str(getattr(tokenizer, "version", "")),
            "vocab_size": max(vocab.values(), default=-1) + 1, "vocab": vocab}


def _as_ids(tokens: Any, vocab_size: int) -> np.ndarray:
    ids = np.asarray(tokens).ravel()
    return ids.astype(np.uint16 if vocab_size <= 65536 else np.int32)


# ---------------------------------------------------------------- token files


def encode_file(tokenizer: Any, path: Path, composer: str | None = None, out_dir: Path | None = None,
                overwrite: bool = False) -> Path:
    """Tokenize one MIDI file into ``<out_dir>/<stem>.tokens.npz``; returns the written path."""
    if not path.is_file():
        raise MaestroError("file not found", path)
    target = output_path(path, TOKEN_SUFFIX, out_dir, overwrite=overwrite)
    record = vocab_record(tokenizer)
    ids = _as_ids(tokenizer.encode(path, composer), record["vocab_size"])
    with atomic_output(target) as tmp, tmp.open("wb") as handle:
        np.savez_compressed(handle, tokens=ids, vocab=np.array(json.dumps(record["vocab"], ensure_ascii=False)),
                            tokenizer=np.array(json.dumps({"name": record["tokenizer"], "version": record["version"]})))
    return target


def read_token_file(path: Path) -> tuple[np.ndarray, dict[str, int], dict[str, str]]:
    """``(tokens, vocab, {"name", "version"})`` of a token file; a MaestroError if it is not one."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["tokens"], json.loads(str(data["vocab"])), json.loads(str(data["tokenizer"]))
    except FileNotFoundError:
        raise MaestroError("file not found", path) from None
    except (OSError, ValueError, KeyError) as exc:
        raise MaestroError(f"not a token file ({TOKEN_SUFFIX}): {exc}", path) from None


def decoded_name(path: Path) -> Path:
    """``<stem>.mid`` for a token file ``<stem>.tokens.npz`` (the name :func:`decode_file` writes)."""
    return Path((path.name.removesuffix(TOKEN_SUFFIX) if path.name.endswith(TOKEN_SUFFIX) else path.stem) + ".mid")


def decode_file(tokenizer: Any, path: Path, out_dir: Path | None = None, overwrite: bool = False) -> Path:
    """Decode a token file into ``<out_dir>/<stem>.mid``; refuses a file of another vocabulary."""
    tokens, vocab, written_by = read_token_file(path)
    if vocab != dict(tokenizer.vocab):
        raise MaestroError(
            f"written with the vocabulary of tokenizer '{written_by.get('name')}' version "
            f"{written_by.get('version')}, not that of '{tokenizer.name}' version "
            f"{getattr(tokenizer, 'version', '')}; decode it with the tokenizer that wrote it", path)
    target = output_path(decoded_name(path), ".mid", out_dir, overwrite=overwrite)
    data = tokenizer.decode(tokens)
    with atomic_output(target) as tmp:
        tmp.write_bytes(data)
    return target


# ---------------------------------------------------------------- the training cache


def cache_dir_for(root: Path | str, tokenizer_name: str) -> Path:
    """``$MAESTRO_HOME/cache/<root folder name>-<8 hex of sha1(abs root)>/<tokenizer>/``."""
    from maestro_cli.data.maestro import default_root

    absolute = Path(root).expanduser().resolve()
    digest = hashlib.sha1(str(absolute).encode()).hexdigest()[:8]
    return default_root() / "cache" / f"{absolute.name}-{digest}" / tokenizer_name


def load_cache(cache_dir: Path | str, split: str) -> tuple[np.memmap, list[dict[str, Any]]]:
    """The flat uint16 token array of ``split`` (memory-mapped, read-only) and its index."""
    cache_dir = Path(cache_dir)
    array, index = cache_dir / f"{split}.u16", cache_dir / f"{split}.index.json"
    if not array.is_file() or not index.is_file():
        raise MaestroError(f"no '{split}' split in this token cache (build it with `maestro tokenize --dataset`)",
                           cache_dir)
    entries = json.loads(index.read_text(encoding="utf-8"))
    if array.stat().st_size == 0:
        return np.zeros(0, np.uint16).view(np.memmap), entries  # np.memmap cannot map an empty file
    return np.memmap(array, dtype=np.uint16, mode="r"), entries


@dataclass(frozen=True)
class _Job:
    file: str
    path: Path
    composer: str
    split: str
    mtime: int
    size: int


_worker_tokenizer: Any = None


def _init_worker(tokenizer: Any) -> None:
    global _worker_tokenizer
    _worker_tokenizer = tokenizer


def _encode_job(job: _Job) -> tuple[_Job, np.ndarray | None, str | None]:
    """Tokens of one file, or the reason it failed (workers never raise)."""
    try:
        return job, np.asarray(_worker_tokenizer.encode(job.path, None)).astype(np.uint16), None
    except MaestroError as exc:
        return job, None, exc.message
    except Exception as exc:  # noqa: BLE001 - a corrupt file must not stop the build
        return job, None, f"{type(exc).__name__}: {exc}"


def _previous(cache_dir: Path, record: dict[str, Any], split: str) -> tuple[np.ndarray | None, dict[str, dict]]:
    """The old tokens and index entries (by file) of ``split`` if the cache has the same vocabulary."""
    try:
        if json.loads((cache_dir / VOCAB_FILE).read_text(encoding="utf-8")) != record:
            return None, {}
        array, entries = load_cache(cache_dir, split)
    except (OSError, ValueError, MaestroError):
        return None, {}
    if any(e["offset"] + e["length"] > len(array) for e in entries):
        return None, {}
    return array, {entry["file"]: entry for entry in entries}


def build_cache(tokenizer: Any, root: Path | str, out_dir: Path | None = None, jobs: int = 1) -> list[Path]:
    """Tokenize every MIDI file of a MAESTRO root into the per-split cache; returns the files written.

    Files unchanged since the last build (same mtime and size) are copied from the old cache. A corrupt,
    missing or empty MIDI file is reported on stderr and skipped; a summary ends the run.
    """
    if tokenizer.vocab and max(tokenizer.vocab.values()) >= 65536:
        raise MaestroError(f"tokenizer '{tokenizer.name}' has more than 65536 tokens; the cache stores uint16")
    from maestro_cli.data.maestro import open_dataset

    dataset = open_dataset(root)
    cache_dir = Path(out_dir) if out_dir is not None else cache_dir_for(dataset.root, tokenizer.name)
    cache_dir.mkdir(parents=True, exist_ok=True)
    record = vocab_record(tokenizer)
    present = {r.split for r in dataset.records}
    splits = [s for s in SPLIT_ORDER if s in present] + sorted(present - set(SPLIT_ORDER))
    previous = {split: _previous(cache_dir, record, split) for split in splits}

    stats: dict[str, _Job] = {}
    pieces: dict[str, np.ndarray] = {}
    todo: list[_Job] = []
    failures: list[tuple[Path, str]] = []
    for r in dataset.records:
        file = r.midi_path.relative_to(dataset.root).as_posix()
        try:
            stat = r.midi_path.stat()
        except OSError as exc:
            failures.append((r.midi_path, f"MIDI file is missing or unreadable ({exc.strerror})"))
            continue
        job = stats[file] = _Job(file, r.midi_path, r.composer, r.split, stat.st_mtime_ns, stat.st_size)
        old_array, old_entries = previous[r.split]
        old = old_entries.get(file)
        if old is not None and old["mtime"] == job.mtime and old["size"] == job.size:
            pieces[file] = np.array(old_array[old["offset"]:old["offset"] + old["length"]])
        else:
            todo.append(job)
    reused = len(pieces)
    for job, ids, error in _run(tokenizer, todo, jobs):
        if error is None:
            pieces[job.file] = ids
        else:
            failures.append((job.path, error))
    for path, error in failures:
        log.error(f"error: {path}: {error}")

    _write_json(cache_dir / VOCAB_FILE, record)
    written = [cache_dir / VOCAB_FILE]
    for split in splits:
        entries, offset = [], 0
        for job in stats.values():
            if job.split == split and job.file in pieces:
                length = len(pieces[job.file])
                entries.append({"file": job.file, "composer": job.composer,
                                "composer_class": composer_class(job.composer),
                                "offset": offset, "length": length, "mtime": job.mtime, "size": job.size})
                offset += length
        flat = np.concatenate([pieces[e["file"]] for e in entries]) if entries else np.zeros(0, np.uint16)
        with atomic_output(cache_dir / f"{split}.u16") as tmp:
            flat.astype("<u2").tofile(tmp)
        _write_json(cache_dir / f"{split}.index.json", entries)
        written += [cache_dir / f"{split}.u16", cache_dir / f"{split}.index.json"]
        log.info(f"{split}: {len(entries)} pieces, {offset:,} tokens")
    log.info(f"tokenized {len(pieces) - reused} files, {reused} unchanged, {len(failures)} skipped -> {cache_dir}")
    return written


def _run(tokenizer: Any, todo: list[_Job], jobs: int):
    """Yield ``(job, ids, error)`` for every job, in worker processes when ``jobs > 1``."""
    with progress() as bar:
        task = bar.add_task(f"tokenize ({tokenizer.name})", total=len(todo))
        if jobs <= 1 or len(todo) < 2:
            _init_worker(tokenizer)
            results = map(_encode_job, todo)
            for result in results:
                bar.advance(task)
                yield result
            return
        context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        with context.Pool(min(jobs, len(todo)), initializer=_init_worker, initargs=(tokenizer,)) as pool:
            for result in pool.imap_unordered(_encode_job, todo, chunksize=4):
                bar.advance(task)
                yield result


def _write_json(path: Path, data: Any) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
