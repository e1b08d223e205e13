"""The ``maestro`` dataset backend: fetch MAESTRO v1/v2/v3 and browse a MAESTRO root."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from maestro_cli.data.maestro import MaestroDataset, default_root, open_dataset
from maestro_cli.hookspecs import hookimpl


@dataclass
class MaestroOptions:
    """Network behaviour of ``maestro fetch`` (``-O key=value``)."""

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


@hookimpl
def register_datasets(register):
    register("maestro", MaestroDatasetBackend, options=MaestroOptions,
             description="MAESTRO v1/v2/v3 (Magenta): resumable verified download, metadata, splits",
             priority=100)
