"""The Performance-RNN event vocabulary (Oore et al. 2018) with fixed ids, and MIDI <-> tokens.

Ids: 0..127 NOTE_ON(pitch), 128..255 NOTE_OFF(pitch), 256..355 TIME_SHIFT(1..100 steps of 10 ms),
356..387 VELOCITY(32 bins), 388 PAD, 389 START, 390 END, then one token per composer of
:data:`maestro_cli.data.composers.COMPOSERS` and the ``unknown`` composer last.

Notes are :data:`maestro_cli.symbolic.notes.NOTE_DTYPE` arrays (``pitch``, ``start_s``, ``end_s``, ``velocity``).
Everything here is vectorised numpy: a whole MAESTRO performance encodes in a few milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from maestro_cli.data.composers import COMPOSERS, UNKNOWN, composer_class, fold, resolve_composer
from maestro_cli.errors import MaestroError, UsageError
from maestro_cli.symbolic.midi import midi_bytes, read_midi
from maestro_cli.symbolic.notes import make_notes
from maestro_cli.symbolic.pedal import cut_restrikes

TOKENIZER_VERSION = 1
STEPS_PER_SECOND = 100
MAX_SHIFT = 100
VELOCITY_BINS = 32
VELOCITY_BIN_SIZE = 4  # ceil(127 / 32), Magenta's binning: bin = (velocity - 1) // 4

NOTE_ON = 0
NOTE_OFF = 128
TIME_SHIFT = 256
VELOCITY = TIME_SHIFT + MAX_SHIFT
NUM_EVENTS = VELOCITY + VELOCITY_BINS  # 388
PAD = NUM_EVENTS
START = PAD + 1
END = PAD + 2
COMPOSER = END + 1
COMPOSER_NAMES: tuple[str, ...] = (*COMPOSERS, UNKNOWN)
VOCAB_SIZE = COMPOSER + len(COMPOSER_NAMES)

def composer_token(name_or_canonical: str | None) -> int:
    """The composer token for a metadata entry ("Johann Sebastian Bach / Ferruccio Busoni") or a name ("chopin").

    Composers outside :data:`COMPOSERS` (and ``None``) get the ``unknown`` token; an ambiguous short
    name ("Franz") is a usage error.
    """
    name = composer_class(name_or_canonical)
    if name == UNKNOWN and name_or_canonical and fold(name_or_canonical) != UNKNOWN:
        try:
            name = resolve_composer(name_or_canonical)
        except UsageError as exc:
            if "ambiguous" in exc.message:
                raise
    return COMPOSER + COMPOSER_NAMES.index(name)


def vocab() -> dict[str, int]:
    """Token name -> id, e.g. ``NOTE_ON_60``, ``TIME_SHIFT_10``, ``VELOCITY_5``, ``COMPOSER_Frédéric Chopin``."""
    names = {f"NOTE_ON_{p}": NOTE_ON + p for p in range(128)}
    names.update({f"NOTE_OFF_{p}": NOTE_OFF + p for p in range(128)})
    names.update({f"TIME_SHIFT_{s}": TIME_SHIFT + s - 1 for s in range(1, MAX_SHIFT + 1)})
    names.update({f"VELOCITY_{b}": VELOCITY + b for b in range(VELOCITY_BINS)})
    names.update({"PAD": PAD, "START": START, "END": END})
    names.update({f"COMPOSER_{name}": COMPOSER + i for i, name in enumerate(COMPOSER_NAMES)})
    return names


def velocity_bin(velocity: np.ndarray) -> np.ndarray:
    """Magenta's 32 velocity bins: 1-4 -> 0, 5-8 -> 1, ..., 125-127 -> 31."""
    return (np.clip(np.asarray(velocity, dtype=np.int64), 1, 127) - 1) // VELOCITY_BIN_SIZE


def bin_velocity(bins: np.ndarray) -> np.ndarray:
    """The velocity at the centre of each bin (rounded up, at most 127)."""
    return np.minimum(np.asarray(bins, dtype=np.int64) * VELOCITY_BIN_SIZE + 3, 127)


_STEP_DTYPE = np.dtype([("pitch", np.int64), ("start", np.int64), ("end", np.int64), ("velocity", np.int64)])


def quantize(notes: np.ndarray) -> np.ndarray:
    """Notes on the 10 ms grid as the tokens represent them (fields pitch, start, end in steps, velocity).

    Onsets and offsets are rounded to the nearest step, a note lasts at least one step, and same-pitch
    notes never overlap (the later onset ends the earlier note; of two onsets in one step the later note
    is kept).
    """
    steps = np.empty(len(notes), dtype=_STEP_DTYPE)
    steps["pitch"] = notes["pitch"]
    steps["start"] = np.floor(notes["start_s"] * STEPS_PER_SECOND + 0.5)
    steps["end"] = np.maximum(np.floor(notes["end_s"] * STEPS_PER_SECOND + 0.5), steps["start"] + 1)
    steps["velocity"] = np.clip(notes["velocity"], 1, 127)
    steps = steps[(steps["pitch"] < 128) & (steps["start"] >= 0)]
    return cut_restrikes(steps, "start", "end")


def notes_to_events(notes: np.ndarray) -> np.ndarray:
    """Event ids (uint16) for a note array: per step note-offs first, then velocity changes and note-ons."""
    steps = quantize(notes)
    n = len(steps)
    if n == 0:
        return np.zeros(0, dtype=np.uint16)
    time = np.concatenate([steps["end"], steps["start"]])
    pitch = np.concatenate([steps["pitch"], steps["pitch"]])
    # one sort key: time, then note-offs (0) before note-ons (1), then pitch; keys are unique
    key = (time << 8) | (np.repeat([0, 128], n) + pitch)
    order = np.argsort(key)
    time, pitch = time[order], pitch[order]
    is_on = order >= n
    vbin = np.concatenate([np.zeros(n, np.int64), velocity_bin(steps["velocity"])])[order]
    # a velocity token before a note-on whose bin differs from the previous note-on's
    on_bins = vbin[is_on]
    changed = np.ones(len(on_bins), bool)
    changed[1:] = on_bins[1:] != on_bins[:-1]
    emit_velocity = np.zeros(2 * n, bool)
    emit_velocity[is_on] = changed
    delta = np.diff(time, prepend=0)
    full, rest = np.divmod(delta, MAX_SHIFT)
    shifts = full + (rest > 0)
    counts = shifts + emit_velocity + 1
    first = np.cumsum(counts) - counts
    out = np.full(int(counts.sum()), TIME_SHIFT + MAX_SHIFT - 1, dtype=np.uint16)
    partial = rest > 0
    out[first[partial] + full[partial]] = TIME_SHIFT + rest[partial] - 1
    out[first[emit_velocity] + shifts[emit_velocity]] = VELOCITY + vbin[emit_velocity]
    out[first + shifts + emit_velocity] = np.where(is_on, NOTE_ON, NOTE_OFF) + pitch
    return out


def _times(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step at which each token happens (time shifts before it summed), and the total length in steps."""
    shift = np.where((ids >= TIME_SHIFT) & (ids < VELOCITY), ids.astype(np.int64) - TIME_SHIFT + 1, 0)
    total = np.cumsum(shift)
    return total - shift, int(total[-1]) if len(total) else 0


def events_to_steps(ids) -> np.ndarray:
    """Notes on the step grid (see :func:`quantize`) for any id sequence; never raises.

    Control tokens and unknown ids are ignored; a note-on while its pitch sounds ends the sounding note;
    a note-off of a silent pitch is ignored; notes still sounding at the end close at the last time step;
    notes of zero length are dropped. A note's velocity is the last velocity token before it (64 if none).
    """
    ids = np.asarray(ids, dtype=np.int64).ravel()
    time, total = _times(ids)
    is_velocity = (ids >= VELOCITY) & (ids < NUM_EVENTS)
    last_velocity = np.maximum.accumulate(np.where(is_velocity, np.arange(len(ids)), -1)) if len(ids) else ids
    velocity = np.where(last_velocity >= 0, bin_velocity(ids[np.maximum(last_velocity, 0)] - VELOCITY), 64)
    note = (ids >= 0) & (ids < TIME_SHIFT)
    idx = np.flatnonzero(note)
    pitch, on = ids[idx] % 128, ids[idx] < NOTE_OFF
    order = np.lexsort((idx, pitch))  # per pitch, in sequence order
    pitch, on, idx = pitch[order], on[order], idx[order]
    nxt_same = np.zeros(len(idx), bool)
    nxt_same[:-1] = pitch[1:] == pitch[:-1]
    end = np.full(len(idx), total, dtype=np.int64)
    end[:-1] = np.where(nxt_same[:-1], time[idx[1:]], total)
    keep = on & (end > time[idx])
    steps = np.empty(int(keep.sum()), dtype=_STEP_DTYPE)
    steps["pitch"], steps["start"], steps["end"] = pitch[keep], time[idx[keep]], end[keep]
    steps["velocity"] = velocity[idx[keep]]
    return steps[np.lexsort((steps["pitch"], steps["start"]))]


def events_to_notes(ids) -> np.ndarray:
    """A note array (seconds) for any id sequence; never raises (rules in :func:`events_to_steps`)."""
    steps = events_to_steps(ids)
    return make_notes(steps["pitch"], steps["start"] / STEPS_PER_SECOND, steps["end"] / STEPS_PER_SECOND,
                      steps["velocity"])


def transpose(ids, semitones: int) -> np.ndarray | None:
    """Shift every note by ``semitones``; None if a pitch would leave 0..127. Other tokens are unchanged."""
    ids = np.asarray(ids, dtype=np.uint16)
    note = ids < TIME_SHIFT
    pitch = (ids[note] % 128).astype(np.int64) + semitones
    if len(pitch) and (pitch.min() < 0 or pitch.max() > 127):
        return None
    out = ids.copy()
    out[note] = (ids[note] // 128) * 128 + pitch
    return out


def stretch(ids, factor: float) -> np.ndarray:
    """Re-time a sequence by ``factor`` (1.05 = 5 % slower) on the 10 ms grid; token order is kept.

    Every token moves to ``round(step * factor)``. Where rounding would put two events of one key that
    were in different steps into the same step (a note would lose its length), the later one and what
    follows it in that step move one step later, so no note of a well-formed sequence disappears.
    """
    ids = np.asarray(ids, dtype=np.uint16)
    if factor <= 0:
        raise ValueError("stretch factor must be positive")
    time, _ = _times(ids)
    new = np.floor(time * factor + 0.5).astype(np.int64)
    idx = np.flatnonzero(ids < TIME_SHIFT)
    pitch = ids[idx] % 128
    order = np.lexsort((idx, pitch))
    idx, pitch = idx[order], pitch[order]
    apart = np.zeros(len(idx), np.int64)
    apart[1:] = (pitch[1:] == pitch[:-1]) & (time[idx[1:]] > time[idx[:-1]])
    bump = np.cumsum(apart)
    group = np.concatenate([[0], np.cumsum(pitch[1:] != pitch[:-1])]) if len(idx) else bump
    while True:  # each key's events at least one step apart, then times non-decreasing; a few rounds at most
        offset = group * (int(new.max(initial=0)) + len(idx) + 1)  # keeps each key's running max apart
        lifted = new.copy()
        lifted[idx] = np.maximum.accumulate(new[idx] - bump + offset) - offset + bump
        lifted = np.maximum.accumulate(lifted) if len(lifted) else lifted
        if np.array_equal(lifted, new):
            break
        new = lifted
    keep = (ids < TIME_SHIFT) | (ids >= VELOCITY)
    return _with_shifts(ids[keep], new[keep])


def _with_shifts(tokens: np.ndarray, time: np.ndarray) -> np.ndarray:
    """Interleave ``tokens`` (non-shift, time-sorted) with time shifts reaching each token's step."""
    delta = np.diff(time, prepend=0)
    full, rest = np.divmod(delta, MAX_SHIFT)
    shifts = full + (rest > 0)
    counts = shifts + 1
    first = np.cumsum(counts) - counts
    out = np.full(int(counts.sum()), TIME_SHIFT + MAX_SHIFT - 1, dtype=np.uint16)
    partial = rest > 0
    out[first[partial] + full[partial]] = TIME_SHIFT + rest[partial] - 1
    out[first + shifts] = tokens
    return out


def encode_midi(path: Path | str, composer: str | None = None) -> np.ndarray:
    """START, the composer token (if ``composer`` is given), the events of the file, END.

    A file without notes raises :class:`MaestroError`.
    """
    notes = read_midi(path).sounding()
    if len(notes) == 0:
        raise MaestroError("MIDI file has no notes", path)
    events = notes_to_events(notes)
    head = [START] if composer is None else [START, composer_token(composer)]
    return np.concatenate([np.array(head, np.uint16), events, np.array([END], np.uint16)])


def decode_to_midi(ids) -> bytes:
    """A single-track piano MIDI file (program 0, 120 bpm, 1 ms ticks) for any id sequence."""
    return midi_bytes(events_to_notes(ids))


class PerformanceTokenizer:
    """388 events (note-on/off, 10 ms shifts, 32 velocity bins) + pad/start/end + composer tokens."""

    name = "performance"

    def __init__(self, options: None = None):
        self.version = str(TOKENIZER_VERSION)
        self.vocab = vocab()

    def encode(self, midi: Path, composer: str | None = None):
        """START, the composer token if given, the events (sustain pedal applied), END (uint16)."""
        return encode_midi(midi, composer)

    def decode(self, tokens) -> bytes:
        """A piano MIDI file; any id sequence decodes."""
        return decode_to_midi(tokens)
