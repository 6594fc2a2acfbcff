"""Benchmark CLAP audio-embedding throughput: batched forward passes vs one clip at a time.

    .venv/bin/python bench/bench_clap.py [--clips 64] [--batch-size 32] [--width 0.125] [--device auto]

N synthetic 5 s clips at 44.1 kHz (seeded noise + tones) are embedded by the same model (`CLAP.small`, eval mode,
no gradients) twice in the same run: one `encode_audio` call per clip (the reference), and `--batch-size` clips
per call. Each path is timed `--repeats` times, alternating, after a warm-up; the fastest run of each is kept.
Prints clips/s of both and the largest difference between the two paths' embeddings, then
  RESULT clap_embed_speedup X        one-at-a-time time / batched time
  RESULT clap_embed_max_abs_diff X   max |batched - one-at-a-time| over all embedding entries
"""
import argparse, os, platform, time

import numpy as np
import torch

from soundcollage_nb.core import get_device
from soundcollage_nb.clap.model import CLAP, CLAP_SR, CLIP_SECONDS


def make_clips(n, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(CLAP_SR*CLIP_SECONDS))/CLAP_SR
    return np.stack([(0.2*np.sin(2*np.pi*rng.uniform(100, 8000)*t) + 0.05*rng.standard_normal(len(t))).astype(np.float32)
                     for _ in range(n)])


@torch.no_grad()
def embed(model, X, batch_size, dev):
    out = [model.encode_audio(torch.from_numpy(X[s:s + batch_size]).to(dev)) for s in range(0, len(X), batch_size)]
    if dev.type == "cuda": torch.cuda.synchronize()
    return torch.cat(out).cpu()


def timed(model, X, batch_size, dev):
    t = time.perf_counter()
    e = embed(model, X, batch_size, dev)
    return e, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--clips", type=int, default=64, help="number of 5 s clips")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--width", type=float, default=1/8, help="Cnn14 width factor (1.0: the paper's Cnn14)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads: torch.set_num_threads(args.threads)
    dev = get_device(args.device)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {dev}" + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""))
    model = CLAP.small(width=args.width, seed=args.seed).to(dev).eval()
    n_par = sum(p.numel() for p in model.audio_encoder.parameters())
    X = make_clips(args.clips, args.seed)
    print(f"data: {args.clips} synthetic {CLIP_SECONDS:g} s clips at {CLAP_SR} Hz; audio tower Cnn14 width {args.width:g} "
          f"({n_par:,} parameters, projection to d={model.config.d_proj}); batch size {args.batch_size}")
    embed(model, X[:2], 1, dev); embed(model, X[:args.batch_size], args.batch_size, dev)   # warm-up
    t_one, t_bat = [], []
    for r in range(args.repeats):
        e_one, t = timed(model, X, 1, dev); t_one.append(t)
        e_bat, t = timed(model, X, args.batch_size, dev); t_bat.append(t)
    t1, tb = min(t_one), min(t_bat)
    diff = float((e_one - e_bat).abs().max())
    print(f"one at a time: {t1:.2f} s ({args.clips/t1:.1f} clips/s)   [runs: {', '.join(f'{t:.2f}' for t in t_one)}]")
    print(f"batched ({args.batch_size}): {tb:.2f} s ({args.clips/tb:.1f} clips/s)   [runs: {', '.join(f'{t:.2f}' for t in t_bat)}]")
    print(f"RESULT clap_embed_speedup {t1/tb:.3f}")
    print(f"RESULT clap_embed_max_abs_diff {diff:.2e}")


if __name__ == "__main__":
    main()
