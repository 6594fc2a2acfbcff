"""Benchmark the CLAP clip loader: crop-before-resample vs whole-file decode, DataLoader workers, the replay sampler
at 5 M rows, and audio-embedding throughput on the CPU.

    .venv/bin/python bench/bench_clap_loader.py [--files 24] [--workers 2] [--batch-size 8] [--threads 1]

Data: `--files` 30 s WAV files (PCM 16) in a temporary folder, half at 32 kHz and half at 48 kHz, so every 5 s crop
at 44.1 kHz needs resampling: tones + noise, seeded.

1. One process, random 5 s crops of every file: the old path (`load_audio` of the whole file at 44.1 kHz with soxr
   HQ, then `crop_or_repeat`) against the new one (`load_clip`: header, crop window chosen in the file's time, only
   that window + 50 ms margins read and resampled). Same crops (checked: max |difference| printed).
2. `ClipSource.batches` (random crops, shuffled) with 1 DataLoader worker vs `--workers`; the workers are
   persistent, the first pass (process start-up) is not timed, the best of the next three passes is. Rows: the
   `--embed-repeat` regions of each file described in 4.
3. The student's replay sampler at 5 M rows and batch 128: before, every step drew the pass's permutation again
   (`default_rng([seed, salt, pass]).permutation(5e6)`); now it is drawn once per pass and kept, and a step slices
   it (`clap.train._Stream.keys`).
4. `clap.embed.embed_audio_store` (centred crops, `CLAP.small` at width 1/8, float16 store) of `--embed-repeat`
   regions of each file (offsets 0, 1, 2, ... s, 25 s long) with 0 and `--workers` worker processes decoding while the
   model runs; the time includes the workers' start-up.

Ends with
  RESULT loader_clips_per_s_1w X        clips/s of the loader with one worker
  RESULT loader_clips_per_s_Nw X        ... with --workers
  RESULT loader_crop_first_speedup X    clips/s of crop-first / clips/s of whole-file decode + resample (one process)
  RESULT replay_step_ms_5M X            ms per step of the replay sampler at 5 M rows (steady state)
  RESULT replay_step_ms_5M_before X     ms per step when the permutation was drawn at every step
  RESULT embed_clips_per_s_cpu X        clips/s of the audio embedding store with --workers workers
  RESULT embed_clips_per_s_cpu_0w X     ... with the decoding in the embedding process
"""
import argparse, os, platform, shutil, tempfile, time
from pathlib import Path

import numpy as np
import torch

from soundcollage_nb.audio import load_audio, save_audio
from soundcollage_nb.datasets import make_manifest
from soundcollage_nb.clap.model import CLAP, CLAP_SR
from soundcollage_nb.clap.data import CLIP_SAMPLES, ClipSource, crop_or_repeat, load_clip
from soundcollage_nb.clap.train import _Stream
from soundcollage_nb.clap.embed import embed_audio_store


def make_files(folder:Path, n:int, seconds:float=30.0, seed:int=0) -> list:
    rng, paths = np.random.default_rng(seed), []
    for k in range(n):
        sr = (32000, 48000)[k % 2]
        t = np.arange(int(sr*seconds))/sr
        y = 0.2*np.sin(2*np.pi*rng.uniform(100, 4000)*t) + 0.02*rng.standard_normal(len(t))
        p = folder/f"clip{k:03d}_{sr//1000}k.wav"; save_audio(p, y.astype(np.float32), sr); paths.append(p)
    return paths


class _Rows:
    "A stand-in source of `n` rows for timing the sampler alone."
    def __init__(self, n): self.n, self._rejected = n, {}
    def __len__(self): return self.n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=24)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads of the embedding model")
    ap.add_argument("--replay-rows", type=int, default=5_000_000)
    ap.add_argument("--embed-repeat", type=int, default=4, help="rows per file for the loader and the store (other offsets)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, threads {args.threads}")
    tmp = Path(tempfile.mkdtemp(prefix="bench_clap_loader_"))
    try:
        t = time.perf_counter(); paths = make_files(tmp, args.files, seed=args.seed)
        mb = sum(p.stat().st_size for p in paths)/2**20
        print(f"data: {len(paths)} x 30 s WAV (PCM 16) at 32 / 48 kHz, {mb:.0f} MB, written in {time.perf_counter() - t:.1f} s")

        # 1. crop-first vs whole-file decode + resample, one process, the same random crops
        def old(p, s): return crop_or_repeat(load_audio(p, CLAP_SR), CLIP_SAMPLES, "random", np.random.default_rng([s, 0, 0]))
        def new(p, s): return load_clip(p, mode="random", rng=np.random.default_rng([s, 0, 0]))
        res, outs = {}, {}
        for name, f in (("whole file", old), ("crop first", new)):
            f(paths[0], 0)
            best = 1e9
            for r in range(2):
                t = time.perf_counter(); outs[name] = [f(p, k) for k, p in enumerate(paths)]; best = min(best, time.perf_counter() - t)
            res[name] = len(paths)/best
            print(f"one process, {name:10s}: {res[name]:7.1f} clips/s")
        diff = max(float(np.abs(a - b).max()) for a, b in zip(outs["whole file"], outs["crop first"]))
        print(f"  max |crop first - whole file| over all crops: {diff:.1e}")

        # 2. DataLoader workers
        man = make_manifest([dict(clip_id=f"{p.stem}_{r}", path=str(p), offset=float(r), duration=25.0, caption="x")
                             for r in range(args.embed_repeat) for p in paths])
        cps = {}
        for w in (1, args.workers):
            src = ClipSource(man, num_workers=w)
            list(src.batches(args.batch_size, mode="random", shuffle=True, seed=0, epoch=0))      # start-up pass
            best = 1e9
            for e in (1, 2, 3):
                t = time.perf_counter(); n = sum(len(b["index"]) for b in src.batches(args.batch_size, mode="random", shuffle=True, seed=0, epoch=e))
                best = min(best, time.perf_counter() - t)
            src.close(); cps[w] = n/best
            print(f"loader, {w} worker(s): {cps[w]:7.1f} clips/s (batch {args.batch_size}, random crops)")

        # 3. the replay sampler at 5 M rows
        rows, bs = args.replay_rows, 128
        t = time.perf_counter()
        for p in range(3): np.random.default_rng([0, 2, 0]).permutation(rows)[p*bs:(p + 1)*bs]
        before = (time.perf_counter() - t)/3*1000
        st = _Stream(_Rows(rows), bs, seed=0, salt=2)
        keys = st.keys(0, 0)
        t = time.perf_counter(); next(keys); first = (time.perf_counter() - t)*1000
        n_steps = 2000
        t = time.perf_counter()
        for _ in range(n_steps): next(keys)
        after = (time.perf_counter() - t)/n_steps*1000
        print(f"replay sampler, {rows:,} rows, batch {bs}: before {before:.1f} ms per step; now {after:.3f} ms per step "
              f"(+ {first:.0f} ms once per pass of {rows//bs:,} steps for the permutation)")

        # 4. the audio embedding store
        model = CLAP.small(width=1/8, seed=0).eval()
        eman = man
        eps = {}
        for w in (0, args.workers):
            t = time.perf_counter()
            embed_audio_store(eman, tmp/f"store{w}", model, batch_size=args.batch_size, num_workers=w, progress=False)
            eps[w] = len(eman)/(time.perf_counter() - t)
            print(f"embed_audio_store, {len(eman)} clips, {w} worker(s): {eps[w]:6.1f} clips/s (Cnn14 width 1/8, batch {args.batch_size}, incl. start-up)")
    finally: shutil.rmtree(tmp, ignore_errors=True)
    print(f"RESULT loader_clips_per_s_1w {cps[1]:.1f}")
    print(f"RESULT loader_clips_per_s_Nw {cps[args.workers]:.1f}")
    print(f"RESULT loader_crop_first_speedup {res['crop first']/res['whole file']:.2f}")
    print(f"RESULT replay_step_ms_5M {after:.4f}")
    print(f"RESULT replay_step_ms_5M_before {before:.1f}")
    print(f"RESULT embed_clips_per_s_cpu {eps[args.workers]:.1f}")
    print(f"RESULT embed_clips_per_s_cpu_0w {eps[0]:.1f}")


if __name__ == "__main__":
    main()
