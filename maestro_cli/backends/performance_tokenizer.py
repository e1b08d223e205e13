"""The built-in ``performance`` tokenizer: the Performance-RNN vocabulary of :mod:`maestro_cli.tokens.performance`."""

from __future__ import annotations

from pathlib import Path

from maestro_cli.hookspecs import hookimpl


class PerformanceTokenizer:
    """388 events (note-on/off, 10 ms shifts, 32 velocity bins) + pad/start/end + composer tokens."""

    name = "performance"

    def __init__(self, options: None = None):
        from maestro_cli.tokens import performance as events

        self.version = str(events.TOKENIZER_VERSION)
        self.vocab = events.vocab()

    def encode(self, midi: Path, composer: str | None = None):
        """START, the composer token if given, the events (sustain pedal applied), END (uint16)."""
        from maestro_cli.tokens.performance import encode_midi

        return encode_midi(midi, composer)

    def decode(self, tokens) -> bytes:
        """A piano MIDI file; any id sequence decodes."""
        from maestro_cli.tokens.performance import decode_to_midi

        return decode_to_midi(tokens)


@hookimpl
def register_tokenizers(register):
    register("performance", PerformanceTokenizer, aliases=("perf", "performance-rnn"), priority=100,
             description="Performance-RNN events (388) + composer/start/end/pad tokens; sustain pedal applied")
