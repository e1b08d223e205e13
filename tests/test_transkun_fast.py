"""transkun's fast inference path (plugin maestro-transkun, option ``path=fast``, the default) against transkun's own
code (``path=reference``) with the real packaged weights, on a real MAPS recording."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from maestro_cli.audio.io import load_audio

pytest.importorskip("maestro_transkun")
pytest.importorskip("transkun")

import torch  # noqa: E402
from maestro_transkun import SAMPLE_RATE, fast  # noqa: E402

from maestro_cli.errors import MaestroError, UsageError  # noqa: E402
from maestro_cli.registry import create_backend  # noqa: E402

MAPS = "MAPS_MUS-chpn-p14_ENSTDkAm"
SECONDS = 8.0


@pytest.fixture(scope="module")
def audio(shared_data):
    """The first 8 s of a real, pedalled MAPS Disklavier recording at 44.1 kHz (3 windows of 16 s, 8 s hop)."""
    return load_audio(shared_data / "maps-disklavier" / "flac" / f"{MAPS}.flac", SAMPLE_RATE)[
        :int(SECONDS * SAMPLE_RATE)]


@pytest.fixture(scope="module")
def paths(audio, tmp_path_factory):
    """Notes, pedals and candidates of both paths, and the fast path's plain transcription streamed from a file
    (which skips the last window, all padding)."""
    wav = tmp_path_factory.mktemp("transkun-fast") / "clip.wav"
    soundfile.write(wav, audio, SAMPLE_RATE, subtype="FLOAT")
    results = {}
    for path in ("fast", "reference"):
        transcriber = create_backend("transcriber", "transkun", [f"path={path}"])
        candidates: list = []
        notes, pedals = transcriber.events(audio, candidates)
        results[path] = [notes, pedals, np.concatenate(candidates)]
        if path == "fast":
            results[path] += transcriber.events(fast.AudioStream(wav, SAMPLE_RATE))
    return results


@pytest.mark.slow
def test_same_notes_and_pedals(paths):
    fast_notes, fast_pedals, _, plain_notes, plain_pedals = paths["fast"]
    ref_notes, ref_pedals, *_ = paths["reference"]
    assert len(ref_notes) > 100 and len(ref_pedals) >= 10  # the excerpt is busy and pedalled
    for notes, pedals in ((fast_notes, fast_pedals), (plain_notes, plain_pedals)):
        assert len(notes) == len(ref_notes) and len(pedals) == len(ref_pedals)
        assert np.array_equal(notes["pitch"], ref_notes["pitch"])
        assert np.array_equal(notes["velocity"], ref_notes["velocity"])
        for field in ("start_s", "end_s"):  # float rounding only: 1 ms is 1/23 of a frame
            assert np.max(np.abs(notes[field] - ref_notes[field])) < 1e-3
        assert np.max(np.abs(np.asarray(pedals) - np.asarray(ref_pedals))) < 1e-3


@pytest.mark.slow
def test_same_candidates(paths):
    """The semi-CRF candidates (transcribe --score) of both paths agree."""
    fast_rows, ref_rows = paths["fast"][2], paths["reference"][2]
    assert len(fast_rows) == len(ref_rows) > 100
    assert np.array_equal(fast_rows[:, [0, 3]], ref_rows[:, [0, 3]])  # pitch, velocity
    assert np.max(np.abs(fast_rows[:, [1, 2, 4]] - ref_rows[:, [1, 2, 4]])) < 1e-3  # times, probability


def test_viterbi_kernel_equals_transkun_decoder():
    """The compiled decoder gives transkun's TorchScript ``viterbiBackward`` paths, forced starts included."""
    from transkun.CRF.NeuralSemiCRFInterval import viterbiBackward

    generator = torch.Generator().manual_seed(3)
    keys, frames = 7, 120
    by_begin = torch.randn(keys, frames, frames, generator=generator) * 3 - 1
    start = [0, 5, 60, 119, 1, 30, 2]
    ours = fast.IntervalScores(by_begin).decode(forcedStartPos=start)
    theirs = viterbiBackward(by_begin.permute(2, 1, 0).contiguous(), torch.zeros(frames - 1, keys), start)
    assert ours == [list(path) for path in theirs]
    assert sum(map(len, ours)) > 50


def test_interval_scores_equal_transkun_scorer():
    """The scores computed a few keys at a time in the decoder's layout are transkun's, bit for bit."""
    model = create_backend("transcriber", "transkun", ["path=reference"]).model()
    ctx = torch.randn(1, 90, 300, 256, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        theirs, _ = model.scorer(ctx)
        assert torch.equal(fast.interval_scores(model.scorer, ctx).score, theirs[:, :, 0, :])


def test_stream_reads_what_load_audio_returns(shared_data):
    """Windows read from the stream (16 kHz FLAC resampled block by block) are load_audio's samples."""
    flac = shared_data / "maps-disklavier" / "flac" / f"{MAPS}.flac"
    whole, stream = load_audio(flac, SAMPLE_RATE), fast.AudioStream(flac, SAMPLE_RATE)
    step, segment, pad = 8 * SAMPLE_RATE, 16 * SAMPLE_RATE, 8 * SAMPLE_RATE
    for i in range(0, len(whole) + 2 * pad, step):
        assert np.array_equal(stream.read(max(i - pad, 0), i + segment - pad), whole[max(i - pad, 0):i + segment - pad])
    assert stream.length == len(whole) and stream.peak == np.max(np.abs(whole))


@pytest.mark.slow
def test_silent_recording_is_an_error(tmp_path):
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)
    transcriber = create_backend("transcriber", "transkun", ["hop_seconds=16"])
    with pytest.raises(MaestroError, match="audio is silent"):
        transcriber.transcribe(silent, tmp_path / "silent.mid")


@pytest.mark.slow
def test_silent_window_has_no_interval():
    """The fast path skips the window of pure padding after the end because the model decodes nothing in it."""
    transcriber = create_backend("transcriber", "transkun", [])
    model = transcriber.model()
    from transkun.Util import makeFrame

    frames = makeFrame(torch.zeros(1, 16 * model.fs), model.hopSize, model.windowSize).unsqueeze(0)
    with torch.inference_mode():
        crf, _ = model.processFramesBatch(frames)
        assert all(path == [] for path in crf.decode(forcedStartPos=[0] * len(model.targetMIDIPitch)))


def test_path_option_validated():
    with pytest.raises(UsageError, match="path must be one of fast, reference"):
        create_backend("transcriber", "transkun", ["path=quick"])
