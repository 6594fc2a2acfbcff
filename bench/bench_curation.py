"""Benchmark CLAP curation search: streaming block search (`search_pairs`) vs the naive full-matrix numpy search.

    .venv/bin/python bench/bench_curation.py [--n-audio 50000] [--n-text 50000] [--dim 1024] [--block 4096]
                                             [--key-block 4096] [--naive-n 8192] [--repeats 3] [--threshold 0.7]
                                             [--top-k K] [--key-memory-mb 2048] [--device auto]

Embeddings are synthetic and stored as float16 like the embedding store: `--clusters` random unit centres,
each audio / text vector = its centre + Gaussian noise of L2 norm ~`--noise`, L2-normalised, so that a small fraction of the
pairs (same cluster) passes the threshold, as in real curation, while most blocks hold no hit.

1. Parity, speed and memory at `--naive-n` audio x `--naive-n` captions (where the full float32 matrix still fits),
   both searches in the same run on the same float16 inputs: the naive search (`search_pairs_bruteforce`: numpy
   float32 `Q @ K.T` on the whole matrix, `>= threshold`, top-k, sort) and `search_pairs`, `--repeats` times,
   interleaved (naive then streaming, then the other way round, ...) so that the load of other jobs hits both alike.
   Each repeat gives one ratio, wall time of the naive search / wall time of the streaming one (> 1: streaming faster),
   and its CPU-time ratio; each call's peak extra memory is measured with `peak_memory` (resident-set high-water mark
   above the start on CPU, the allocator's peak on CUDA). The pair lists must be identical (scores to 1e-5).
2. The streaming search alone at `--n-audio` x `--n-text` (skip with `--n-audio 0`), with its peak extra memory.

Ends with
  RESULT curation_pairs_per_s X             pairs/s of search_pairs at the large size (step 2)
  RESULT curation_peak_mb X                 its peak extra memory (MB), vs n_audio x n_text x 4 bytes for the full matrix
  RESULT stream_vs_naive_cpu_ratio_median X median over the repeats of CPU time naive / CPU time streaming (step 1)
  RESULT stream_vs_naive_ratio_median X     median over the repeats of wall time naive / wall time streaming (step 1)
  RESULT stream_vs_naive_ratio_min X        the smallest of those ratios
  RESULT stream_peak_mb X                   peak extra memory (MB) of search_pairs in step 1 (max over the repeats)
  RESULT naive_peak_mb X                    peak extra memory (MB) of the naive search in step 1 (max over the repeats)
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


def measured(fn, device):
    "(result, wall s, CPU s of this process, peak extra MB) of fn()."
    def run():
        w, c = time.perf_counter(), time.process_time(); r = fn()
        return r, time.perf_counter() - w, time.process_time() - c
    (r, wall, cpu), mb = peak_memory(run, device=device)
    return r, wall, cpu, mb


def fixed_mmap_threshold():
    """glibc raises its mmap threshold after freeing a large block, so freed matrices stay in the heap and a later
    run's peak RSS no longer shows them; a fixed threshold (128 KiB) keeps every repeat's `peak_memory` comparable."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)   # M_MMAP_THRESHOLD
    except (OSError, AttributeError): pass


def same_pairs(a, b):
    return (len(a) == len(b) and (a["query"].to_numpy() == b["query"].to_numpy()).all()
            and (a["key"].to_numpy() == b["key"].to_numpy()).all()
            and np.allclose(a["score"].to_numpy(), b["score"].to_numpy(), atol=1e-5))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-audio", type=int, default=50_000, help="audio rows of the large run (0: skip it)")
    ap.add_argument("--n-text", type=int, default=50_000, help="caption rows of the large run")
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--block", type=int, default=4096, help="query rows per block")
    ap.add_argument("--key-block", type=int, default=4096, help="key rows per block")
    ap.add_argument("--key-memory-mb", type=float, default=2048, help="hold the float32 keys on the device up to this size")
    ap.add_argument("--naive-n", type=int, default=8192, help="rows of each side in the naive-vs-streaming comparison")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved (naive, streaming) pairs of runs in step 1")
    ap.add_argument("--threshold", type=float, default=0.7, help="DU sigma")
    ap.add_argument("--top-k", type=int, default=None, help="top-k per clip (default: all pairs >= threshold)")
    ap.add_argument("--clusters", type=int, default=10_000, help="cluster centres of the synthetic embeddings")
    ap.add_argument("--noise", type=float, default=0.6, help="L2 norm of the noise around the centres (same-cluster cosine ~ 1/(1+noise^2))")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    fixed_mmap_threshold()
    dev = get_device(args.device)
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} torch threads, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}, device {dev}, d={args.dim}, threshold {args.threshold}, "
          f"top_k {args.top_k}, block {args.block}x{args.key_block}, key_memory_mb {args.key_memory_mb:g}")
    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((args.clusters, args.dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    kw = dict(block=args.block, key_block=args.key_block, device=args.device, key_memory_mb=args.key_memory_mb)

    # 1. naive vs streaming at a size where the full matrix fits, interleaved, in this run
    n = args.naive_n
    A, T = clustered(n, centres, args.noise, args.seed + 1), clustered(n, centres, args.noise, args.seed + 2)
    naive = lambda: search_pairs_bruteforce(A, T, args.threshold, args.top_k)
    stream = lambda: search_pairs(A, T, args.threshold, args.top_k, **kw)
    search_pairs(A[:256], T[:256], args.threshold, args.top_k, **kw); search_pairs_bruteforce(A[:256], T[:256], args.threshold)   # warm-up
    runs = {"naive": [], "stream": []}
    ref = None
    for r in range(args.repeats):
        for name in (("naive", "stream") if r % 2 == 0 else ("stream", "naive")):
            res, wall, cpu, mb = measured(naive if name == "naive" else stream, "cpu" if name == "naive" else args.device)
            runs[name].append((wall, cpu, mb))
            if name == "naive": ref = res if ref is None else ref
            else: got = res
        if not same_pairs(ref, got): raise SystemExit("parity check failed: streaming and naive searches differ")
        (wn, cn, mn), (ws, cs, ms) = runs["naive"][-1], runs["stream"][-1]
        print(f"repeat {r}: naive {wn:6.2f} s (cpu {cn:6.2f} s, peak +{mn:5.0f} MB)  search_pairs {ws:6.2f} s (cpu {cs:6.2f} s, "
              f"peak +{ms:5.0f} MB)  ratio {wn / ws:.3f} (cpu {cn / cs:.3f})")
    ratios = np.array([a[0] / b[0] for a, b in zip(runs["naive"], runs["stream"])])
    cpu_ratios = np.array([a[1] / b[1] for a, b in zip(runs["naive"], runs["stream"])])
    peak_stream, peak_naive = max(x[2] for x in runs["stream"]), max(x[2] for x in runs["naive"])
    print(f"{n}x{n}: {len(ref):,} pairs kept, identical in every repeat; wall ratio naive/streaming median {np.median(ratios):.3f}, "
          f"min {ratios.min():.3f}, max {ratios.max():.3f}; peak +{peak_stream:.0f} MB streaming vs +{peak_naive:.0f} MB naive")
    del A, T, ref, got

    # 2. the streaming search alone at the large size
    speed_big = peak_big = None
    if args.n_audio > 0 and args.n_text > 0:
        t0 = time.perf_counter()
        A = clustered(args.n_audio, centres, args.noise, args.seed + 3)
        T = clustered(args.n_text, centres, args.noise, args.seed + 4)
        print(f"generated {args.n_audio:,} x {args.dim} and {args.n_text:,} x {args.dim} float16 embeddings "
              f"({(A.nbytes + T.nbytes) / 2**20:.0f} MB) in {time.perf_counter() - t0:.0f} s")
        got, t_big, _, peak_big = measured(lambda: search_pairs(A, T, args.threshold, args.top_k, progress=True, **kw), args.device)
        pairs = args.n_audio * args.n_text
        speed_big = pairs / t_big
        full_mb = pairs * 4 / 2**20
        print(f"search_pairs  {args.n_audio}x{args.n_text}: {t_big:7.1f} s  {speed_big / 1e6:8.1f} M pairs/s  "
              f"({2 * pairs * args.dim / t_big / 1e9:.0f} GFLOP/s)  peak +{peak_big:.0f} MB (full float32 matrix: {full_mb:,.0f} MB)  "
              f"{len(got):,} pairs kept")
    if speed_big is not None:
        print(f"RESULT curation_pairs_per_s {speed_big:.4g}")
        print(f"RESULT curation_peak_mb {peak_big:.1f}")
    print(f"RESULT stream_vs_naive_cpu_ratio_median {np.median(cpu_ratios):.3f}")
    print(f"RESULT stream_vs_naive_ratio_median {np.median(ratios):.3f}")
    print(f"RESULT stream_vs_naive_ratio_min {ratios.min():.3f}")
    print(f"RESULT stream_peak_mb {peak_stream:.1f}")
    print(f"RESULT naive_peak_mb {peak_naive:.1f}")


if __name__ == "__main__":
    main()
