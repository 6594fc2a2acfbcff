"""The Ray engine on a local cluster (issue #17): for every stage, Ray == local on the synthetic data and on ../shared
clips; a worker killed mid-run (an armed `arm_fault`: the worker calls os._exit) and a killed driver lose and duplicate
nothing; a corrupt file among good ones is rejected with its reason. One Ray session (2 CPUs) serves the whole module."""
import os, signal, subprocess, sys, time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray", reason='the Ray extra is not installed (pip install "soundcollage_nb[ray]"); .ci/run installs it')

from soundcollage_nb.core import shared_path
from soundcollage_nb.datasets import make_manifest, write_manifest
from soundcollage_nb.engine import FAULT_ENV, arm_fault
from soundcollage_nb.synth import SynthConfig, write_synth_dataset
from soundcollage_nb.soundcollage.preprocess import preprocess_manifest

ESC = shared_path("data", "esc50-public", "esc50.csv")
TFLITE = shared_path("models", "yamnet", "yamnet.tflite")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    "A local Ray cluster for the module; workers see the fault folder (set before ray.init, so they inherit it)."
    faults = tmp_path_factory.mktemp("faults")
    os.environ[FAULT_ENV] = str(faults)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield faults
    ray.shutdown()
    os.environ.pop(FAULT_ENV, None)


def fired(faults, stage):
    "An armed fault is consumed by the worker that dies of it."
    return not (Path(faults) / f"{stage}.arm").exists()


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    d = tmp_path_factory.mktemp("synth")
    man = write_synth_dataset(d / "synth", 6, seed=0, progress=False, config=SynthConfig(min_duration=5, max_duration=6))
    bad = d / "corrupt.wav"; bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEgarbage" * 20)
    rows = man.to_dict("records")
    rows.insert(3, {**rows[0], "clip_id": "corrupt", "path": str(bad)})      # among the good ones
    return make_manifest(rows)


def esc_clips(n=4, step=37):
    meta = pd.read_csv(ESC).iloc[::step][:n]
    return make_manifest([{"clip_id": f, "path": str(ESC.parent / "audio" / f), "labels": [c]} for f, c in zip(meta.filename, meta.category)])


def same_tables(a: Path, b: Path):
    "Byte-identical CSVs once each run's own output folder is named alike; features equal to float tolerance."
    for name in ("segments.csv", "baseline.csv", "rejected.csv"):
        assert (a / name).read_text().replace(str(a), "OUT") == (b / name).read_text().replace(str(b), "OUT"), name
    for name in ("features.npy", "baseline_features.npy"):
        x, y = np.load(a / name).astype(np.float32), np.load(b / name).astype(np.float32)
        assert x.shape == y.shape, name
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-3 * max(1.0, np.abs(x).max()))


def _slow_square(xs):
    "Later items finish first: item i sleeps (12 - i) x 40 ms."
    time.sleep((12 - xs[0]) * 0.04)
    return [x * x for x in xs]


def test_ray_map_order_and_killed_worker(cluster):
    from soundcollage_nb.engine import Stage, ray_map
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])      # workers cannot import this test module
    arm_fault(cluster, "_slow_square")
    seen = []
    assert ray_map(list(range(12)), [Stage(_slow_square)], on_result=lambda i, r: seen.append(i)) == [i * i for i in range(12)]
    assert fired(cluster, "_slow_square") and sorted(seen) == list(range(12))      # each item once


# ---------------------------------------------------------------- pre-processing
def test_preprocess_synthetic_killed_worker(cluster, synth, tmp_path):
    local = preprocess_manifest(synth, tmp_path / "local", batch_size=2, progress=False, device="cpu")
    arm_fault(cluster, "segment")                              # a CPU task's worker dies mid-run
    r = preprocess_manifest(synth, tmp_path / "ray", batch_size=2, progress=False, device="cpu", engine="ray")
    assert fired(cluster, "segment")
    same_tables(tmp_path / "local", tmp_path / "ray")
    assert r.rejected.clip_id.tolist() == ["corrupt"] and "corrupt.wav" in r.rejected.path[0]
    assert "not a readable audio file" in r.rejected.reason[0]
    assert r.baseline.clip_id.tolist() == [c for c in synth.clip_id if c != "corrupt"]    # each clip once, in manifest order
    assert len(list((tmp_path / "ray" / "cache").glob("*.npz"))) == len(local.baseline)


@pytest.mark.skipif(ESC is None, reason="../shared/data/esc50-public not found")
def test_preprocess_shared_clips(cluster, tmp_path):
    clips = esc_clips()
    preprocess_manifest(clips, tmp_path / "local", batch_size=3, progress=False, device="cpu")
    arm_fault(cluster, "separate")
    preprocess_manifest(clips, tmp_path / "ray", batch_size=3, progress=False, device="cpu", engine="ray")
    assert fired(cluster, "separate")
    same_tables(tmp_path / "local", tmp_path / "ray")


def test_preprocess_killed_driver_resumes(cluster, synth, tmp_path):
    "A driver killed mid-run (SIGKILL): the rerun recomputes only the missing clips, and the tables equal a local run."
    out = tmp_path / "ray"
    man = write_manifest(synth, tmp_path / "man.csv")
    address = ray.get_runtime_context().gcs_address
    code = (f"from soundcollage_nb.soundcollage.preprocess import preprocess_manifest as p; import pandas as pd\n"
            f"from soundcollage_nb.datasets import read_manifest\n"
            f"p(read_manifest({str(man)!r}), {str(out)!r}, batch_size=1, progress=False, device='cpu', engine='ray', ray_address={address!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=open(tmp_path / "driver.log", "w"))
    t0 = time.time()
    while time.time() - t0 < 300 and len(list((out / "cache").glob("*.npz"))) < 2 and proc.poll() is None: time.sleep(0.1)
    proc.send_signal(signal.SIGKILL); proc.wait()
    time.sleep(1.0)                                            # let the dead job's tasks be cancelled
    before = {p.name: p.stat().st_mtime_ns for p in (out / "cache").glob("*.npz")}
    assert 0 < len(before) < 6, (before, (tmp_path / "driver.log").read_text()[-3000:])                        # killed part-way
    preprocess_manifest(synth, out, batch_size=1, progress=False, device="cpu", engine="ray")
    after = {p.name: p.stat().st_mtime_ns for p in (out / "cache").glob("*.npz")}
    assert len(after) == 6 and all(after[k] == v for k, v in before.items())   # finished clips were not recomputed
    preprocess_manifest(synth, tmp_path / "local", batch_size=1, progress=False, device="cpu")
    same_tables(tmp_path / "local", out)


def test_preprocess_cli(cluster, synth, tmp_path):
    man = write_manifest(synth, tmp_path / "man.csv")
    exe = Path(sys.executable).parent / "soundcollage"
    r = subprocess.run([str(exe), "preprocess", str(man), "--out", str(tmp_path / "cli"), "--batch-size", "2", "--device", "cpu",
                        "--engine", "ray", "--ray-address", ray.get_runtime_context().gcs_address, "--quiet"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "1 rejected" in r.stdout
    preprocess_manifest(synth, tmp_path / "local", batch_size=2, progress=False, device="cpu")
    same_tables(tmp_path / "local", tmp_path / "cli")


# ---------------------------------------------------------------- naming
@pytest.mark.skipif(TFLITE is None or ESC is None, reason="../shared YAMNet .tflite or ESC-50 clips not found")
def test_ray_labeler_equals_local(cluster, synth):
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert (the YAMNet .tflite runtime) is not installed")
    from soundcollage_nb.audio import load_audio
    from soundcollage_nb.soundcollage.labeling import RayLabeler, default_labeler
    spec = f"yamnet-tflite:{TFLITE}"
    waves = [load_audio(p, 16000) for p in esc_clips(5).path] + [load_audio(p, 16000) for p in synth.path if "corrupt" not in p][:3]
    valid = [None] * 7 + [(8000, 16000)]                       # the last one: only its real part counts
    ref = default_labeler(spec).label(waves, 16000, valid)
    arm_fault(cluster, "label")                                # the actor holding YAMNet dies; Ray restarts it
    lab = RayLabeler(spec, batch_size=3)
    got = lab.label(waves, 16000, valid)
    assert fired(cluster, "label")
    pd.testing.assert_frame_equal(got[["sample", "rank", "label"]], ref[["sample", "rank", "label"]])
    np.testing.assert_allclose(got.score, ref.score, atol=1e-6)
    assert lab.local_type == "YamnetTFLite" and lab.class_names == default_labeler(spec).class_names


@pytest.mark.skipif(TFLITE is None, reason="../shared YAMNet .tflite not found")
def test_discover_on_ray_names_like_local(cluster, synth, tmp_path):
    "`discover(engine=\"ray\")`: its pre-processing and naming on Ray; every table equal to the local run's."
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert (the YAMNet .tflite runtime) is not installed")
    from soundcollage_nb.soundcollage.pipeline import discover
    kw = dict(labeler=f"yamnet-tflite:{TFLITE}", scale="smoke", device="cpu", n_tasks=2, n_random=2, progress=False, baseline=False,
              downstream=False, epochs=1, inner_steps=2, batch_size=4, heldout_size=4, as_epochs=1, as_batch_size=8)
    discover(synth, tmp_path / "local", **kw)
    arm_fault(cluster, "label")
    r = discover(synth, tmp_path / "ray", engine="ray", **kw)
    assert fired(cluster, "label") and r["labeler"] == "RayLabeler"
    for name in ("tasks.csv", "labels.csv", "clarity.csv", "rejected.csv", "random/labels.csv"):
        a, b = (tmp_path / "local" / name).read_text(), (tmp_path / "ray" / name).read_text()
        assert a.replace(str(tmp_path / "local"), "OUT") == b.replace(str(tmp_path / "ray"), "OUT"), name
    assert "corrupt" in (tmp_path / "ray" / "rejected.csv").read_text()


# ---------------------------------------------------------------- embedding
@pytest.fixture(scope="module")
def teacher():
    try:
        from soundcollage_nb.clap.model import CLAP
        return CLAP.small(seed=0)
    except Exception as e: pytest.skip(f"no CLAP teacher could be built ({type(e).__name__}: {e})")


def test_embed_stores_equal_and_resume(cluster, teacher, synth, tmp_path):
    from soundcollage_nb.clap.embed import embed_audio_store, embed_text_store, load_store
    clips = synth if ESC is None else make_manifest(pd.concat([synth, esc_clips(5)], ignore_index=True))
    embed_audio_store(clips, tmp_path / "a_local", teacher, chunk=3, batch_size=2, progress=False, num_workers=0)
    arm_fault(cluster, "embed_audio")                          # the actor holding the teacher dies mid-store
    embed_audio_store(clips, tmp_path / "a_ray", teacher, chunk=3, batch_size=2, progress=False, num_workers=0,
                      engine="ray", actors=2)
    assert fired(cluster, "embed_audio")
    a, b = load_store(tmp_path / "a_local"), load_store(tmp_path / "a_ray")
    assert a.ids == b.ids and a.meta["dim"] == b.meta["dim"] and b.meta["complete"]
    np.testing.assert_allclose(a.emb.astype(np.float32), b.emb.astype(np.float32), atol=2e-3)
    assert b.rejected.clip_id.tolist() == ["corrupt"] and b.rejected.reason[0]
    assert (tmp_path / "a_local" / "rejected.csv").read_text() == (tmp_path / "a_ray" / "rejected.csv").read_text()
    # a killed run: one shard missing; the rerun writes only it
    (tmp_path / "a_ray" / "shard_00001.npy").unlink()
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "a_ray").glob("shard_*") if not p.name.startswith("shard_00001")}
    embed_audio_store(clips, tmp_path / "a_ray", teacher, chunk=3, batch_size=2, progress=False, num_workers=0, engine="ray")
    now = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "a_ray").glob("shard_*")}
    assert "shard_00001.npy" in now and all(now[k] == v for k, v in stamps.items())
    np.testing.assert_array_equal(load_store(tmp_path / "a_ray").emb, b.emb)
    caps = make_manifest([{"clip_id": f"c{i}", "caption": c} for i, c in enumerate(
        ["a dog barks", "rain on a roof", "", "a car horn honks twice", "birds sing in the morning", "  "])])
    embed_text_store(caps, tmp_path / "t_local", teacher, chunk=2, batch_size=2, progress=False)
    embed_text_store(caps, tmp_path / "t_ray", teacher, chunk=2, batch_size=2, progress=False, engine="ray")
    x, y = load_store(tmp_path / "t_local"), load_store(tmp_path / "t_ray")
    assert x.ids == y.ids == ["c0", "c1", "c3", "c4"] and y.rejected.clip_id.tolist() == ["c2", "c5"]
    np.testing.assert_allclose(x.emb.astype(np.float32), y.emb.astype(np.float32), atol=2e-3)
    # the commands: clap-embed and clap-curate with --engine ray on this cluster give the local results
    import torch
    from dataclasses import asdict
    from soundcollage_nb.clap.model import clap_state
    ck = tmp_path / "teacher.pt"; torch.save({"model": clap_state(teacher), "model_config": asdict(teacher.config)}, ck)
    man = write_manifest(clips, tmp_path / "clips.csv")
    exe, addr = str(Path(sys.executable).parent / "soundcollage"), ray.get_runtime_context().gcs_address
    sh = lambda *a: subprocess.run([exe, *map(str, a)], capture_output=True, text=True, timeout=600)
    r = sh("clap-embed", "--teacher", ck, "--kind", "audio", "--manifest", man, "--out", tmp_path / "a_cli", "--chunk", 3,
           "--batch-size", 2, "--workers", 1, "--device", "cpu", "--engine", "ray", "--ray-address", addr, "--actors", 2, "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    c = load_store(tmp_path / "a_cli")
    assert c.ids == a.ids and c.rejected.clip_id.tolist() == ["corrupt"]
    np.testing.assert_allclose(c.emb.astype(np.float32), a.emb.astype(np.float32), atol=2e-3)
    for engine in ("local", "ray"):
        r = sh("clap-curate", "--strategy", "du", "--threshold", -1, "--top-k", 2, "--audio-store", tmp_path / "a_local",
               "--text-store", tmp_path / "t_local", "--out", tmp_path / f"cur_{engine}", "--device", "cpu", "--block", 4,
               "--engine", engine, "--ray-address", addr, "--quiet")
        assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "cur_local" / "du.csv").read_bytes() == (tmp_path / "cur_ray" / "du.csv").read_bytes()
    assert len(pd.read_csv(tmp_path / "cur_ray" / "du.csv")) == 2 * len(a)


# ---------------------------------------------------------------- curation
def test_curation_partitioned_equals_single_process(cluster):
    from soundcollage_nb.clap.curate import curate_ads, curate_ds, curate_du, normalize_rows, search_pairs
    rng = np.random.default_rng(7)
    A = rng.choice([-0.5, 0.0, 0.5], size=(900, 4)).astype(np.float16)       # many exact ties
    T = rng.choice([-0.5, 0.0, 0.5], size=(250, 4)).astype(np.float16)
    arm_fault(cluster, "search")
    for top_k in (None, 1, 3):
        for max_pairs in (None, 40):
            kw = dict(block=64, key_block=50, device="cpu", max_pairs=max_pairs)
            ref = search_pairs(A, T, 0.5, top_k, **kw)
            got = search_pairs(A, T, 0.5, top_k, engine="ray", part_rows=200, **kw)   # parts of 4 blocks, the last one short
            pd.testing.assert_frame_equal(ref, got)
    assert fired(cluster, "search")
    audio = make_manifest([{"clip_id": f"a{i}", "path": f"/x/a{i}.wav"} for i in range(len(A))])
    text = make_manifest([{"clip_id": f"t{i}", "path": f"/x/t{i}.wav", "caption": f"caption {i}"} for i in range(len(T))])
    du = [curate_du(A, T, audio, text, 0.5, top_k=2, max_pairs=100, block=64, device="cpu", engine=e) for e in ("local", "ray")]
    pd.testing.assert_frame_equal(*du)
    P = normalize_rows(rng.standard_normal((5, 4))).astype(np.float16)
    ds = [curate_ds(T, text, P, list("abcde"), 0.3, block=64, device="cpu", engine=e) for e in ("local", "ray")]
    pd.testing.assert_frame_equal(*ds)
    ads = [curate_ads(A, audio, ds[0], T[ds[0].text_row.to_numpy()], 0.5, top_k=1, block=64, device="cpu", engine=e) for e in ("local", "ray")]
    pd.testing.assert_frame_equal(*ads)
    assert len(du[0]) == 100 and len(ds[0]) and len(ads[0])
