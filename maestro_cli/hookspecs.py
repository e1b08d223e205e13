"""Every hook a maestro plugin can implement.

A plugin is a module (or object) with functions decorated by :data:`hookimpl`.
Each ``register_*`` hook receives a ``register`` callable; call it once per backend::

    register("my-synth", MySynth, options=MySynthOptions, aliases=("ms",),
             description="My synth", priority=0)

``register`` arguments: ``name`` (str), ``factory`` (called with the validated
options dataclass instance, returns the backend object), ``options`` (a dataclass
type or None), ``aliases`` (tuple of str), ``description`` (one line) and
``priority`` (int; the installed backend with the highest priority is the
stage's default).
"""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("maestro_cli")
hookimpl = HookimplMarker("maestro_cli")


@hookspec
def register_datasets(register):
    """Register dataset backends (objects with ``fetch`` and ``open``) for ``maestro fetch`` / ``maestro data``."""


@hookspec
def register_tokenizers(register):
    """Register tokenizers (objects with ``encode``, ``decode`` and ``vocab``) for ``maestro tokenize``."""


@hookspec
def register_generators(register):
    """Register generators (objects with ``generate`` and optionally ``train``) for ``maestro generate``/``train``."""


@hookspec
def register_renderers(register):
    """Register renderers (objects with ``render``) for ``maestro render``."""


@hookspec
def register_transcribers(register):
    """Register transcribers (objects with ``transcribe`` and optionally ``train``) for ``maestro transcribe``."""


@hookspec
def register_aligners(register):
    """Register aligners (objects with ``align``) for ``maestro align``."""


@hookspec
def register_metrics(register):
    """Register metric sets (objects with ``evaluate``) used by ``maestro evaluate``."""


@hookspec
def register_executors(register):
    """Register executors (objects with ``run(job, items, workers)``, protocol ``maestro_cli.protocols.Executor``).

    An executor runs a batch stage's per-file work: ``--executor NAME`` picks one, ``--jobs N`` sets its workers.
    """


@hookspec
def register_commands(app):
    """Add commands to the ``typer.Typer`` app of ``maestro``."""
