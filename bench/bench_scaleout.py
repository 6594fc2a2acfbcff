"""The Ray engine against the local runners, stage by stage, in one run on the same inputs (issue #17).

    .venv/bin/python bench/bench_scaleout.py [--n 32] [--stages preprocess,naming,embed,curate] [--quick]

For each stage: clips (or query rows) per second with the local runner, and with `engine="ray"` on a local Ray of
1 and of 2 CPUs (`ray.init(num_cpus=W)`: W workers). Each Ray figure is the second of two runs in the same session
(warm: worker processes started, modules imported); the first (cold) run and the session start are printed too,
so the overhead can be split into start-up, first-batch imports and the steady state. Outputs go to fresh folders
(nothing is read from a cache). Every Ray result is checked equal to the local one.

Inputs: 10 s clips made of two ESC-50 clips of ../shared, written as FLAC (synthetic 10 s clips without ../shared);
YAMNet .tflite of ../shared for naming (skipped without it); CLAP.small (Cnn14 at 1/8 width + MiniLM) for
embedding; random unit float16 embeddings (d = 512) for the curation search.

RESULT lines: ray_preprocess_speedup_2w (Ray 2 workers / Ray 1 worker, clips/s), ray_overhead_1w (local / Ray 1
worker, both warm: > 1 means Ray is that many times slower on one core), <stage>_clips_per_s_{local,ray1,ray2} for every
stage and preprocess_clips_per_s_local_2proc (the local runner's 2 worker processes); ray_search_worker_peak_mb_block{1024,4096}
(a search worker's peak extra memory, measured inside the worker with `peak_memory`) and
ray_search_worker_peak_growth_4x_queries (the same at 4x the query rows: ~1 when memory is bounded by the block, not the corpus). Every call of a Ray stage starts
its own actor pool (a worker process importing torch / TF-Lite and building the model), so for the actor stages
(naming, embedding) "warm" still includes that start; run OMP_NUM_THREADS=1 so that local and Ray use one thread each.
"""
import argparse, os, platform, shutil, sys, tempfile, time
from pathlib import Path

import numpy as np
import pandas as pd

from soundcollage_nb.audio import load_audio, save_audio
from soundcollage_nb.core import shared_path
from soundcollage_nb.datasets import make_manifest
from soundcollage_nb.synth import SynthConfig, synth_clip

SR = 22050


def write_clips(n, out: Path) -> pd.DataFrame:
    esc = shared_path("data", "esc50-public", "audio")
    rows = []
    files = sorted(esc.glob("*.flac")) if esc else []
    for i in range(n):
        if files:
            a, b = files[(2 * i) % len(files)], files[(2 * i + 1) % len(files)]
            y = np.concatenate([load_audio(a, SR), load_audio(b, SR)])[: 10 * SR]
        else:
            y = synth_clip(i, 0, SynthConfig(min_duration=10, max_duration=10))[0]
        p = out / f"clip{i:03d}.flac"; save_audio(p, np.pad(y, (0, 10 * SR - len(y))), SR)
        rows.append({"clip_id": f"clip{i:03d}", "path": str(p), "labels": []})
    return make_manifest(rows), ("ESC-50 (../shared)" if files else "synthetic")


def clock(fn):
    t = time.perf_counter(); out = fn(); return out, time.perf_counter() - t


class Stages:
    "One callable per stage and engine: run(out_folder) -> comparable result."
    def __init__(self, args, tmp: Path):
        self.tmp, self.args = tmp, args
        self.man, self.source = write_clips(args.n, tmp / "clips")

    def preprocess(self, engine, out):
        from soundcollage_nb.soundcollage.preprocess import preprocess_manifest
        r = preprocess_manifest(self.man, out, batch_size=4, progress=False, device="cpu", engine=engine,
                                workers=self.workers if engine == "local" else 1)
        return r.features.astype(np.float32), len(self.man)

    def naming(self, engine, out):
        from soundcollage_nb.soundcollage.labeling import RayLabeler, default_labeler
        if not hasattr(self, "waves"): self.waves = [load_audio(p, 16000) for p in self.man.path]
        spec = f"yamnet-tflite:{self.tflite}"
        lab = default_labeler(spec) if engine == "local" else RayLabeler(spec, batch_size=4, actors=self.workers)
        return lab.scores(self.waves, 16000), len(self.waves)

    def embed(self, engine, out):
        from soundcollage_nb.clap.embed import embed_audio_store, load_store
        from soundcollage_nb.clap.model import CLAP
        if not hasattr(self, "teacher"): self.teacher = CLAP.small(seed=0)
        embed_audio_store(self.man, out, self.teacher, chunk=8, batch_size=8, progress=False, num_workers=0,
                          engine=engine, actors=self.workers if engine == "ray" else 1)
        return load_store(out).emb.astype(np.float32), len(self.man)

    def curate(self, engine, out):
        from soundcollage_nb.clap.curate import normalize_rows, search_pairs
        if not hasattr(self, "Q"):
            rng = np.random.default_rng(0)
            self.Q = normalize_rows(rng.standard_normal((self.args.queries, 512))).astype(np.float16)
            self.K = normalize_rows(rng.standard_normal((4096, 512))).astype(np.float16)
        r = search_pairs(self.Q, self.K, 0.15, top_k=5, block=2048, device="cpu", engine=engine, part_rows=2048)
        return r.to_numpy(np.float64), len(self.Q)


def _part_peak(items, refs, keys, block):
    "Ray task: the peak extra memory of this worker's `search_pairs` on its part (the function the Ray search runs)."
    import ray
    from soundcollage_nb.clap.curate import peak_memory, search_pairs
    return [peak_memory(search_pairs, ray.get(refs[k]), keys, 0.15, 5, block, 4096, "cpu")[1] for k in items]


def worker_memory(ray):
    "Peak memory of one search worker on parts of 8,192 query rows (d 512) against 4,096 keys, at two block sizes and two corpus sizes."
    from soundcollage_nb.clap.curate import normalize_rows
    from soundcollage_nb.engine import Stage, ray_map
    rng = np.random.default_rng(0)
    K = normalize_rows(rng.standard_normal((4096, 512))).astype(np.float16)
    res = {}
    for n in (16384, 65536):
        Q = normalize_rows(rng.standard_normal((n, 512))).astype(np.float16)
        refs = [ray.put(np.ascontiguousarray(Q[s:s + 8192])) for s in range(0, n, 8192)]
        for block in (1024, 4096):
            mb = ray_map(list(range(len(refs))), [Stage(_part_peak, "peak", dict(refs=refs, keys=K, block=block))])
            res[(n, block)] = max(mb)
            print(f"    search worker peak, {n:6d} queries, block {block}: {max(mb):6.1f} MB (max over {len(mb)} parts)")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32, help="10 s clips")
    ap.add_argument("--queries", type=int, default=32768, help="query rows of the curation search")
    ap.add_argument("--stages", default="preprocess,naming,embed,curate")
    ap.add_argument("--quick", action="store_true", help="8 clips, 8192 query rows")
    args = ap.parse_args()
    if args.quick: args.n, args.queries = 8, 8192
    import ray
    tmp = Path(tempfile.mkdtemp(prefix="bench_scaleout_"))
    st = Stages(args, tmp)
    st.tflite = shared_path("models", "yamnet", "yamnet.tflite")
    stages = [s for s in args.stages.split(",") if s and not (s == "naming" and st.tflite is None)]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, ray {ray.__version__}; "
          f"{args.n} clips of 10 s ({st.source}); curation {args.queries} x 4096, d 512")
    rate, ref, k = {}, {}, [0]
    def out():
        k[0] += 1; return tmp / f"run{k[0]:03d}"
    st.workers = 1
    for s in stages:                                   # local first: the reference results (warm: numba's JIT, imports done)
        (_, n), cold = clock(lambda: getattr(st, s)("local", out()))
        (res, n), dt = clock(lambda: getattr(st, s)("local", out()))
        ref[s], rate[(s, "local")] = res, n / dt
        print(f"{s:>10} local      {n / dt:9.1f} /s  (warm {dt:.1f} s, cold {cold:.1f} s)")
    if "preprocess" in stages:                         # the local runner's own parallelism: 2 worker processes
        st.workers = 2
        (res, n), dt = clock(lambda: st.preprocess("local", out()))
        rate[("preprocess", "local2")] = n / dt
        print(f"preprocess local, 2 processes {n / dt:9.1f} /s  ({dt:.1f} s)  same: {np.allclose(res, ref['preprocess'], atol=1e-2)}")
    for w in (1, 2):
        st.workers = w
        (_, t_init) = clock(lambda: ray.init(num_cpus=w, include_dashboard=False, log_to_driver=False))
        ray.data.DataContext.get_current().enable_progress_bars = False
        print(f"# ray, {w} worker(s): session start {t_init:.1f} s")
        for s in stages:
            (_, n), cold = clock(lambda: getattr(st, s)("ray", out()))
            (res, n), warm = clock(lambda: getattr(st, s)("ray", out()))
            same = np.allclose(res, ref[s], atol=2e-3 * max(1.0, float(np.abs(ref[s]).max()) if np.size(ref[s]) else 1.0))
            rate[(s, f"ray{w}")] = n / warm
            fixed = warm - n / (w * rate[(s, "local")])     # beyond the local time at w x the local rate: Ray's cost per call
            print(f"{s:>10} ray {w} worker{'s' if w > 1 else ' '} {n / warm:9.1f} /s  (warm {warm:.1f} s, cold {cold:.1f} s; "
                  f"{fixed:+.1f} s vs local x {w})  same as local: {same}")
            if not same: raise SystemExit(f"{s}: the Ray result differs from the local one")
        if w == 2 and "curate" in stages: mem = worker_memory(ray)
        ray.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
    for s in stages:
        for e in ("local", "ray1", "ray2"): print(f"RESULT {s}_clips_per_s_{e} {rate[(s, e)]:.2f}")
    if "curate" in stages:
        for b in (1024, 4096): print(f"RESULT ray_search_worker_peak_mb_block{b} {max(mem[(n, b)] for n in (16384, 65536)):.1f}")
        print(f"RESULT ray_search_worker_peak_growth_4x_queries {mem[(65536, 4096)] / mem[(16384, 4096)]:.3f}")
    if "preprocess" in stages:
        print(f"RESULT ray_preprocess_speedup_2w {rate[('preprocess', 'ray2')] / rate[('preprocess', 'ray1')]:.3f}")
        print(f"RESULT ray_overhead_1w {rate[('preprocess', 'local')] / rate[('preprocess', 'ray1')]:.3f}")
        print(f"RESULT preprocess_clips_per_s_local_2proc {rate[('preprocess', 'local2')]:.2f}")


if __name__ == "__main__":
    main()
