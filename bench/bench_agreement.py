"""Benchmark the agreement score (AS): sequential training (one model at a time) vs vectorised (torch.func.vmap).

    .venv/bin/python bench/bench_agreement.py [--tasks 16] [--pairs 2] [--epochs 4] [--arch cnn] [--device auto]

T random binary tasks (balanced, `random_tasks`), n pairs of networks each, i.e. 2*T*n models, trained on
the same inputs with the same seeds and epochs by both paths of `agreement_score`, timed in the same run.
Inputs (--data):
  mfcc    real 64x64 MFCC arrays (`mfcc_64x64_batch`) of synthetic 5 s clips (`synth_clip`)   [default]
  random  standard-normal tensors of the same shape (no clip synthesis; faster to set up)
Prints the mean AS of both paths, then
  RESULT as_speedup X          sequential time / vectorised time
  RESULT as_estimate_diff X    max |AS_sequential - AS_vectorised| over the tasks
  RESULT as_cpu_auto_ratio X   sequential time / time of what vectorize="auto" picks on this device
                               ("auto" = vectorised on CUDA, sequential on CPU; sequential and auto are timed
                               alternately --repeats times and the fastest run of each is kept)
"""
import argparse, os, platform, time

import numpy as np
import torch

from soundcollage_nb.soundcollage.agreement import agreement_score, random_tasks
from soundcollage_nb.core import get_device


def make_data(kind, n, seed, device):
    if kind == "random":
        return np.random.default_rng(seed).standard_normal((n, 64, 64)).astype(np.float32), "standard-normal 64x64 tensors"
    from soundcollage_nb.soundcollage.features import mfcc_64x64_batch
    from soundcollage_nb.synth import SynthConfig, synth_clip
    cfg = SynthConfig(min_duration=5, max_duration=5)
    clips = [synth_clip(i, seed, cfg)[0] for i in range(n)]
    return mfcc_64x64_batch(clips, cfg.sr, device=device), "64x64 MFCCs of synthetic 5 s clips"


def timed(**kw):
    if get_device(kw["device"]).type == "cuda": torch.cuda.synchronize()
    t = time.perf_counter()
    out = agreement_score(**kw)
    if get_device(kw["device"]).type == "cuda": torch.cuda.synchronize()
    return out, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--tasks", type=int, default=16, help="random tasks T")
    ap.add_argument("--pairs", type=int, default=2, help="pairs of networks per task")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--arch", default="cnn", choices=["mlp", "cnn", "resnet18"])
    ap.add_argument("--width", type=float, default=1.0, help="width factor of the architecture")
    ap.add_argument("--n-train", type=int, default=128)
    ap.add_argument("--n-test", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--group-size", type=int, default=None, help="vectorised: models per vmap (default all)")
    ap.add_argument("--data", default="mfcc", choices=["mfcc", "random"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2, help="timings of sequential and auto (fastest kept)")
    args = ap.parse_args()
    dev = get_device(args.device)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {dev}" + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""))
    X, what = make_data(args.data, args.n_train + args.n_test, args.seed, dev)
    Xtr, Xte = X[:args.n_train], X[args.n_train:]
    tasks = random_tasks(args.tasks, args.n_train, seed=args.seed)
    n_models = 2*args.tasks*args.pairs
    print(f"data: {what}; train {len(Xtr)}, test {len(Xte)}; {args.tasks} random tasks x {args.pairs} pairs = {n_models} "
          f"models, {args.arch} (width {args.width}), {args.epochs} epochs, batch {args.batch_size}")
    common = dict(X_train=Xtr, X_test=Xte, arch=args.arch, width=args.width, n_pairs=args.pairs, epochs=args.epochs,
                  batch_size=args.batch_size, seed=args.seed, device=dev, group_size=args.group_size)

    # warm-up: first-call costs (kernel selection, vmap tracing, allocator) kept out of the timings
    for vec in (False, True): agreement_score(tasks[:1, :], **{**common, "epochs": 1, "n_pairs": 1, "vectorize": vec})

    # sequential and "auto" are timed alternately (ABBA), `--repeats` times each, and the fastest run of each kept: on
    # CPU both run the same loop, so their ratio shows only the dispatch cost (and the machine's noise). The
    # vectorised path runs last, so that its large allocations cannot slow the runs compared with it.
    auto_vec = dev.type == "cuda"
    t_seq, t_auto = [], []
    for r in range(args.repeats):
        for which in (("seq", "auto") if r % 2 == 0 else ("auto", "seq")):       # ABBA order
            if which == "seq":
                as_seq, t = timed(task_labels=tasks, vectorize=False, **common); t_seq.append(t)
                print(f"sequential: {t:8.2f} s  ({n_models/t:.2f} models/s)  mean AS {as_seq.mean():.4f}")
            else:
                as_auto, t = timed(task_labels=tasks, vectorize="auto", **common); t_auto.append(t)
                print(f"auto (= {'vectorised' if auto_vec else 'sequential'} on {dev.type}): {t:8.2f} s  mean AS {as_auto.mean():.4f}")
    as_vec, t_vec = timed(task_labels=tasks, vectorize=True, **common)
    print(f"vectorised: {t_vec:8.2f} s  ({n_models/t_vec:.2f} models/s)  mean AS {as_vec.mean():.4f}")
    t_seq, t_auto = min(t_seq), min(t_auto)
    print(f"sequential {t_seq:.2f} s, vectorised {t_vec:.2f} s, auto {t_auto:.2f} s (fastest runs)")
    diff = float(np.abs(as_seq - as_vec).max())
    print(f"per-task AS sequential: {np.round(as_seq, 3).tolist()}")
    print(f"per-task AS vectorised: {np.round(as_vec, 3).tolist()}")
    print(f"RESULT as_speedup {t_seq/t_vec:.3f}")
    print(f"RESULT as_estimate_diff {diff:.4f}")
    print(f"RESULT as_cpu_auto_ratio {t_seq/t_auto:.3f}")


if __name__ == "__main__":
    main()
