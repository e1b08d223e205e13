"""Audio loading shared by every stage: any format libsndfile reads, any rate and channel count in.

``load_audio`` streams the file in blocks (:func:`audio_blocks`) through a soxr resampler, so memory stays near
the size of the output array (a one-hour recording at 16 kHz mono is 230 MB of float32) whatever the source format.
Problems with the file's content raise :class:`~maestro_cli.errors.MaestroError` naming the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from maestro_cli.errors import MaestroError

log = logging.getLogger(__name__)

#: Peak amplitude at or below which a recording counts as silent (-80 dBFS).
SILENCE_PEAK = 1e-4
#: Audio files a folder contributes to a batch.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".opus")
_BLOCK_FRAMES = 1 << 18
_READABLE = "WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF"
#: Leading bytes of common files libsndfile cannot read, for a clearer message.
_MAGIC = {
    b"MThd": "a MIDI file, not audio",
    b"%PDF": "a PDF file, not audio",
    b"PK\x03\x04": "a ZIP archive, not audio",
    b"\x89PNG": "a PNG image, not audio",
    b"\xff\xd8\xff": "a JPEG image, not audio",
}


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds: sample rate, channels, length (of the samples present) and container format;
    ``header_frames``: the length a WAV header announces when the file holds less (a truncated file), else None."""

    sample_rate: int
    channels: int
    frames: int
    format: str
    header_frames: int | None = None

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    def truncation(self) -> str | None:
        """``"truncated: the header says 4.00 s, the file holds 2.30 s"``, or None for a whole file."""
        if self.header_frames is None:
            return None
        return (f"truncated: the header says {self.header_frames / self.sample_rate:.2f} s, "
                f"the file holds {self.duration:.2f} s")


def wav_header_frames(path: Path) -> int | None:
    """The number of frames a PCM/float WAV's ``data`` chunk header announces (None: not such a WAV, or a
    streamed one whose header gives no length)."""
    import struct

    with path.open("rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = None
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                return None
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"fmt ":
                fmt = handle.read(size)
                if len(fmt) < 14 or struct.unpack("<H", fmt[:2])[0] not in (1, 3, 0xFFFE):
                    return None
                block_align = struct.unpack("<H", fmt[12:14])[0]
                handle.seek(size % 2, 1)
            elif name == b"data":
                if not block_align or size in (0, 0xFFFFFFFF):
                    return None
                return size // block_align
            else:
                handle.seek(size + size % 2, 1)


def _unreadable(path: Path) -> MaestroError:
    head = path.read_bytes()[:12] if path.is_file() else b""
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return MaestroError(f"{what} (readable audio: {_READABLE})", path)
    if head[4:8] == b"ftyp":
        return MaestroError(f"unsupported audio format MP4/M4A/AAC; convert it to one of {_READABLE}", path)
    return MaestroError(f"not an audio file in a supported format ({_READABLE})", path)


def probe_audio(path: str | Path) -> AudioInfo:
    """Read the header of ``path``; raise a one-line :class:`MaestroError` if it is not usable audio."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise MaestroError("no such file", path)
    if path.stat().st_size == 0:
        raise MaestroError("empty file (0 bytes)", path)
    try:
        info = soundfile.info(str(path))
    except (RuntimeError, soundfile.SoundFileError):
        raise _unreadable(path) from None
    announced = wav_header_frames(path) if info.format == "WAV" else None
    if info.frames <= 0 or info.samplerate <= 0:
        raise MaestroError("audio file holds no samples (zero length)"
                           + (" (truncated: its header says it has some)" if announced else ""), path)
    truncated = announced if announced is not None and announced > info.frames + 1 else None
    return AudioInfo(info.samplerate, info.channels, info.frames, info.format, truncated)


def warn_if_truncated(path: Path, info: AudioInfo) -> None:
    """The warning a truncated file gets when it is read as far as it goes."""
    if info.truncation():
        log.warning(f"warning: {path}: {info.truncation()}; using what it holds")


def audio_blocks(path: str | Path, sample_rate: int, mono: bool = True,
                 info: AudioInfo | None = None) -> Iterator[np.ndarray]:
    """The audio of ``path`` at ``sample_rate`` Hz as consecutive float32 blocks ``(frames, channels)`` (one
    channel when ``mono``): the samples :func:`load_audio` returns, for callers that stream a long recording.
    ``info``: the file's :func:`probe_audio`, when the caller has it. Raises :class:`MaestroError` for a missing,
    empty, unreadable or corrupt file."""
    import soundfile
    import soxr

    path = Path(path)
    info = info or probe_audio(path)
    channels = 1 if mono else info.channels
    resampler = None
    if info.sample_rate != sample_rate:
        resampler = soxr.ResampleStream(info.sample_rate, sample_rate, channels, dtype="float32", quality="HQ")
    try:
        with soundfile.SoundFile(str(path)) as source:
            while True:
                block = source.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
                last = len(block) < _BLOCK_FRAMES
                if mono:
                    block = block.mean(axis=1, keepdims=True, dtype=np.float32)
                if resampler is not None:
                    block = resampler.resample_chunk(block, last=last).reshape(-1, channels)
                yield block
                if last:
                    break
    except (RuntimeError, soundfile.SoundFileError) as exc:
        raise MaestroError(f"corrupt audio data ({exc})", path) from None


def load_audio(path: str | Path, sample_rate: int, mono: bool = True, *, allow_silent: bool = False) -> np.ndarray:
    """Decode ``path`` to float32 at ``sample_rate`` Hz.

    Returns shape ``(samples,)`` when ``mono`` (channels averaged), else ``(channels, samples)``.
    Raises :class:`MaestroError` for a missing, empty, unreadable or corrupt file, and for a silent one
    (peak at or below :data:`SILENCE_PEAK`) unless ``allow_silent``. A truncated WAV (its header announces more
    than the file holds) is read as far as it goes, with a warning giving both lengths; silent, it is an error
    that says it is truncated.
    """
    path = Path(path)
    info = probe_audio(path)
    channels = 1 if mono else info.channels
    expected = -(-info.frames * sample_rate // info.sample_rate) + 64  # the output length, plus slack
    audio = np.empty((expected, channels), dtype=np.float32)  # filled in place: peak memory ~ the result
    filled = 0
    for block in audio_blocks(path, sample_rate, mono, info):
        if filled + len(block) > len(audio):
            audio = np.concatenate([audio[:filled], np.empty((len(block) + expected // 8, channels),
                                                             dtype=np.float32)])
        audio[filled:filled + len(block)] = block
        filled += len(block)
    if not filled:
        raise MaestroError("audio file holds no samples (zero length)", path)
    audio = audio[:filled, 0] if mono else np.ascontiguousarray(audio[:filled].T)
    if not np.isfinite(np.sum(audio, dtype=np.float64)):  # no temporary copies of a long recording
        raise MaestroError("audio holds NaN or infinite samples", path)
    silent = max(float(audio.max()), -float(audio.min())) <= SILENCE_PEAK
    if info.truncation():
        if silent and not allow_silent:
            raise MaestroError(f"{info.truncation()}, silent up to there", path)
        warn_if_truncated(path, info)
    if silent and not allow_silent:
        raise MaestroError("audio is silent (peak at or below -80 dBFS)", path)
    return audio
