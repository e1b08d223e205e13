"""Every stage's protocol and its request/result types: what a backend implements and what it receives.

Plugins import from here (never from ``maestro_cli.cli``). Backends are created by their registry factory with
the validated options dataclass; the stage commands call the methods below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol

#: Classifier-free guidance weight of generation requests (2: the composer audible at twice the compute).
DEFAULT_GUIDANCE = 2.0

@dataclass
class Alignment:
    """A strictly monotonic map from score time to performance time, with its provenance."""

    score_times: Any  # 1-D float array, seconds
    performance_times: Any  # 1-D float array, seconds
    info: dict = field(default_factory=dict)  # backend, feature_rate, confidence, ...
    score: Any = None  # the maestro_cli.symbolic.scores.Score aligned (as written or unfolded), if known
    notes: Any = None  # a maestro_cli.align.notes.NoteAlignment, for backends that match notes


class Aligner(Protocol):
    """Aligns a performance (audio or MIDI) to a score file (MusicXML, .mxl, MEI, kern or MIDI)."""

    def align(self, performance: Path, score: Path, *, kind: str) -> Alignment:
        """``kind`` is "audio" or "midi" (detected from the file's content by the stage)."""


class Dataset(Protocol):
    """A dataset: fetches a release and opens a local copy (``maestro fetch`` / ``maestro data``)."""

    def fetch(self, version: str | None = None, midi_only: bool = False, root: Path | None = None,
              mirror: str | None = None, from_zip: Path | None = None, sha256: str | None = None) -> Path:
        """Download (or import) and extract a release; returns its folder."""

    def open(self, root: Path | None = None, version: str | None = None) -> Any:
        """A selection of records with ``filter(...)``, ``counts_by_split()``, ``hours_by_split()``,
        ``top_composers(n)``."""


@dataclass
class GenerationRequest:
    composer: str | None = None
    n: int = 1
    seconds: float = 30.0
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0
    primer: Path | None = None
    checkpoint: Path | None = None
    guidance: float = DEFAULT_GUIDANCE  # classifier-free guidance weight W (1: plain conditional sampling)


@dataclass(frozen=True)
class BatchJob:
    """A batch stage's per-file work, in a form any executor can ship to its workers (everything picklable).

    Each worker calls ``setup()`` once (it builds the backend, loading its model) and then ``work(state, item)`` for
    every item it is handed. Both must be importable functions (or ``functools.partial`` of them), not lambdas.
    """

    setup: Callable[[], Any]
    work: Callable[[Any, Any], Any]


@dataclass
class ItemResult:
    """The outcome of one item: ``value`` returned by ``work`` or the ``error`` it raised, and its wall time."""

    item: Any
    value: Any = None
    error: BaseException | None = None
    seconds: float = 0.0


class Executor(Protocol):
    """Runs a :class:`BatchJob` over many items (the ``local`` process pool built in, ``ray`` as a plugin)."""

    def run(self, job: BatchJob, items: Iterable[Any], workers: int | None = None) -> Iterator[ItemResult]:
        """Yield one :class:`ItemResult` per item as items complete (in any order).

        ``items`` is consumed lazily and at most a few items per worker are in flight, so a million-file input never
        sits in memory as tasks. A failing item is a result with ``error`` set; the batch goes on. A failing
        ``setup`` (no model, bad options) raises its error here, for the whole batch. ``workers`` None means the
        executor's default. Closing the iterator early stops the workers; their unfinished outputs are discarded.
        """


class Generator(Protocol):
    """Generates performances; returns one Standard MIDI file (bytes) per sample."""

    def generate(self, request: GenerationRequest) -> list[bytes]: ...


class Renderer(Protocol):
    """Renders one MIDI file to an audio file."""

    def render(self, midi: Path, out: Path, *, sample_rate: int, audio_format: str,
               soundfont: Path | None) -> None:
        """Write ``midi`` rendered as ``audio_format`` (wav|flac) at ``sample_rate`` to ``out``."""


class Tokenizer(Protocol):
    """Turns MIDI into integer token sequences and back."""

    name: str
    version: str  # with ``vocab``, identifies the vocabulary in token files and caches
    vocab: dict[str, int]

    def encode(self, midi: Path, composer: str | None = None) -> Any:
        """Token ids (1-D integer array) for one MIDI file."""

    def decode(self, tokens: Any) -> bytes:
        """A Standard MIDI file (bytes) for a token sequence; never raises on a well-formed one."""


@dataclass
class TrainRequest:
    data: Path
    out: Path
    steps: int | None
    resume: bool
    device: str
    options: list[str]  # -O key=value, validated by the backend against its training config
    report: Any = None  # the training loop's reporter (begin/step/note/end); None: plain lines on stderr


class Transcriber(Protocol):
    """Transcribes one recording to a piano MIDI file.

    Backends load audio with :func:`maestro_cli.audio.io.load_audio` (any format, rate and channel count; clear
    errors for empty, unreadable or silent files), hold notes as :data:`maestro_cli.symbolic.notes.NOTE_DTYPE`
    arrays and write them with :func:`maestro_cli.symbolic.midi.write_midi` and
    :func:`maestro_cli.symbolic.notes.write_notes_csv`. The stage
    hands them temporary paths and renames both outputs into place only when the call succeeds.
    """

    def transcribe(self, audio: Path, out_midi: Path, *, notes_csv: Path | None = None) -> None:
        """Write the transcription of ``audio`` to ``out_midi`` (and ``onset_s,offset_s,pitch,velocity`` rows
        to ``notes_csv`` if given)."""


class CandidateTranscriber(Protocol):
    """An optional capability of a :class:`Transcriber`: the notes it weighed, with its confidence in each.

    Score-informed transcription (``transcribe --score``) uses it, when a backend has it, to look for the score's
    notes that the transcription left out (the score makes them likely) and to keep only confident notes the score
    lacks. Backends without it get the blind transcription's notes, all taken as sure.
    """

    def transcribe_candidates(self, audio: Path, out_midi: Path) -> tuple[Any, Any]:
        """Write the transcription of ``audio`` to ``out_midi`` as :meth:`Transcriber.transcribe` does, and return
        ``(notes, confidence)``: every note the model finds evidence for down to a low floor (including the ones
        its decoding rejected), as :data:`maestro_cli.symbolic.notes.NOTE_DTYPE`, and the model's probability of
        each note's onset (1-D float array in [0, 1], the scale of its decision threshold)."""


class MetricSet(Protocol):
    """A metric set of ``maestro evaluate``: validates its inputs (raising MaestroError) and returns a JSON-ready dict.

    Never prints: the ``evaluate`` command renders tables, warnings and plots from the returned dict.
    """

    def evaluate(self, **inputs: Any) -> dict: ...
