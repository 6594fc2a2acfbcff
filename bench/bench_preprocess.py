"""Benchmark SoundCollage pre-processing against the public recipe (librosa + ruptures, one clip at a time).

    .venv/bin/python bench/bench_preprocess.py [--n 32] [--batch-size 8] [--device auto] [--parity-all]
                                               [--pipelines] [--workers 4]

Clips: 10 s made of two consecutive ESC-50 clips from ../shared (real audio), or synthetic 10 s clips when
../shared is absent. Stages timed in the same run on the same clips:
  separation    librosa nn_filter + softmask (reference)  vs  soundcollage_nb.soundcollage.separate.repet_sim_batch
  segmentation  librosa tempogram + ruptures KernelCPD    (the same code on both sides)
  features      librosa MFCC 64x64 per segment            vs  batched torch mfcc_64x64_batch
  end-to-end    all of the above per clip                 vs  preprocess_clips (batched) [+ 2 worker processes]
  runner        (--pipelines) preprocess_manifest on the clips written as FLAC: pipeline="chunks" (on a GPU: one
                process) vs pipeline="split" (device stages here, decoding + segmentation in --workers processes),
                with a check that both give the same segments and features
Prints clips/s per stage, separation parity (SNR of ours vs the reference over both components together) and
RESULT lines.
"""
import argparse, os, platform, sys, tempfile, time
from pathlib import Path
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from soundcollage_nb.audio import load_audio, save_audio
from soundcollage_nb.datasets import make_manifest
from soundcollage_nb.core import get_device, shared_path
from soundcollage_nb.soundcollage.features import mfcc_64x64, mfcc_64x64_batch
from soundcollage_nb.soundcollage.preprocess import PreprocessConfig, preprocess_clips, preprocess_manifest
from soundcollage_nb.soundcollage.segment import segment_clip
from soundcollage_nb.soundcollage.separate import librosa_repet_sim, repet_sim_batch, snr_db
from soundcollage_nb.synth import SynthConfig, synth_clip

SR = 22050


def load_clips(n):
    esc = shared_path("data", "esc50-public", "audio")
    if esc is None:
        print("clips: synthetic (../shared absent)")
        cfg = SynthConfig(min_duration=10, max_duration=10)
        return np.stack([synth_clip(i, 0, cfg)[0] for i in range(n)]), "synthetic"
    files = sorted(esc.glob("*.flac"))
    pairs = [(files[(2 * i) % len(files)], files[(2 * i + 1) % len(files)]) for i in range(n)]
    clips = [np.concatenate([load_audio(a, SR), load_audio(b, SR)])[: 10 * SR] for a, b in pairs]
    return np.stack([np.pad(c, (0, 10 * SR - len(c))) for c in clips]), "ESC-50 (../shared), two 5 s clips per 10 s clip"


def pair_snr(ref_v, ref_b, v, b):
    "SNR of the separation output (both components together) against the reference, in dB."
    return snr_db(np.concatenate([ref_v, ref_b]), np.concatenate([v, b]))


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def reference_clip(y, cfg):
    "The public recipe for one clip: librosa separation, tempogram + ruptures, librosa MFCC per segment."
    v, b = librosa_repet_sim(y, SR)
    feats = []
    for comp in (v, b):
        seg = segment_clip(comp, SR, penalty=cfg.penalty, pad_to=cfg.pad_to)
        feats += [mfcc_64x64(s, SR) for s in seg.segments]
    feats.append(mfcc_64x64(np.pad(y, 0), SR))
    return feats


def _ours_chunk(clips, threads):
    torch.set_num_threads(threads)
    return preprocess_clips(list(clips), PreprocessConfig(), device="cpu")


def bench_pipelines(Y, dev, batch_size, workers):
    "preprocess_manifest, chunk vs split pipeline, on the clips written to a temporary folder: clips/s of each."
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        rows = []
        for i, y in enumerate(Y):
            save_audio(d / f"clip{i:04d}.flac", np.clip(y, -0.999, 0.999), SR)
            rows.append({"clip_id": f"clip{i:04d}", "path": str(d / f"clip{i:04d}.flac")})
        man = make_manifest(rows)
        runs = {}
        for pipeline in ("chunks", "split"):
            t = time.perf_counter()
            runs[pipeline] = preprocess_manifest(man, d / pipeline, workers=workers, device=str(dev), batch_size=batch_size,
                                                 progress=False, pipeline=pipeline)
            runs[pipeline].cps = len(Y) / (time.perf_counter() - t)
    a, b = runs["chunks"], runs["split"]
    same_segments = a.segments.drop(columns="path").equals(b.segments.drop(columns="path"))
    dfeat = float(np.abs(a.features.astype(np.float32) - b.features.astype(np.float32)).max()) if same_segments else float("nan")
    print(f"runner       chunks {a.cps:7.2f} clips/s   split ({workers} CPU workers) {b.cps:7.2f} clips/s   x{b.cps / a.cps:.2f}"
          f"   same segments: {same_segments}, max |feature diff| {dfeat:.2g}")
    return a.cps, b.cps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32, help="number of 10 s clips")
    ap.add_argument("--n-ref", type=int, default=8, help="clips the (slow) reference is timed on")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--parity-all", action="store_true", help="parity on every 5 s ESC-50 clip in ../shared")
    ap.add_argument("--pipelines", action="store_true", help="also time preprocess_manifest, chunk vs split pipeline")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1) - 1), help="worker processes for --pipelines")
    args = ap.parse_args()
    dev = get_device(args.device)
    cfg = PreprocessConfig()
    Y, what = load_clips(args.n)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {dev}" + (f" ({torch.cuda.get_device_name()})" if dev.type == "cuda" else ""))
    print(f"clips: {len(Y)} x 10 s, {what}")

    # warm-up (numba compilation in librosa, torch kernels)
    librosa_repet_sim(Y[0, : 5 * SR], SR); repet_sim_batch(Y[:2], SR, device=dev); mfcc_64x64_batch(Y[:2], SR, device=dev)
    segment_clip(Y[0], SR); mfcc_64x64(Y[0], SR)

    nref = min(args.n_ref, len(Y))
    # --- separation
    ref_sep, t_ref_sep = timed(lambda: [librosa_repet_sim(y, SR) for y in Y[:nref]])
    ours_sep = []
    _, t_ours_sep = timed(lambda: [ours_sep.append(repet_sim_batch(Y[i:i + args.batch_size], SR, device=dev))
                                   for i in range(0, len(Y), args.batch_size)])
    vocal = np.concatenate([s.vocal for s in ours_sep]); background = np.concatenate([s.background for s in ours_sep])
    snrs = [pair_snr(rv, rb, vocal[i], background[i]) for i, (rv, rb) in enumerate(ref_sep)]
    sep_ref_cps, sep_ours_cps = nref / t_ref_sep, len(Y) / t_ours_sep
    print(f"separation   reference {sep_ref_cps:7.2f} clips/s   ours {sep_ours_cps:7.2f} clips/s   x{sep_ours_cps / sep_ref_cps:.1f}")
    print(f"             parity on these clips: min {min(snrs):.1f} dB, median {np.median(snrs):.1f} dB")

    # --- segmentation (same code both ways: librosa tempogram + ruptures)
    segs, t_seg = timed(lambda: [segment_clip(c, SR) for c in list(vocal[:nref]) + list(background[:nref])])
    print(f"segmentation {nref / t_seg:7.2f} clips/s (both components; same code for reference and ours)")

    # --- features
    padded = [s for seg in segs for s in seg.segments]
    _, t_ref_feat = timed(lambda: [mfcc_64x64(s, SR) for s in padded])
    _, t_ours_feat = timed(lambda: mfcc_64x64_batch(padded, SR, device=dev))
    print(f"features     reference {len(padded) / t_ref_feat:7.1f} segments/s   ours {len(padded) / t_ours_feat:7.1f} segments/s")

    # --- end to end
    _, t_ref_all = timed(lambda: [reference_clip(y, cfg) for y in Y[:nref]])
    _, t_ours_all = timed(lambda: [preprocess_clips(list(Y[i:i + args.batch_size]), cfg, device=dev)
                                   for i in range(0, len(Y), args.batch_size)])
    e2e_ref, e2e_ours = nref / t_ref_all, len(Y) / t_ours_all
    print(f"end-to-end   reference {e2e_ref:7.2f} clips/s   ours (1 process) {e2e_ours:7.2f} clips/s   x{e2e_ours / e2e_ref:.1f}")
    best = e2e_ours
    if dev.type == "cpu" and (os.cpu_count() or 1) >= 2:
        workers = 2
        chunks = [Y[i:i + args.batch_size] for i in range(0, len(Y), args.batch_size)]
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_ours_chunk, [Y[:2]] * workers, [1] * workers))   # start the workers, warm up
            _, t_par = timed(lambda: list(pool.map(_ours_chunk, chunks, [max(1, os.cpu_count() // workers)] * len(chunks))))
        e2e_par = len(Y) / t_par
        print(f"             ours ({workers} worker processes) {e2e_par:7.2f} clips/s   x{e2e_par / e2e_ref:.1f}")
        best = max(best, e2e_par)

    if args.pipelines:
        cps_chunks, cps_split = bench_pipelines(Y, dev, args.batch_size, args.workers)
        print(f"RESULT runner_chunks_clips_per_s_{dev.type} {cps_chunks:.2f}")
        print(f"RESULT runner_split_clips_per_s_{dev.type} {cps_split:.2f}")

    if args.parity_all:
        esc = shared_path("data", "esc50-public", "audio")
        all_snr = []
        for f in sorted(esc.glob("*.flac")):
            y = load_audio(f, SR)
            sep = repet_sim_batch(y[None], SR, device=dev)
            rv, rb = librosa_repet_sim(y, SR, width_frames=sep.width_frames)
            all_snr.append((pair_snr(rv, rb, sep.vocal[0], sep.background[0]),
                            snr_db(rv, sep.vocal[0]), snr_db(rb, sep.background[0]), f.name))
        a = np.array([s[0] for s in all_snr])
        print(f"parity on all {len(a)} ESC-50 clips ({dev.type}), both components together: min {a.min():.1f} dB, "
              f"median {np.median(a):.1f} dB, {(a >= 40).sum()}/{len(a)} >= 40 dB")
        worst = min(all_snr, key=lambda s: min(s[1], s[2]))
        print(f"  worst single component: {worst[3]} vocal {worst[1]:.1f} dB, background {worst[2]:.1f} dB "
              f"(a component whose reference is near-silent makes its own SNR meaningless)")
        print(f"RESULT separation_parity_min_db {a.min():.1f}")
    else:
        print(f"RESULT separation_parity_min_db {min(snrs):.1f}")
    print(f"RESULT separation_clips_per_s_{dev.type} {sep_ours_cps:.2f}")
    print(f"RESULT separation_speedup {sep_ours_cps / sep_ref_cps:.2f}")
    print(f"RESULT preprocess_speedup {best / e2e_ref:.2f}")


if __name__ == "__main__":
    sys.exit(main())
