"""Benchmark CLAP curation search: streaming block search (`search_pairs`) vs a naive full-matrix numpy search.

    .venv/bin/python bench/bench_curation.py [--n-audio 100000] [--n-text 100000] [--dim 1024] [--block 1024]
                                             [--key-block 4096] [--naive-n 8192] [--threshold 0.7] [--device auto]

Embeddings are synthetic and stored as float16 like the embedding store: `--clusters` random unit centres,
each audio / text vector = its centre + Gaussian noise of L2 norm ~`--noise`, L2-normalised, so that a small fraction of the
pairs (same cluster) passes the threshold, as in real curation, while most blocks hold no hit.

1. Parity and speed at `--naive-n` audio x `--naive-n` captions (where the full float32 matrix still fits):
   the naive search (numpy float32 `Q @ K.T` on the whole matrix, `>= threshold`, sort) and `search_pairs`,
   on the same inputs in the same run; the pair lists must be identical (scores to 1e-5).
2. The streaming search alone at `--n-audio` x `--n-text` (skip with `--n-audio 0`), with its peak extra
   memory (resident-set high-water mark above the start, inputs excluded; `peak_memory`).

Prints, then
  RESULT curation_speedup X        pairs/s of search_pairs / pairs/s of the naive search (step 1)
  RESULT curation_pairs_per_s X    pairs/s of search_pairs at the large size (step 2)
  RESULT curation_peak_mb X        peak extra memory (MB) of search_pairs at the large size (step 2),
                                   vs the n_audio x n_text x 4 bytes the full matrix would need
Tests never assert on these numbers.
"""
import argparse, os, platform, time

import numpy as np
import torch

from soundcollage_nb.clap.curate import peak_memory, search_pairs, search_pairs_bruteforce
from soundcollage_nb.core import get_device


def clustered(n, centres, noise, seed, chunk=8192):
    "float16 (n, d) unit rows: a random centre each plus noise, generated in chunks (bounded memory)."
    rng = np.random.default_rng(seed)
    out = np.empty((n, centres.shape[1]), np.float16)
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        x = centres[rng.integers(0, len(centres), e - s)] + noise / np.sqrt(centres.shape[1]) * rng.standard_normal((e - s, centres.shape[1]), np.float32)
        out[s:e] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def timed(fn, *a, **kw):
    t = time.perf_counter(); r = fn(*a, **kw); return r, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-audio", type=int, default=100_000, help="audio rows of the large run (0: skip it)")
    ap.add_argument("--n-text", type=int, default=100_000, help="caption rows of the large run")
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--block", type=int, default=1024, help="query rows per block")
    ap.add_argument("--key-block", type=int, default=4096, help="key rows per block")
    ap.add_argument("--naive-n", type=int, default=8192, help="rows of each side in the naive-vs-streaming comparison")
    ap.add_argument("--threshold", type=float, default=0.7, help="DU sigma")
    ap.add_argument("--top-k", type=int, default=None, help="top-k per clip (default: all pairs >= threshold)")
    ap.add_argument("--clusters", type=int, default=10_000, help="cluster centres of the synthetic embeddings")
    ap.add_argument("--noise", type=float, default=0.6, help="L2 norm of the noise around the centres (same-cluster cosine ~ 1/(1+noise^2))")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    dev = get_device(args.device)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {dev}, d={args.dim}, threshold {args.threshold}, top_k {args.top_k}, block {args.block}x{args.key_block}")
    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((args.clusters, args.dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)

    # 1. naive vs streaming at a size where the full matrix fits
    n = args.naive_n
    A, T = clustered(n, centres, args.noise, args.seed + 1), clustered(n, centres, args.noise, args.seed + 2)
    kw = dict(block=args.block, key_block=args.key_block, device=args.device)
    search_pairs(A[:256], T[:256], args.threshold, args.top_k, **kw)                         # warm-up
    (ref, t_naive), mb_naive = peak_memory(timed, search_pairs_bruteforce, A, T, args.threshold, args.top_k)
    (got, t_stream), mb_stream = peak_memory(timed, search_pairs, A, T, args.threshold, args.top_k, device=args.device,
                                             block=args.block, key_block=args.key_block)
    same = (len(ref) == len(got) and (ref["query"].to_numpy() == got["query"].to_numpy()).all()
            and (ref["key"].to_numpy() == got["key"].to_numpy()).all()
            and np.allclose(ref["score"].to_numpy(), got["score"].to_numpy(), atol=1e-5))
    pairs = n * n
    print(f"naive numpy   {n}x{n}: {t_naive:7.2f} s  {pairs / t_naive / 1e6:8.1f} M pairs/s  peak +{mb_naive:7.0f} MB  {len(ref):,} pairs kept")
    print(f"search_pairs  {n}x{n}: {t_stream:7.2f} s  {pairs / t_stream / 1e6:8.1f} M pairs/s  peak +{mb_stream:7.0f} MB  "
          f"{len(got):,} pairs kept; identical to naive: {same}")
    if not same: raise SystemExit("parity check failed: streaming and naive searches differ")
    del A, T, ref, got

    # 2. the streaming search alone at the large size
    speed_big = peak_big = None
    if args.n_audio > 0 and args.n_text > 0:
        t0 = time.perf_counter()
        A = clustered(args.n_audio, centres, args.noise, args.seed + 3)
        T = clustered(args.n_text, centres, args.noise, args.seed + 4)
        print(f"generated {args.n_audio:,} x {args.dim} and {args.n_text:,} x {args.dim} float16 embeddings "
              f"({(A.nbytes + T.nbytes) / 2**20:.0f} MB) in {time.perf_counter() - t0:.0f} s")
        (got, t_big), peak_big = peak_memory(timed, search_pairs, A, T, args.threshold, args.top_k, device=args.device,
                                             block=args.block, key_block=args.key_block, progress=True)
        pairs = args.n_audio * args.n_text
        speed_big = pairs / t_big
        full_mb = pairs * 4 / 2**20
        print(f"search_pairs  {args.n_audio}x{args.n_text}: {t_big:7.1f} s  {speed_big / 1e6:8.1f} M pairs/s  "
              f"({2 * pairs * args.dim / t_big / 1e9:.0f} GFLOP/s)  peak +{peak_big:.0f} MB (full float32 matrix: {full_mb:,.0f} MB)  "
              f"{len(got):,} pairs kept")
    print(f"RESULT curation_speedup {t_naive / t_stream:.3f}")
    if speed_big is not None:
        print(f"RESULT curation_pairs_per_s {speed_big:.4g}")
        print(f"RESULT curation_peak_mb {peak_big:.1f}")


if __name__ == "__main__":
    main()
