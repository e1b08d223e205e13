"""maestro render: the embedded ``soundfont`` renderer and the ``fluidsynth`` plugin on generated MIDI files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import symusic
from helpers import run_maestro, write_midi

from maestro_cli.audio.synth import render_midi_to_array
from maestro_cli.errors import MaestroError

SR = 22050
TAIL = 0.5
PEAK = 10 ** (-1 / 20)  # -1 dBFS
ONSETS = [0.25, 0.8, 1.3, 1.9, 2.45]
HAS_FLUIDSYNTH = shutil.which("fluidsynth") is not None
BACKENDS = ["soundfont",
            pytest.param("fluidsynth", marks=pytest.mark.skipif(not HAS_FLUIDSYNTH, reason="fluidsynth not installed"))]


def write_tracks(path: Path, tracks: list[tuple[int, list[tuple[int, float, float, int]]]]) -> Path:
    """A MIDI file with one track per ``(program, notes)``; notes are ``(pitch, start_s, end_s, velocity)``."""
    score = symusic.Score(480)
    score.tempos.append(symusic.Tempo(0, 120.0))
    for program, notes in tracks:
        track = symusic.Track(f"program {program}", program=program)
        for pitch, start, end, velocity in notes:
            track.notes.append(symusic.Note(round(start * 960), round((end - start) * 960), pitch, velocity))
        score.tracks.append(track)
    score.dump_midi(str(path))
    return path


@pytest.fixture(scope="module")
def midis(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("midi")
    return {
        "a4": write_midi(folder / "a4.mid", [(69, 0.0, 1.0, 100)]),
        "onsets": write_midi(folder / "onsets.mid",
                             [(p, t, t + 0.3, 90) for p, t in zip((60, 64, 67, 72, 76), ONSETS)]),
        "velocity": write_midi(folder / "velocity.mid", [(60, 0.0, 1.0, 30), (60, 1.5, 2.5, 120)]),
        "dry": write_midi(folder / "dry.mid", [(60, 0.0, 0.2, 100), (84, 2.8, 3.0, 100)]),
        "pedal": write_midi(folder / "pedal.mid", [(60, 0.0, 0.2, 100), (84, 2.8, 3.0, 100)],
                            pedal=[(0.0, 127), (1.5, 0)]),
        "piano": write_tracks(folder / "piano.mid", [(0, [(60, 0.0, 2.0, 100)])]),
        "organ": write_tracks(folder / "organ.mid", [(19, [(60, 0.0, 2.0, 100)])]),
        "two_tracks": write_tracks(folder / "two_tracks.mid",
                                   [(0, [(69, 0.0, 1.5, 100)]), (40, [(76, 0.0, 1.5, 100)])]),
    }


@pytest.fixture(scope="module", params=BACKENDS)
def rendered(request, midis, tmp_path_factory) -> dict[str, np.ndarray]:
    """Every test MIDI rendered (mono, 22.05 kHz, 0.5 s tail) by one backend in one batch."""
    backend = request.param
    out = tmp_path_factory.mktemp(f"audio-{backend}")
    result = run_maestro("render", *map(str, midis.values()), "--backend", backend, "--out-dir", str(out),
                         "--sample-rate", str(SR), "-O", f"tail={TAIL}", "-O", "channels=1")
    assert result.code == 0, result.stderr
    assert result.stdout.split() == [str(out / f"{name}.wav") for name in midis]
    audio = {}
    for name in midis:
        samples, rate = soundfile.read(out / f"{name}.wav", dtype="float32")
        assert rate == SR and samples.ndim == 1
        audio[name] = samples
    return audio


def rms(audio: np.ndarray, start: float, end: float) -> float:
    return float(np.sqrt(np.mean(audio[int(start * SR):int(end * SR)] ** 2)))


def spectrum(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    magnitude = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return np.fft.rfftfreq(len(audio), 1 / SR), magnitude


def spectral_flux_onsets(audio: np.ndarray, hop: int = 128, n_fft: int = 1024) -> np.ndarray:
    """Onset times (s): peaks of the half-wave rectified log-spectral flux, at least 100 ms apart."""
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(audio, (n_fft // 2, n_fft // 2)), n_fft)[::hop]
    log_mag = np.log1p(100 * np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)))
    flux = np.maximum(np.diff(log_mag, axis=0), 0).sum(axis=1)
    threshold = 0.3 * flux.max()
    peaks = [i for i in range(1, len(flux) - 1)
             if flux[i] >= threshold and flux[i] >= flux[i - 1] and flux[i] > flux[i + 1]]
    onsets: list[int] = []
    for i in sorted(peaks, key=lambda i: -flux[i]):
        if all(abs(i - j) * hop / SR >= 0.1 for j in onsets):
            onsets.append(i)
    return np.sort(np.array(onsets) + 1) * hop / SR  # flux[i] compares frames i and i + 1


@pytest.mark.slow
def test_single_a4_peaks_at_440_hz(rendered):
    freqs, magnitude = spectrum(rendered["a4"][:SR])
    assert abs(freqs[np.argmax(magnitude)] - 440.0) <= 4.4


@pytest.mark.slow
def test_audio_onsets_match_note_onsets_within_30_ms(rendered):
    detected = spectral_flux_onsets(rendered["onsets"])
    assert len(detected) == len(ONSETS), detected
    assert np.max(np.abs(detected - np.array(ONSETS))) <= 0.030, detected


def test_length_is_last_note_end_plus_tail(rendered):
    assert len(rendered["a4"]) == round((1.0 + TAIL) * SR)
    assert len(rendered["onsets"]) == round((ONSETS[-1] + 0.3 + TAIL) * SR)
    assert rms(rendered["a4"], 1.0 + TAIL - 0.05, 1.0 + TAIL) < rms(rendered["a4"], 0.0, 0.5)


def test_peak_normalised_below_full_scale(rendered):
    for name, audio in rendered.items():
        peak = np.abs(audio).max()
        assert peak < 1.0, name
        assert abs(peak - PEAK) < 2e-3, (name, peak)


def test_higher_velocity_is_louder(rendered):
    audio = rendered["velocity"]
    assert rms(audio, 1.5, 2.0) > 2 * rms(audio, 0.0, 0.5)


def test_sustain_pedal_lengthens_the_note(rendered):
    dry, pedal = rendered["dry"], rendered["pedal"]
    # both files share the loudest note (the attack of C4), so the normalisation gain is the same
    assert rms(pedal, 0.0, 0.2) == pytest.approx(rms(dry, 0.0, 0.2), rel=0.05)
    assert rms(pedal, 0.8, 1.2) > 10 * max(rms(dry, 0.8, 1.2), 1e-6)
    assert rms(pedal, 2.2, 2.7) < 0.1 * rms(pedal, 0.8, 1.2)  # lifted at 1.5 s: the note is released


def test_program_changes_the_instrument(rendered):
    def decay(audio):  # level late in the note relative to just after the attack
        return rms(audio, 1.6, 1.9) / rms(audio, 0.1, 0.4)

    assert decay(rendered["organ"]) > 2 * decay(rendered["piano"])


def test_every_track_is_heard(rendered):
    freqs, magnitude = spectrum(rendered["two_tracks"][:int(1.5 * SR)])
    for pitch in (69, 76):
        f0 = 440.0 * 2 ** ((pitch - 69) / 12)
        band = magnitude[(freqs > f0 * 0.98) & (freqs < f0 * 1.02)].max()
        assert band > 0.1 * magnitude.max(), pitch


def test_stereo_flac_at_requested_rate(midis, tmp_path):
    out = tmp_path / "a4.flac"
    result = run_maestro("render", str(midis["a4"]), "-o", str(out), "--format", "flac", "--sample-rate", "32000")
    assert result.code == 0, result.stderr
    info = soundfile.info(out)
    assert (info.format, info.samplerate, info.channels) == ("FLAC", 32000, 2)
    assert info.frames == 2 * 32000  # 1 s note + the default 1 s tail


def test_batch_reports_bad_files_and_renders_the_rest(midis, tmp_path):
    corrupt = tmp_path / "corrupt.mid"
    corrupt.write_bytes(b"MThd\x00\x00\x00\x06garbage")
    empty = write_midi(tmp_path / "empty.mid", [])
    result = run_maestro("render", str(corrupt), str(midis["a4"]), str(empty), "--out-dir", str(tmp_path))
    assert result.code == 1
    assert result.stdout.split() == [str(tmp_path / "a4.wav")]
    errors = result.stderr.splitlines()
    assert any(line.startswith(f"error: {corrupt}: not a readable MIDI file") for line in errors), errors
    assert f"error: {empty}: no notes to render" in errors
    assert soundfile.info(tmp_path / "a4.wav").frames > 0
    assert not (tmp_path / "corrupt.wav").exists() and not (tmp_path / "empty.wav").exists()


def test_missing_or_invalid_soundfont_is_one_error_line(midis, tmp_path):
    missing = tmp_path / "nope.sf2"
    result = run_maestro("render", str(midis["a4"]), "--soundfont", str(missing), "--out-dir", str(tmp_path))
    assert (result.code, result.stderr.strip()) == (1, f"error: {missing}: soundfont not found")
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"not a soundfont")
    result = run_maestro("render", str(midis["a4"]), "--soundfont", str(fake), "--out-dir", str(tmp_path))
    assert (result.code, result.stderr.strip()) == (1, f"error: {fake}: not a SoundFont file (.sf2/.sf3)")
    assert not list(tmp_path.glob("*.wav"))


def test_paths_from_stdin(midis, tmp_path):
    stdin = f"{midis['a4']}\n{midis['velocity']}\n"
    result = run_maestro("render", "--out-dir", str(tmp_path), "--sample-rate", "16000", stdin=stdin)
    assert result.code == 0, result.stderr
    assert result.stdout.split() == [str(tmp_path / "a4.wav"), str(tmp_path / "velocity.wav")]
    assert soundfile.info(tmp_path / "velocity.wav").frames == round(3.5 * 16000)


def test_sample_rate_out_of_range_is_a_usage_error(midis):
    result = run_maestro("render", str(midis["a4"]), "--sample-rate", "1000")
    assert result.code == 2 and "--sample-rate must be between 8000 and 192000" in result.stderr


def test_fluidsynth_missing_binary_message(midis, tmp_path):
    result = run_maestro("render", str(midis["a4"]), "--backend", "fluidsynth", "--out-dir", str(tmp_path),
                         env={"PATH": str(tmp_path)})
    assert result.code == 1
    assert result.stderr.strip() == ("error: fluidsynth not found; install it (e.g. apt-get install fluidsynth) "
                                     "or use --backend soundfont")


@pytest.mark.skipif(not HAS_FLUIDSYNTH, reason="fluidsynth not installed")
def test_fluidsynth_failure_reports_its_exit_status(midis, tmp_path):
    # FluidSynth accepts at most 96 kHz
    result = run_maestro("render", str(midis["a4"]), "--backend", "fluidsynth", "--sample-rate", "192000",
                         "--out-dir", str(tmp_path))
    assert result.code == 1
    assert result.stderr.startswith(f"error: {midis['a4']}: fluidsynth failed (exit status "), result.stderr
    assert "sample-rate" in result.stderr


def test_render_midi_to_array_from_bytes(midis):
    audio = render_midi_to_array(midis["a4"].read_bytes(), sample_rate=16000, tail=0.25)
    assert audio.dtype == np.float32 and audio.shape == (round(1.25 * 16000),)
    assert np.abs(audio).max() == pytest.approx(PEAK, abs=1e-6)
    same = render_midi_to_array(midis["a4"], sample_rate=16000, tail=0.25)
    np.testing.assert_array_equal(audio, same)  # deterministic, and the synth is reset between renders


def test_render_midi_to_array_errors(midis, tmp_path):
    with pytest.raises(MaestroError, match="not a readable MIDI file"):
        render_midi_to_array(b"MThd garbage")
    with pytest.raises(MaestroError, match="no notes to render"):
        render_midi_to_array(write_midi(tmp_path / "empty.mid", []))
    with pytest.raises(MaestroError, match="soundfont not found"):
        render_midi_to_array(midis["a4"], tmp_path / "missing.sf2")


SF3 = Path("/usr/share/sounds/sf3/FluidR3Mono_GM.sf3")


@pytest.mark.skipif(not SF3.is_file(), reason="Debian's fluidr3mono-gm-soundfont is not installed")
def test_sf3_soundfont(midis):
    audio = render_midi_to_array(midis["a4"], SF3, sample_rate=SR, tail=0.0)
    freqs, magnitude = spectrum(audio)
    assert abs(freqs[np.argmax(magnitude)] - 440.0) <= 4.4
