"""Onsets and Frames: decoding, chunked inference, a tiny model that overfits a rendered clip, checkpoints, resume."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from maestro_cli.models import onsets_frames as of  # noqa: E402
from maestro_cli.models import onsets_frames_train as oft  # noqa: E402
from maestro_cli.symbolic.notes import from_rows, to_rows  # noqa: E402

CONFIG = of.PRESETS["tiny"]
FPS = CONFIG.frame_rate


def _posteriors(frames: int = 100):
    return (np.zeros((frames, of.N_KEYS), np.float32), np.zeros((frames, of.N_KEYS), np.float32),
            np.full((frames, of.N_KEYS), 0.5, np.float32))


# ---------------------------------------------------------------------------------------------------- decoding

def test_decode_onset_and_frame_thresholds():
    onset, frame, velocity = _posteriors()
    key = 60 - of.MIN_MIDI
    onset[10, key] = 0.9
    frame[10:30, key] = 0.8
    velocity[10, key] = 80 / 128
    onset[50, key + 1] = 0.45  # below the onset threshold: no note however long the frames
    frame[50:70, key + 1] = 0.9
    notes = of.decode_notes(onset, frame, velocity, CONFIG)
    assert to_rows(notes).tolist() == [[10 / FPS, 30 / FPS, 60, 80]]
    lower = dataclasses.replace(CONFIG, onset_threshold=0.4, frame_threshold=0.85)
    notes = of.decode_notes(onset, frame, velocity, lower)
    assert notes["pitch"].tolist() == [60, 61]
    assert notes["end_s"][0] == pytest.approx(11 / FPS)  # frames at 0.8 no longer hold the first note
    assert notes["end_s"][1] == pytest.approx(70 / FPS)


def test_decode_minimum_length_and_repeated_notes():
    onset, frame, velocity = _posteriors()
    onset[5, 0] = 0.9  # a one-frame blip
    onset[20, 1] = onset[30, 1] = 0.9  # the same key struck twice while the frame head stays on
    frame[20:45, 1] = 0.9
    notes = of.decode_notes(onset, frame, velocity, CONFIG)
    assert to_rows(notes)[:, :3].tolist() == [[5 / FPS, 6 / FPS, 21], [20 / FPS, 30 / FPS, 22],
                                              [30 / FPS, 45 / FPS, 22]]
    notes = of.decode_notes(onset, frame, velocity, dataclasses.replace(CONFIG, min_frames=2))
    assert notes["pitch"].tolist() == [22, 22]
    onset[21, 1] = 0.95  # an onset held over two frames is one note, not two
    assert len(of.decode_notes(onset, frame, velocity, CONFIG)) == 3


def test_labels_from_notes():
    notes = from_rows(np.array([[-0.5, 0.3, 60, 64], [1.0, 1.5, 21, 100], [0.2, 0.4, 10, 50]], np.float32))
    labels = of.labels_from_notes(notes, 64, FPS)
    key = 60 - of.MIN_MIDI
    assert labels["frame"][:round(0.3 * FPS), key].all() and labels["onset"][:, key].sum() == 0
    assert labels["onset"][round(FPS), 0] == 1 and labels["velocity"][round(FPS), 0] == pytest.approx(100 / 128)
    assert labels["offset"][round(1.5 * FPS), 0] == 1
    assert sum(v.sum() for v in labels.values()) == pytest.approx(round(0.3 * FPS) + 1 + 100 / 128 + 1
                                                                  + round(0.5 * FPS) + 1)  # pitch 10 ignored


# ---------------------------------------------------------------------------------------------------- chunking

@pytest.mark.parametrize("total,chunk,overlap", [(1, 10, 2), (100, 10, 2), (101, 30, 7), (1000, 625, 93)])
def test_chunk_plan_tiles_every_frame_once(total, chunk, overlap):
    plans = of.plan_chunks(total, chunk, overlap)
    kept = np.concatenate([np.arange(p.keep_start, p.keep_stop) for p in plans])
    assert kept.tolist() == list(range(total))
    for p in plans:
        assert p.stop - p.start <= chunk
        assert p.keep_start - p.start >= min(overlap, p.keep_start)  # left context unless at the start
        assert p.stop - p.keep_stop >= (overlap if p.stop < total else 0)


def test_mel_of_a_slice_equals_slice_of_the_mel():
    audio = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1
    front = of.LogMel(CONFIG)
    full = front(torch.from_numpy(audio)[None])[0]
    assert full.shape == (of.n_frames(len(audio), CONFIG), CONFIG.n_mels)
    for start, stop in ((0, 7), (10, 40), (80, full.shape[0])):
        piece = torch.from_numpy(of.audio_slice_for_frames(audio, start, stop, CONFIG))[None]
        assert torch.allclose(front(piece, padded=True)[0], full[start:stop], atol=1e-4)


class _EnergyModel(of.OnsetsFrames):
    """Frame-wise stand-in: key A4 sounds while the mel energy is high; its onset is the first loud frame."""

    def posteriors(self, mel):
        loud = (mel.max(dim=-1).values > 0.0).float()  # (B, T)
        rise = loud * (1 - torch.nn.functional.pad(loud, (1, 0))[:, :-1])
        out = {name: torch.zeros(*mel.shape[:2], of.N_KEYS) for name in self.HEADS}
        out["frame"][..., 69 - of.MIN_MIDI] = loud
        out["onset"][..., 69 - of.MIN_MIDI] = rise
        out["velocity"] += 0.5
        return out


def test_chunk_borders_neither_split_nor_duplicate_notes():
    t = np.arange(16000 * 12) / 16000
    audio = np.where((t > 3.9) & (t < 6.3), np.sin(2 * np.pi * 440 * t), 0.0).astype(np.float32)
    model = _EnergyModel(CONFIG).eval()
    whole = of.posteriors_array(model, audio, chunk_seconds=100, overlap_seconds=1)
    chunked = of.posteriors_array(model, audio, chunk_seconds=2.0, overlap_seconds=0.5)  # borders inside the tone
    for name in whole:
        assert np.array_equal(whole[name], chunked[name])
    notes = of.decode_notes(chunked["onset"], chunked["frame"], chunked["velocity"], CONFIG)
    assert len(notes) == 1 and notes["pitch"][0] == 69
    assert notes["start_s"][0] == pytest.approx(3.9, abs=0.07) and notes["end_s"][0] == pytest.approx(6.3, abs=0.1)


# ---------------------------------------------------------------------------------------------------- tiny model

@pytest.fixture(scope="module")
def clip(maestro_root):
    """Ten seconds of a MAESTRO performance rendered with the default soundfont, and its notes."""
    from maestro_cli.audio.synth import render_midi_to_array
    from maestro_cli.models.onsets_frames_data import excerpt
    from maestro_cli.symbolic.midi import midi_bytes, read_midi

    midi = sorted((maestro_root / "2004").glob("*.midi"))[0]
    notes = excerpt(read_midi(midi).sounding(), 30.0, 10.0)
    notes = notes[notes["start_s"] >= 0]
    audio = render_midi_to_array(midi_bytes(notes), None, of.SAMPLE_RATE, tail=0.0)[:160000]
    return np.pad(audio, (0, 160000 - len(audio))), notes


@pytest.fixture(scope="module")
def overfit(clip):
    """The tiny preset trained on the clip until its note F1 reaches 0.9 (at most 300 steps)."""
    from maestro_cli.metrics.transcription import evaluate_notes

    audio, notes = clip
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = of.OnsetsFrames(CONFIG)
    mel = model.mel(torch.from_numpy(audio)[None])[0]
    labels = of.labels_from_notes(notes, len(mel), FPS)
    crop = len(mel) // 4  # four quarters as a batch: a quarter of the sequential LSTM steps
    batch = mel[:4 * crop].reshape(4, crop, -1)
    target = {k: torch.from_numpy(v[:4 * crop].reshape(4, crop, -1)) for k, v in labels.items()}
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    f1 = 0.0
    for step in range(1, 301):
        loss = of.loss_fn(model(batch), target)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= 100 and step % 25 == 0:
            f1 = evaluate_notes(notes, of.transcribe_array(model, audio))["note_f1"]
            model.train()
            if f1 >= 0.95:
                break
    return model.eval(), f1


@pytest.mark.slow
def test_tiny_model_overfits_a_rendered_clip(overfit):
    assert overfit[1] >= 0.9


@pytest.mark.slow
def test_chunked_inference_agrees_with_a_single_pass(overfit, clip):
    from maestro_cli.metrics.transcription import evaluate_notes

    model, audio = overfit[0], clip[0]
    single = of.posteriors_array(model, audio, chunk_seconds=60)
    chunked = of.posteriors_array(model, audio, chunk_seconds=5, overlap_seconds=1.5)
    notes = [of.decode_notes(p["onset"], p["frame"], p["velocity"], CONFIG) for p in (single, chunked)]
    assert len(notes[0]) > 50
    assert evaluate_notes(notes[0], notes[1])["note_f1"] >= 0.97


def test_checkpoint_round_trip_and_backend(overfit, clip, tmp_path):
    import soundfile

    from maestro_cli.backends.onsets_frames import OnsetsFramesOptions, OnsetsFramesTranscriber
    from maestro_cli.metrics.transcription import evaluate_notes
    from maestro_cli.symbolic.midi import read_midi, read_notes

    model, (audio, notes) = overfit[0], clip
    oft.save_atomic(of.checkpoint_dict(model, step=7), tmp_path / "model.pt")
    loaded = of.load_model(tmp_path / "model.pt")
    mel = model.mel(torch.from_numpy(audio[:32000])[None])
    for name, value in model.posteriors(mel).items():
        assert torch.equal(value, loaded.posteriors(mel)[name])
    soundfile.write(tmp_path / "clip.wav", audio, of.SAMPLE_RATE)
    backend = OnsetsFramesTranscriber(OnsetsFramesOptions(checkpoint=str(tmp_path), chunk_seconds=5, threads=1))
    backend.transcribe(tmp_path / "clip.wav", tmp_path / "clip.mid", notes_csv=tmp_path / "clip.csv")
    assert evaluate_notes(notes, read_midi(tmp_path / "clip.mid").notes)["note_f1"] >= 0.9
    assert np.allclose(to_rows(read_notes(tmp_path / "clip.csv"))[:, [0, 2, 3]],
                       to_rows(read_midi(tmp_path / "clip.mid").notes)[:, [0, 2, 3]], atol=2e-3)


def test_bad_checkpoint_is_a_clear_error(tmp_path):
    from maestro_cli.backends.onsets_frames import OnsetsFramesOptions, OnsetsFramesTranscriber
    from maestro_cli.errors import MaestroError

    (tmp_path / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(MaestroError, match="not an onsets-frames checkpoint"):
        OnsetsFramesTranscriber(OnsetsFramesOptions(checkpoint=str(tmp_path / "model.pt"))).model()
    with pytest.raises(MaestroError, match="no checkpoint"):
        OnsetsFramesTranscriber(OnsetsFramesOptions(checkpoint=str(tmp_path / "missing.pt"))).model()


# ---------------------------------------------------------------------------------------------------- training

def _excerpts(clip) -> oft.Excerpts:
    from maestro_cli.models.onsets_frames_data import log_mel

    audio, notes = clip
    rows = to_rows(notes)  # as the cache stores them: float32 rows
    return oft.Excerpts([log_mel(audio[:80000]), log_mel(audio[80000:])],
                        [from_rows(rows.astype(np.float32)), from_rows((rows - [5, 5, 0, 0]).astype(np.float32))])


def test_resume_continues_exactly(clip, tmp_path):
    data = _excerpts(clip)
    cfg = dict(preset="tiny", batch_size=2, seq_frames=64, eval_every=3, log_every=1, warmup=2, threads=1)
    straight = oft.train(data, data, tmp_path / "a", oft.TrainConfig(steps=4, **cfg))
    oft.train(data, data, tmp_path / "b", oft.TrainConfig(steps=2, **cfg))
    oft.train(data, data, tmp_path / "b", oft.TrainConfig(steps=4, **cfg), resume=True)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 4 and straight.name == "best.pt"
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    assert [e["step"] for e in b["log"] if e["kind"] == "val"] == [2, 3, 4]
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        oft.train(data, data, tmp_path / "c", oft.TrainConfig(steps=4, **cfg), resume=True)


def test_snapshots_keep_weights_only(clip, tmp_path):
    data = _excerpts(clip)
    cfg = oft.TrainConfig(preset="tiny", batch_size=2, seq_frames=64, eval_every=2, snapshot_every=2, steps=4,
                          threads=1)
    oft.train(data, data, tmp_path, cfg)
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["step2.pt", "step4.pt"]
    snapshot = torch.load(tmp_path / "snapshots" / "step4.pt", weights_only=True)
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    assert "optimizer" not in snapshot and snapshot["step"] == 4
    assert all(torch.equal(value, last["model"][name]) for name, value in snapshot["model"].items())
    assert of.load_model(tmp_path / "snapshots" / "step4.pt").config == of.load_model(tmp_path / "last.pt").config


def test_random_batch_targets_follow_the_crop(clip):
    data = _excerpts(clip)
    cfg = oft.TrainConfig(batch_size=4, seq_frames=100)
    mel, labels = oft.random_batch(data, cfg, FPS, np.random.default_rng(0))
    assert mel.shape == (4, 100, CONFIG.n_mels) and labels["onset"].shape == (4, 100, of.N_KEYS)
    assert labels["onset"].sum() > 0 and bool((labels["frame"] >= labels["onset"]).all())


@pytest.mark.slow
def test_cli_trains_on_synthesized_midi_and_resumes_with_the_runs_options(maestro_root, tmp_path):
    from tests.helpers import run_maestro

    out, cache = tmp_path / "run", tmp_path / "cache"
    first = run_maestro("train", "onsets-frames", "--data", str(maestro_root), "--out", str(out), "--steps", "2",
                        "-O", "synthesize=true", "-O", f"cache={cache}", "-O", "preset=tiny", "-O", "max_pieces=2",
                        "-O", "excerpts_per_piece=1", "-O", "validation_pieces=1", "-O", "batch_size=2",
                        "-O", "seq_frames=64", "-O", "excerpt_seconds=4")
    assert first.code == 0, first.stderr
    assert first.stdout.strip() == str(out / "best.pt")
    assert len(list((cache / "train").glob("*.npz"))) == 2 and len(list((cache / "validation").glob("*.npz"))) == 1
    with np.load(next((cache / "train").glob("*.npz"))) as excerpt:
        assert excerpt["mel"].dtype == np.float16 and excerpt["mel"].shape == (of.n_frames(4 * 16000, CONFIG), 229)
        assert len(excerpt["notes"]) > 0 and excerpt["notes"][:, 1].max() <= 4.0
    again = run_maestro("train", "onsets-frames", "--data", str(maestro_root), "--out", str(out), "--steps", "3",
                        "--resume")
    assert again.code == 0, again.stderr
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["step"] == 3 and state["train_config"]["preset"] == "tiny"
    assert state["train_config"]["cache"] == str(cache) and not (out / "data").exists()
    bad = run_maestro("train", "onsets-frames", "--data", str(maestro_root), "--out", str(tmp_path / "x"),
                      "-O", "presett=tiny")
    assert bad.code == 2 and "unknown option 'presett'" in bad.stderr


def test_mel_augmentation_changes_level_and_colour_but_keeps_the_floor(clip):
    mel = _excerpts(clip).mels[0][:200].astype(np.float32)
    rng = np.random.default_rng(0)
    outs = [oft.augment_mel(mel, rng) for _ in range(8)]
    assert all(out.shape == mel.shape and out.dtype == np.float32 for out in outs)
    assert all(out.min() >= oft.LOG_FLOOR for out in outs)
    shifts = [float(np.mean(out - mel) / oft.DB) for out in outs]  # mean change in dB over the crop
    assert np.ptp(shifts) > 6.0 and max(abs(s) for s in shifts) < 40.0
    # the EQ is smooth: a loud band moves with its neighbour (after removing the mean shift)
    delta = outs[0] - mel
    loud = mel.mean(axis=0) > np.median(mel.mean(axis=0))
    step = np.abs(np.diff(delta.mean(axis=0)))[loud[1:] & loud[:-1]]
    assert float(np.median(step)) < 0.5 * oft.DB
    again = oft.augment_mel(mel, np.random.default_rng(0))
    assert np.array_equal(again, outs[0])  # reproducible from the RNG (exact resume)


def test_held_out_validation_is_rendered_with_the_held_out_soundfont_only(maestro_root, tmp_path, monkeypatch):
    from maestro_cli.models import onsets_frames_data as td

    if not td.HELD_OUT_SOUNDFONT.is_file():
        pytest.skip("fluid-soundfont-gm is not installed")
    config = td.DataConfig(validation_pieces=1, validation_seconds=3.0, max_pieces=1, excerpts_per_piece=1)
    rendered = []
    original = td.make_excerpt
    monkeypatch.setattr(td, "make_excerpt",
                        lambda job, cfg, pianos, out: (rendered.append(pianos), original(job, cfg, pianos, out)))
    td.build_held_out(maestro_root, tmp_path, config)
    td.build_held_out(maestro_root, tmp_path, config)  # incremental: nothing left to render
    assert rendered == [[(td.HELD_OUT_SOUNDFONT, 0)]]
    [(mel, notes)] = list(td.load_split(tmp_path, "validation-held-out"))
    assert mel.shape == (of.n_frames(3 * 16000, CONFIG), 229) and len(notes) > 0
