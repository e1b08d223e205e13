"""The ``miditok`` tokenizer: MidiTok's REMI or MIDI-Like vocabularies, to compare with ``performance``.

The sustain pedal is applied to note durations first (the rule of :mod:`maestro_cli.tokens.performance`), all tracks
are merged into one piano track, then MidiTok tokenizes. Sequences are BOS, the composer token if given,
MidiTok's tokens, EOS. MidiTok (which imports torch) is imported only when the tokenizer is first used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from maestro_cli.hookspecs import hookimpl


@dataclass
class MidiTokOptions:
    """``-O scheme=remi|midilike -O positions_per_beat=8``."""

    scheme: Literal["remi", "midilike"] = "remi"
    positions_per_beat: int = 8  # time resolution of the first 4 beats (half of it up to 12 beats)

    def __post_init__(self) -> None:
        from maestro_cli.errors import UsageError

        if not 1 <= self.positions_per_beat <= 96:
            raise UsageError("positions_per_beat must be between 1 and 96")


class MidiTokTokenizer:
    """A MidiTok tokenizer with one special token per composer (``Composer_<index>``)."""

    def __init__(self, options: MidiTokOptions | None = None):
        self.options = options or MidiTokOptions()
        self.name = f"miditok-{self.options.scheme}"
        self._tokenizer: Any = None

    @property
    def version(self) -> str:
        from importlib.metadata import version

        return f"miditok {version('miditok')}, {self.options.positions_per_beat} positions per beat"

    @property
    def tokenizer(self) -> Any:
        """The MidiTok object, built on first use."""
        if self._tokenizer is None:
            import miditok

            from maestro_cli.tokens.performance import COMPOSER_NAMES

            ppb = self.options.positions_per_beat
            config = miditok.TokenizerConfig(
                pitch_range=(21, 109), num_velocities=32, use_time_signatures=False,
                beat_res={(0, 4): ppb, (4, 12): max(1, ppb // 2)},
                special_tokens=["PAD", "BOS", "EOS", *[f"Composer_{i}" for i in range(len(COMPOSER_NAMES))]],
            )
            cls = miditok.REMI if self.options.scheme == "remi" else miditok.MIDILike
            self._tokenizer = cls(config)
        return self._tokenizer

    @property
    def vocab(self) -> dict[str, int]:
        return dict(self.tokenizer.vocab)

    def __getstate__(self) -> dict[str, Any]:  # workers rebuild the MidiTok object
        return {"options": self.options, "name": self.name, "_tokenizer": None}

    def encode(self, midi: Path, composer: str | None = None):
        """BOS, composer token, MidiTok tokens of the pedal-applied notes, EOS (uint16)."""
        import numpy as np

        from maestro_cli.errors import MaestroError
        from maestro_cli.symbolic.midi import midi_score, read_midi
        from maestro_cli.tokens.performance import COMPOSER, composer_token

        notes = read_midi(midi).sounding()
        if len(notes) == 0:
            raise MaestroError("MIDI file has no notes", midi)
        vocab = self.tokenizer.vocab
        sequences = self.tokenizer.encode(midi_score(notes))
        body = (sequences[0] if isinstance(sequences, list) else sequences).ids
        head = [vocab["BOS_None"]]
        if composer is not None:
            head.append(vocab[f"Composer_{composer_token(composer) - COMPOSER}"])
        return np.array([*head, *body, vocab["EOS_None"]], dtype=np.uint16)

    def decode(self, tokens) -> bytes:
        """A MIDI file; ids outside the vocabulary are dropped."""
        import numpy as np

        from maestro_cli.errors import MaestroError

        ids = np.asarray(tokens, dtype=np.int64).ravel()
        ids = ids[(ids >= 0) & (ids < len(self.tokenizer.vocab))]
        try:
            score = self.tokenizer.decode([ids.tolist()])
        except Exception as exc:  # noqa: BLE001 - MidiTok raises assorted errors on odd sequences
            raise MaestroError(f"MidiTok cannot decode this sequence: {type(exc).__name__}: {exc}") from None
        return bytes(score.dumps_midi())


@hookimpl
def register_tokenizers(register):
    register("miditok", MidiTokTokenizer, options=MidiTokOptions, aliases=("remi",),
             description="MidiTok REMI or MIDI-Like (-O scheme=remi|midilike); needs miditok (imports torch)")
