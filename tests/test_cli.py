"""End-to-end checks of the installed `soundcollage` console script (run as a subprocess, as users run it)."""
import shutil, subprocess, sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

EXE = shutil.which("soundcollage", path=str(Path(sys.executable).parent)) or "soundcollage"


def run(*args, cwd=None):
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def tone(path, sr=16000, dur=1.0):
    t = np.arange(int(sr * dur)) / sr
    sf.write(path, 0.3 * np.sin(2 * np.pi * 440 * t), sr)


@pytest.fixture
def broken_folder(tmp_path):
    """Good clips mixed with every kind of broken file named in issue #2."""
    d = tmp_path / "mixed"
    (d / "sub").mkdir(parents=True)
    tone(d / "good.wav"); tone(d / "sub" / "good.flac", sr=44100); tone(d / "stereo.wav")
    sf.write(d / "stereo.wav", np.random.default_rng(0).uniform(-0.5, 0.5, (8000, 2)), 8000)
    (d / "empty.wav").write_bytes(b"")
    (d / "random.wav").write_bytes(np.random.default_rng(1).bytes(5000))
    (d / "truncated.wav").write_bytes((d / "good.wav").read_bytes()[:10000])
    (d / "text.flac").write_text("definitely not audio\n" * 30)
    sf.write(d / "nan.wav", np.array([0.0, np.nan] * 4000, np.float32), 16000, subtype="FLOAT")
    tone(d / "short.wav", dur=0.01)
    return d


@pytest.mark.parametrize("cmd", ["manifest", "synth", "demo", "discover", "paper", "clap-train", "clap-zeroshot", "clap-embed", "clap-curate"])
def test_help(cmd):
    r = run(cmd, "--help")
    assert r.returncode == 0 and "usage: soundcollage " + cmd in r.stdout


def test_manifest_on_broken_folder(broken_folder, tmp_path):
    out = tmp_path / "out" / "manifest.csv"
    r = run("manifest", broken_folder, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr
    good = pd.read_csv(out, dtype=str, keep_default_na=False)
    rejected = pd.read_csv(out.parent / "rejected.csv", dtype=str, keep_default_na=False)
    assert sorted(good.clip_id) == ["good", "stereo", "sub/good"]
    assert good.set_index("clip_id").labels["sub/good"] == '["sub"]'
    reasons = dict(zip(rejected.clip_id, rejected.reason))
    assert sorted(reasons) == ["empty", "nan", "random", "short", "text", "truncated"]
    assert "empty file" in reasons["empty"] and "non-finite" in reasons["nan"]
    assert "truncated" in reasons["truncated"] and "too short" in reasons["short"]
    assert "not a readable audio file" in reasons["random"] and "not a readable audio file" in reasons["text"]
    assert all(str(broken_folder) in p for p in rejected.path)


def test_bad_arguments_fail_with_one_line(tmp_path):
    r = run("manifest", tmp_path / "missing", "--out", tmp_path / "m.csv")
    assert r.returncode != 0 and "missing" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run("synth", "--out", tmp_path / "s", "--n", "-3")
    assert r.returncode != 0 and "--n" in r.stderr
    r = run("nonsense")
    assert r.returncode != 0


def test_synth_is_deterministic(tmp_path):
    for name in ("a", "b"):
        assert run("synth", "--out", tmp_path / name, "--n", 3, "--seed", 11, "--quiet").returncode == 0
    for f in sorted((tmp_path / "a" / "audio").glob("*.flac")):
        assert f.read_bytes() == (tmp_path / "b" / "audio" / f.name).read_bytes()


def test_demo_writes_report(tmp_path):
    r = run("demo", "--out", tmp_path / "demo", "--n", 40, "--quiet")
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "demo" / "report.html").read_text()
    assert "class=\"card\"" in html and (tmp_path / "demo" / "classes.png").stat().st_size > 1000
    assert "Hidden background classes" in (tmp_path / "demo" / "dataset.html").read_text()
    assert len(pd.read_csv(tmp_path / "demo" / "tasks.csv")) == 32
    summary = pd.read_csv(tmp_path / "demo" / "summary.csv").set_index("run")
    assert list(summary.index) == ["soundcollage", "baseline"] and (summary.n_hidden == 6).all()
    assert "hidden classes recovered" in r.stdout


def test_discover_names_with_a_clap_teacher(tmp_path):
    "Issue 18, item 4: a teacher trained by clap-train names the discovered classes (--labeler clap:CKPT,vocab=FILE)."
    assert run("synth", "--out", tmp_path / "s", "--n", 16, "--seed", 3, "--min-duration", 5, "--max-duration", 6, "--quiet").returncode == 0
    man = pd.read_csv(tmp_path / "s" / "manifest.csv")
    hidden = man.hidden_labels.map(lambda s: s.strip("[]").replace('"', "").split(",")[0].strip())
    pairs = pd.DataFrame({"clip_id": man.clip_id, "path": man.path, "caption": [f"a sound of {h}" for h in hidden]})
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    r = run("clap-train", "--train", tmp_path / "pairs.csv", "--out", tmp_path / "teacher", "--epochs", 1, "--batch-size", 4,
            "--width", 0.125, "--text-model", "minilm", "--device", "cpu", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    vocab = sorted(set(hidden)) + ["speech", "music"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    r = run("discover", tmp_path / "s", "--out", tmp_path / "d", "--labeler", f"clap:{tmp_path / 'teacher' / 'best.pt'},vocab={tmp_path / 'vocab.txt'}",
            "--tasks", 2, "--no-baseline", "--device", "cpu", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "named with ClapLabeler" in r.stdout
    labels = pd.read_csv(tmp_path / "d" / "labels.csv")
    assert len(labels) and set(labels.label) <= set(vocab) | {"Silence"}
    assert (labels.groupby(["task", "side", "sample"]).size() <= 10).all()        # top-10 per segment, as for YAMNet
    assert (tmp_path / "d" / "clarity.csv").exists() and (tmp_path / "d" / "report.html").exists()
