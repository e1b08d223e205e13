"""The sound a report page plays: the recording, or a MIDI performance rendered, as compressed mono OGG/Vorbis."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np

#: Sample rate of the page's audio (enough for listening to a spot; a 10-minute piece stays a few MB).
SAMPLE_RATE = 22050
#: Vorbis compression level of soundfile (0: best quality, 1: smallest).
COMPRESSION = 0.6
MIME = "audio/ogg"
#: Frames per write: libsndfile 1.2's Vorbis encoder crashes (SIGSEGV) on one write of minutes of audio.
BLOCK = 1 << 16


def encode(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Mono float samples as OGG/Vorbis bytes."""
    import soundfile

    samples, out = np.asarray(samples, np.float32), io.BytesIO()
    with soundfile.SoundFile(out, "w", sample_rate, 1, format="OGG", subtype="VORBIS",
                             compression_level=COMPRESSION) as sink:
        for start in range(0, len(samples), BLOCK):
            sink.write(samples[start:start + BLOCK])
    return out.getvalue()


def recording(path: Path) -> bytes:
    """A recording, mono at :data:`SAMPLE_RATE`, encoded."""
    from maestro_cli.audio.io import load_audio

    return encode(load_audio(path, SAMPLE_RATE, allow_silent=True))


def rendered(renderer, midi: Path) -> bytes:
    """A MIDI performance rendered by ``renderer`` (a :class:`maestro_cli.protocols.Renderer`), encoded."""
    from maestro_cli.audio.io import load_audio

    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "rendered.wav"
        renderer.render(Path(midi), wav, sample_rate=SAMPLE_RATE, audio_format="wav", soundfont=None)
        return encode(load_audio(wav, SAMPLE_RATE, allow_silent=True))
