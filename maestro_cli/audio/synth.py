"""MIDI to audio with TinySoundFont, event by event: the engine of the built-in ``soundfont`` renderer.

TinySoundFont (the ``tinysoundfont`` wheel, C) renders the samples between two consecutive MIDI events in
one call, so Python only walks the event list (about 40k events for a 15-minute MAESTRO performance).
The sustain pedal (CC64), which TinySoundFont ignores, is applied to note durations first with Magenta's
rule (:func:`maestro_cli.symbolic.pedal.apply_sustain`), the way the pedal holds the dampers of a piano.

For many clips (training-data synthesis) use :func:`render_midi_to_array`; loaded soundfonts are cached.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from maestro_cli.errors import MaestroError

#: Seconds rendered after the last note ends, so releases and resonance are not cut.
DEFAULT_TAIL = 1.0
#: Peak level of the normalised output, in dBFS.
DEFAULT_PEAK_DB = -1.0
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192000

_DRUM_CHANNEL = 9
_MELODIC_CHANNELS = tuple(ch for ch in range(16) if ch != _DRUM_CHANNEL)
# event kinds, in the order they apply at one instant
_PROGRAM, _CONTROL, _BEND, _NOTE_OFF, _NOTE_ON = range(5)


def default_soundfont() -> Path:
    """The General MIDI soundfont shipped in pretty_midi's wheel (TimGM6mb, 6 MB), found without importing it."""
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.submodule_search_locations:
        raise MaestroError("no default soundfont: pretty_midi is not installed; pass --soundfont FILE")
    path = Path(next(iter(spec.submodule_search_locations))) / "TimGM6mb.sf2"
    if not path.is_file():
        raise MaestroError("pretty_midi's TimGM6mb.sf2 is missing; pass --soundfont FILE", path)
    return path


def check_soundfont(path: Path) -> None:
    """Raise a one-line error unless ``path`` is a readable SoundFont 2 file (RIFF ``sfbk``: .sf2 or .sf3)."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(12)
    except FileNotFoundError:
        raise MaestroError("soundfont not found", path) from None
    except OSError as exc:
        raise MaestroError(f"cannot read soundfont ({exc.strerror})", path) from None
    if header[:4] != b"RIFF" or header[8:12] != b"sfbk":
        raise MaestroError("not a SoundFont file (.sf2/.sf3)", path)


@functools.lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int, size: int):
    import tinysoundfont._tinysoundfont as tsf

    try:
        return tsf.SoundFont(path)
    except Exception as exc:  # noqa: BLE001 - TinySoundFont raises a bare Exception for bad files
        raise MaestroError(f"not a readable SoundFont ({exc})", path) from None


def load_soundfont(path: Path | str):
    """A TinySoundFont ``SoundFont`` for ``path`` (.sf2/.sf3), cached per file (the four most recent)."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        raise MaestroError("soundfont not found", path) from None
    try:
        import tinysoundfont  # noqa: F401
    except ImportError:
        raise MaestroError("the soundfont renderer needs tinysoundfont: "
                           "pip install --no-deps tinysoundfont==0.3.7") from None
    return _load(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


def _pedal(controls: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    is_pedal = controls["number"] == 64
    return controls["time"][is_pedal].astype(np.float64), controls["value"][is_pedal]


def score_events(score) -> tuple[list, float]:
    """The synth events of a symusic score (seconds) and the time its last note ends (pedal applied).

    Each event is ``(time_s, kind, channel, a, b)``: program ``(program, is_drum)``, control ``(number,
    value)``, pitch bend ``(value 0..16383, 0)``, note off ``(pitch, 0)``, note on ``(pitch, velocity)``.
    Tracks get their own channel (drums channel 10); a track's own CC64 events hold its notes, and tracks
    without any use those of note-less tracks (a pedal kept on a track of its own).
    """
    from maestro_cli.symbolic.notes import make_notes
    from maestro_cli.symbolic.pedal import apply_sustain

    tracks = list(score.tracks)
    shared = [_pedal(t.controls.numpy()) for t in tracks if t.note_num() == 0 and not t.is_drum]
    shared_pedal = (np.concatenate([p[0] for p in shared]) if shared else np.zeros(0),
                    np.concatenate([p[1] for p in shared]) if shared else np.zeros(0, np.uint8))
    columns: list[np.ndarray] = []
    end = 0.0
    melodic = 0
    for track in tracks:
        if track.is_drum:
            channel = _DRUM_CHANNEL
        else:
            channel = _MELODIC_CHANNELS[melodic % len(_MELODIC_CHANNELS)]
            melodic += 1
        arrays = track.notes.numpy()
        start = arrays["time"].astype(np.float64)
        notes = make_notes(arrays["pitch"] & 127, start, start + arrays["duration"], arrays["velocity"])
        notes = notes[notes["velocity"] > 0]
        controls = track.controls.numpy()
        if not track.is_drum:
            pedal = _pedal(controls)
            notes = apply_sustain(notes, pedal if len(pedal[0]) else shared_pedal)
        if len(notes) == 0:
            continue
        end = max(end, float(notes["end_s"].max()))
        keep = controls["number"] != 64
        other = {key: value[keep] for key, value in controls.items()}
        bends = track.pitch_bends.numpy()
        n, c, b = len(notes), int(keep.sum()), len(bends["time"])
        columns.append(np.stack([
            np.concatenate([[0.0], other["time"], bends["time"], notes["end_s"], notes["start_s"]]),
            np.concatenate([[_PROGRAM], np.full(c, _CONTROL), np.full(b, _BEND), np.full(n, _NOTE_OFF),
                            np.full(n, _NOTE_ON)]),
            np.full(1 + c + b + 2 * n, channel),
            np.concatenate([[track.program], other["number"], bends["value"].astype(np.int64) + 8192,
                            notes["pitch"], notes["pitch"]]),
            np.concatenate([[int(track.is_drum)], other["value"], np.zeros(b), np.zeros(n), notes["velocity"]]),
        ], axis=1))
    if not columns:
        return [], 0.0
    table = np.concatenate(columns)
    table = table[np.lexsort((table[:, 1], table[:, 0]))]
    return table.tolist(), end


def render_score(score, soundfont: Path | str, sample_rate: int, *, tail: float = DEFAULT_TAIL,
                 channels: int = 1, peak_db: float | None = DEFAULT_PEAK_DB, max_voices: int = 256,
                 name: str | None = None) -> np.ndarray:
    """Render a symusic score (seconds) to float32 audio ``(samples,)`` or ``(samples, 2)``.

    The audio lasts until the last note ends (pedal applied) plus ``tail`` seconds, and is peak-normalised
    to ``peak_db`` dBFS (``None``: the synth's own level, clipped to [-1, 1]).
    """
    import tinysoundfont._tinysoundfont as tsf

    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise MaestroError(f"sample rate {sample_rate} Hz is outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE}", name)
    if channels not in (1, 2):
        raise MaestroError(f"channels must be 1 or 2, not {channels}", name)
    events, end = score_events(score)
    if not events:
        raise MaestroError("no notes to render", name)
    synth = load_soundfont(soundfont)
    mode = tsf.OutputMode.Mono if channels == 1 else tsf.OutputMode.StereoInterleaved
    synth.set_output(mode, sample_rate, 0.0)
    synth.set_max_voices(max_voices)
    _silence(synth)
    total = int(round((end + max(tail, 0.0)) * sample_rate))
    audio = np.zeros(total * channels, dtype=np.float32)
    buffer = memoryview(audio).cast("B")
    frame = 4 * channels
    done = 0
    for time_s, kind, channel, a, b in events:
        position = min(int(round(time_s * sample_rate)), total)
        if position > done:
            synth.render(buffer[done * frame:position * frame], False)
            done = position
        channel, a, b = int(channel), int(a), int(b)
        if kind == _NOTE_ON:
            synth.channel_note_on(channel, a, b / 127.0)
        elif kind == _NOTE_OFF:
            synth.channel_note_off(channel, a)
        elif kind == _CONTROL:
            synth.channel_midi_control(channel, a, b)
        elif kind == _BEND:
            synth.channel_set_pitch_wheel(channel, a)
        else:
            try:
                synth.channel_set_preset_number(channel, a, bool(b))
            except RuntimeError:  # the soundfont lacks this program: its first preset plays it
                synth.channel_set_preset_index(channel, 0)
    if total > done:
        synth.render(buffer[done * frame:], False)
    audio = audio.reshape(total, channels) if channels == 2 else audio
    return normalise(audio, peak_db, name)


def _silence(synth) -> None:
    """Reset the synth and render until the voices it cut (TinySoundFont fades them out quickly) are gone."""
    synth.reset()
    scratch = np.zeros(2048, dtype=np.float32)
    for _ in range(100):
        synth.render(memoryview(scratch).cast("B"), False)
        if not scratch.any():
            return


def normalise(audio: np.ndarray, peak_db: float | None, name: str | None = None) -> np.ndarray:
    """Scale ``audio`` in place so its peak is ``peak_db`` dBFS (``None``: only clip to [-1, 1])."""
    if peak_db is None:
        return np.clip(audio, -1.0, 1.0, out=audio)
    peak = float(np.abs(audio).max(initial=0.0))
    if peak == 0.0:
        raise MaestroError("the rendered audio is silent (does the soundfont have these instruments?)", name)
    audio *= np.float32(10.0 ** (min(peak_db, 0.0) / 20.0) / peak)
    return audio


def render_midi_to_array(midi: Path | str | bytes, soundfont: Path | str | None = None, sample_rate: int = 16000,
                         *, tail: float = DEFAULT_TAIL, peak_db: float | None = DEFAULT_PEAK_DB) -> np.ndarray:
    """Render a MIDI file (path or bytes) to mono float32 audio at ``sample_rate``.

    ``soundfont`` defaults to pretty_midi's GM soundfont; loaded soundfonts stay cached (the four most
    recent), so rendering thousands of clips with a few soundfonts loads each once. Bad input raises
    :class:`maestro_cli.errors.MaestroError` (unreadable MIDI, no notes, missing or unreadable soundfont).
    """
    from maestro_cli.symbolic.midi import parse_midi

    name = None if isinstance(midi, bytes) else str(midi)
    return render_score(parse_midi(midi, ttype="second"), soundfont or default_soundfont(), sample_rate, tail=tail,
                        channels=1, peak_db=peak_db, name=name)
