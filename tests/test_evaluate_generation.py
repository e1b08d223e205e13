"""Generation statistics (overlap area, KL), `maestro evaluate generation` and the round trip."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import run_maestro, write_midi

from maestro_cli.backends.generation_metrics import reference_records
from maestro_cli.metrics import generation as gm
from maestro_cli.symbolic.midi import read_midi
from maestro_cli.symbolic.notes import from_rows, sort_notes


def scale(pitches, start=0.0, step=0.25, length=0.2, velocity=64):
    return sort_notes(from_rows([(start + i * step, start + i * step + length, p, velocity)
                                 for i, p in enumerate(pitches)]))


def test_identical_sets_overlap_one_kl_zero():
    piece = scale([60, 62, 64, 65, 67, 69, 71, 72] * 5, velocity=80)
    other = scale([48, 55, 52, 60] * 8, step=0.5, length=1.0, velocity=40)
    report = gm.compare([piece, other], [piece, other])
    for name, row in report["features"].items():
        assert row["overlap"] == pytest.approx(1.0), name
        assert row["kl"] == pytest.approx(0.0, abs=1e-9), name
    assert report["summary"] == {"overlap_mean": pytest.approx(1.0), "kl_mean": pytest.approx(0.0, abs=1e-9)}


def test_disjoint_pitch_classes_overlap_near_zero():
    white = scale([60, 62, 64, 65, 67, 69, 71] * 4)  # C major
    black = scale([61, 63, 66, 68, 70] * 4)  # the black keys
    row = gm.compare([black], [white])["features"]["pitch_class"]
    assert row["overlap"] < 1e-9
    assert row["kl"] > 10  # every reference bin is missed: about log(1/EPSILON) nats
    # same rhythm and velocity: those features still agree
    assert gm.compare([black], [white])["features"]["velocity"]["overlap"] == pytest.approx(1.0)


def test_overlap_and_kl_on_known_histograms():
    p, q = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    assert gm.overlap_area(p, q) == pytest.approx(0.75)
    assert gm.kl_divergence(p, q) == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), rel=1e-4)
    assert gm.kl_divergence(q, p) != pytest.approx(gm.kl_divergence(p, q))  # not symmetric
    assert gm.histogram(np.array([0.0, 1.0, 99.0]), np.array([0.0, 0.5, 1.5, 2.5])).tolist() == [1 / 3, 1 / 3, 1 / 3]


def test_feature_samples_on_hand_made_notes():
    notes = sort_notes(from_rows([(0.0, 1.0, 60, 50), (0.0, 0.5, 64, 70), (0.5, 1.5, 72, 90), (5.0, 5.1, 48, 10)]))
    assert gm.inter_onset_intervals(notes).tolist() == [0.0, 0.5, 4.5]
    assert gm.durations(notes).tolist() == pytest.approx([1.0, 0.5, 1.0, 0.1])
    assert gm.pitch_classes(notes).tolist() == [0, 4, 0, 0]
    assert gm.pitch_ranges(notes).tolist() == [12.0, 0.0]  # window [0, 4): 60..72, window [4, 8): 48
    assert gm.note_densities(notes).tolist() == [3 / gm.WINDOW_S]  # the partial last window is left out
    poly = gm.polyphony(notes)
    step = gm.POLYPHONY_STEP_S
    assert poly[0] == 2 and poly[round(0.75 / step)] == 2 and poly[round(1.25 / step)] == 1
    assert poly[round(3.0 / step)] == 0 and poly.max() == 2


def test_sounding_notes_apply_sustain(tmp_path):
    midi = write_midi(tmp_path / "pedal.mid", [(60, 0.0, 0.5, 80), (64, 2.5, 3.0, 80)], pedal=[(0.2, 127), (2.0, 0)])
    notes = read_midi(midi).sounding()
    assert notes["pitch"].tolist() == [60, 64]
    assert gm.durations(notes) == pytest.approx([2.0, 0.5], abs=2e-3)  # held by the pedal until 2.0 s


def test_chopin_against_test_split(maestro_root):
    chopin = [r for r in reference_records(maestro_root, "train", 0) if "Chopin" in r.composer][:2]
    generated = [read_midi(r.midi_path).sounding() for r in chopin]
    reference = [read_midi(r.midi_path).sounding() for r in reference_records(maestro_root, "test", 12)]
    report = gm.compare(generated, reference)
    for name, row in report["features"].items():
        assert 0 < row["overlap"] <= 1, name
        assert row["kl"] >= 0, name
        assert row["generated"]["n"] > 0 and row["reference"]["n"] > row["generated"]["n"] / 10, name
    # real performances resemble each other: well above chance, but not the same
    assert 0.5 < report["summary"]["overlap_mean"] < 1


def test_reference_sample_is_seeded_and_capped(maestro_root):
    first = reference_records(maestro_root, "test", 10)
    assert len(first) == 10 and [r.midi_path for r in first] == [r.midi_path for r in
                                                                   reference_records(maestro_root, "test", 10)]
    assert len(reference_records(maestro_root, "test", 0)) == 177  # all of the v3 test split
    assert all(r.split == "test" for r in first)


def _two_pieces(tmp_path: Path) -> list[str]:
    a = write_midi(tmp_path / "a.mid", [(60 + i % 12, i * 0.2, i * 0.2 + 0.3, 40 + i) for i in range(60)],
                   pedal=[(1.0, 100), (3.0, 0)])
    b = write_midi(tmp_path / "b.mid", [(48 + i % 24, i * 0.1, i * 0.1 + 0.15, 90) for i in range(80)])
    return [str(a), str(b)]


@pytest.mark.slow
def test_cli_json_and_plot(tmp_path, maestro_root):
    from PIL import Image

    inputs = _two_pieces(tmp_path)
    plot = tmp_path / "dist.png"
    result = run_maestro("evaluate", "generation", *inputs, "--dataset", str(maestro_root), "--reference-pieces",
                         "5", "--plot", str(plot), "--json")
    assert result.code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert report["generated"] == {"files": 2, "notes": 140}
    assert report["reference"]["pieces"] == 5 and report["split"] == "test"
    assert set(report["features"]) == set(gm.FEATURES)
    for row in report["features"].values():
        assert 0 <= row["overlap"] <= 1 and row["kl"] >= 0
        assert sum(row["generated_hist"]) == pytest.approx(1.0)
    assert report["summary"]["overlap_mean"] == pytest.approx(
        np.mean([r["overlap"] for r in report["features"].values()]))
    image = np.asarray(Image.open(plot).convert("L"), dtype=np.float64)
    assert image.shape == (600, 1400) and image.var() > 0
    again = run_maestro("evaluate", "generation", *inputs, "--dataset", str(maestro_root), "--plot", str(plot))
    assert again.code == 1 and again.stderr.strip() == f"error: {plot}: output exists; use --overwrite to replace it"


def test_cli_table_reads_stdin(tmp_path, maestro_root):
    inputs = _two_pieces(tmp_path)
    result = run_maestro("evaluate", "generation", "--dataset", str(maestro_root), "--reference-pieces", "3",
                         stdin="\n".join(inputs) + "\n")
    assert result.code == 0, result.stderr
    assert "2 file(s) (140 notes) vs 3 test pieces" in result.stdout
    for label in ("pitch class", "IOI", "polyphony", "overlap", "mean"):
        assert label in result.stdout


def test_cli_errors(tmp_path, maestro_root):
    missing = run_maestro("evaluate", "generation", str(tmp_path / "nope.mid"), "--dataset", str(maestro_root))
    assert missing.code == 1 and missing.stderr.strip() == f"error: {tmp_path / 'nope.mid'}: no such file"
    nothing = run_maestro("evaluate", "generation", "--dataset", str(maestro_root))
    assert nothing.code == 2 and "no input given" in nothing.stderr


# --- the round trip -------------------------------------------------------------------------------------------


class EchoGenerator:
    """A stand-in generator: n pieces of a known melody."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path

    def generate(self, request):
        pieces = []
        for i in range(request.n):
            path = write_midi(self.tmp_path / f"gen{i}.mid",
                              [(60 + (j * 5 + i) % 24, j * 0.25, j * 0.25 + 0.2, 70)
                               for j in range(int(request.seconds * 4))])
            pieces.append(path.read_bytes())
        return pieces


class CopyRenderer:
    """'Renders' by copying the MIDI bytes, so that the transcriber below can read them back."""

    def render(self, midi, out, *, sample_rate, audio_format, soundfont):
        out.write_bytes(midi.read_bytes())


class CopyTranscriber:
    """A perfect transcriber for CopyRenderer output; with ``keep_every=2`` it misses every other note."""

    def __init__(self, keep_every=1):
        self.keep_every = keep_every

    def transcribe(self, audio, out_midi, *, notes_csv=None):
        from maestro_cli.symbolic.midi import read_midi

        notes = read_midi(audio.read_bytes()).sounding()[::self.keep_every]
        write_midi(out_midi, [(int(n["pitch"]), n["start_s"], n["end_s"], int(n["velocity"])) for n in notes])


def fake_registries(monkeypatch, tmp_path, **stages):
    from maestro_cli import registry

    for stage, backends in stages.items():
        entries = [registry.Backend(name, factory) for name, factory in backends.items()]
        monkeypatch.setitem(registry._registries, stage, registry.Registry(stage, entries))


def test_roundtrip_scores_every_combination(monkeypatch, tmp_path, capsys):
    from maestro_cli.cli.evaluate import run_roundtrip
    from maestro_cli.protocols import GenerationRequest

    fake_registries(monkeypatch, tmp_path,
                    generator={"echo": lambda o: EchoGenerator(tmp_path)},
                    renderer={"copy": lambda o: CopyRenderer()},
                    transcriber={"perfect": lambda o: CopyTranscriber(), "half": lambda o: CopyTranscriber(2)})
    results = run_roundtrip(GenerationRequest(n=2, seconds=3.0), None, None, None, keep=tmp_path / "keep",
                                as_json=True)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == results and len(results) == 2
    perfect, half = results
    assert (perfect["generator"], perfect["renderer"], perfect["transcriber"], perfect["pieces"]) == (
        "echo", "copy", "perfect", 2)
    assert perfect["note_f1"] == perfect["note_offset_f1"] == perfect["note_offset_velocity_f1"] == pytest.approx(1.0)
    assert half["note_f1"] == pytest.approx(2 / 3)  # precision 1, recall 1/2
    assert sorted(p.name for p in (tmp_path / "keep" / "echo" / "copy" / "half").iterdir()) == [
        "piece_00.mid", "piece_01.mid"]
    only = run_roundtrip(GenerationRequest(n=1, seconds=2.0), None, None, ["half"], keep=None, as_json=False)
    assert [r["transcriber"] for r in only] == ["half"]
    assert "note F1" in capsys.readouterr().out


def test_roundtrip_needs_every_stage(monkeypatch, tmp_path):
    from maestro_cli.cli.evaluate import run_roundtrip
    from maestro_cli.errors import NoBackendError, UsageError
    from maestro_cli.protocols import GenerationRequest

    fake_registries(monkeypatch, tmp_path, generator={"echo": lambda o: EchoGenerator(tmp_path)}, renderer={},
                    transcriber={"perfect": lambda o: CopyTranscriber()})
    with pytest.raises(NoBackendError, match="no backend installed for stage 'renderer'"):
        run_roundtrip(GenerationRequest(), None, None, None, keep=None, as_json=True)
    with pytest.raises(UsageError, match="unknown generator backend 'nope'"):
        run_roundtrip(GenerationRequest(), ["nope"], None, None, keep=None, as_json=True)


def test_roundtrip_cli_without_a_generator():
    from maestro_cli.registry import get_registry

    generators = ",".join(backend.plugin for backend in get_registry("generator").backends) or "none"
    result = run_maestro("evaluate", "roundtrip", "-n", "1", "--json", env={"MAESTRO_DISABLE_PLUGINS": generators})
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr.strip() == "error: no backend installed for stage 'generator'"


@pytest.mark.slow
def test_roundtrip_cli_with_installed_backends(tmp_path):
    """End to end with whatever is installed: the standard error for a missing stage or model, else F1 in [0, 1]."""
    from maestro_cli.registry import get_registry

    missing = [stage for stage in ("generator", "renderer", "transcriber") if not get_registry(stage).backends]
    result = run_maestro("evaluate", "roundtrip", "-n", "1", "--seconds", "4", "--json", "--keep", str(tmp_path),
                         timeout=900)
    if missing:
        assert (result.code, result.stdout) == (1, "")
        assert result.stderr.strip() == f"error: no backend installed for stage '{missing[0]}'"
        return
    if "no default generator model installed" in result.stderr:  # until the shipped checkpoint lands
        assert result.code == 1 and result.stdout == ""
        return
    assert result.code == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == len(get_registry("generator").backends) * len(get_registry("renderer").backends) * len(
        get_registry("transcriber").backends)
    for row in rows:
        assert row["pieces"] == 1 and row["seconds"] == 4.0
        for key in ("note_f1", "note_offset_f1", "note_offset_velocity_f1"):
            assert 0 <= row[key] <= 1
        assert (tmp_path / row["generator"] / row["renderer"] / row["transcriber"] / "piece_00.mid").is_file()


@pytest.mark.slow
def test_roundtrip_real_renderer_and_transcriber(monkeypatch, tmp_path, capsys):
    """The installed default renderer and transcriber on a known melody: a real, imperfect but useful F1."""
    from maestro_cli.cli.evaluate import run_roundtrip
    from maestro_cli.protocols import GenerationRequest
    from maestro_cli.registry import get_registry

    renderer, transcriber = get_registry("renderer").get(), get_registry("transcriber").get()
    fake_registries(monkeypatch, tmp_path, generator={"echo": lambda o: EchoGenerator(tmp_path)})
    [row] = run_roundtrip(GenerationRequest(n=1, seconds=4.0), None, [renderer.name], [transcriber.name],
                              keep=None, as_json=True)
    assert (row["renderer"], row["transcriber"], row["pieces"]) == (renderer.name, transcriber.name, 1)
    assert 0.5 < row["note_f1"] <= 1  # 16 clean single notes: any working pair finds most of them
    assert row["note_offset_velocity_f1"] <= row["note_offset_f1"] <= row["note_f1"]


def tiny_root(tmp_path: Path) -> Path:
    """A MAESTRO-layout root with three short pieces (two test, one train)."""
    root = tmp_path / "tiny-maestro"
    (root / "2018").mkdir(parents=True)
    rows = ["canonical_composer,canonical_title,split,year,midi_filename,audio_filename,duration"]
    for i, split in enumerate(("test", "test", "train")):
        write_midi(root / "2018" / f"p{i}.midi", [(50 + (j * 7 + i) % 30, j * 0.15, j * 0.15 + 0.3, 30 + j % 90)
                                                   for j in range(60)], pedal=[(1.0, 127), (2.0, 0)])
        rows.append(f"Frédéric Chopin,Piece {i},{split},2018,2018/p{i}.midi,2018/p{i}.wav,9.0")
    (root / "maestro-v3.0.0.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.mark.slow
def test_checkpoint_nll_on_split(tmp_path):
    """--checkpoint reports NLL per event on the split; an untrained model scores about log(vocabulary size)."""
    import importlib.util

    root = tiny_root(tmp_path)
    checkpoint = tmp_path / "model.pt"
    args = ("evaluate", "generation", "--checkpoint", str(checkpoint), "--dataset", str(root), "--json")
    if importlib.util.find_spec("maestro_cli.models.transformer_train") is None:
        checkpoint.write_bytes(b"")
        result = run_maestro(*args)
        assert result.code == 1 and "needs the transformer generator backend, which is not installed" in result.stderr
        return
    import dataclasses

    import torch

    from maestro_cli.models.transformer import Transformer, preset_config
    from maestro_cli.models.transformer_checkpoint import tokenizer_info
    from maestro_cli.tokens import performance as events

    torch.manual_seed(0)
    config = preset_config("tiny", events.VOCAB_SIZE)
    torch.save({"model": Transformer(config).state_dict(), "config": dataclasses.asdict(config),
                "tokenizer": tokenizer_info(), "step": 0}, checkpoint)
    result = run_maestro(*args, timeout=600)
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    assert "features" not in report  # no generated files given: NLL only
    nll = report["nll"]
    assert nll["pieces"] == 2 and nll["events"] > 200
    assert abs(nll["nll_per_event"] - math.log(events.VOCAB_SIZE)) < 1.0
    assert nll["perplexity"] == pytest.approx(math.exp(nll["nll_per_event"]), rel=1e-6)


class BrokenTranscriber:
    def transcribe(self, audio, out_midi, *, notes_csv=None):
        raise RuntimeError("model weights missing")


def test_roundtrip_reports_a_failing_backend_and_goes_on(monkeypatch, tmp_path, capsys, caplog):
    import typer

    from maestro_cli.cli.evaluate import run_roundtrip
    from maestro_cli.protocols import GenerationRequest

    fake_registries(monkeypatch, tmp_path, generator={"echo": lambda o: EchoGenerator(tmp_path)},
                    renderer={"copy": lambda o: CopyRenderer()},
                    transcriber={"broken": lambda o: BrokenTranscriber(), "perfect": lambda o: CopyTranscriber()})
    with pytest.raises(typer.Exit) as exit_info:
        run_roundtrip(GenerationRequest(n=1, seconds=2.0), None, None, None, keep=None, as_json=True)
    assert exit_info.value.exit_code == 1
    captured = capsys.readouterr()
    [row] = [json.loads(line) for line in captured.out.splitlines()]
    assert row["transcriber"] == "perfect" and row["note_f1"] == pytest.approx(1.0)
    assert "error: transcriber 'broken': RuntimeError: model weights missing" in caplog.text
