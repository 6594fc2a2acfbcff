"""Benchmark the memory and time of task discovery at full size: one meta-step (store vs recompute) and one AS vmap group.

    .venv/bin/python bench/bench_discovery_memory.py [--device auto] [--quick]

The models are the full ones (`config_for_scale("full")`: ResNet-18 encoder, ResNet-18 inner networks, width 1,
64x64 inputs), run at sizes a 2-core CPU manages in minutes, and the measured costs are fitted and extrapolated
to the full settings.

Meta-step: `Discovery.outer_step` with the full configuration except the per-network batch b (batch 2b, held-out
2b: the full ratio, 512 / 512) and the inner steps T, once with `inner_memory="store"` (the reference: one graph
over the whole unrolled inner loop) and once with "recompute" (trajectory + one inner step's graph), on the same
inputs in the same run; both compute the same loss (printed: the parity check; the difference is float rounding of
kernels that differ between create_graph=True and False, amplified by the inner SGD steps: 0 at T = 1, ~1e-4 at T = 4
on these random inputs; the notebook checks the gradients themselves on small networks).
AS group: one vmap training step of G ResNet-18s on a minibatch (as `agreement._train_vectorised` does).

Memory. On CPU: the bytes of every tensor autograd saves for backward (`torch.autograd.graph.saved_tensors_hooks`;
deduplicated by storage, released when the graph frees them; the peak of the live total over the step) plus the
memory that is not in the graph: weights, gradients, Adam state, stored trajectory, the input batches (counted from
their sizes). Allocator slack and the transient buffers of one operation are not counted. On CUDA:
`torch.cuda.max_memory_allocated` (everything).
Fits: store graph = b*(a + c*T) + e*T + f (it grows with batch x stored steps; e: the weights of every step),
recompute graph = b*g + h (one step at a time), AS group = G*(bs*s_G + t_G) per measured G (+ weights and Adam
state per model; vmap saves more per network than one network alone, so larger G use the largest measured G per network),
least squares; extrapolated to b = 256, T = 50, held-out 512,
and to G ResNet-18s at the AS minibatch of the full scale.
Time: wall time per meta-step here (CPU times do not transfer to a GPU), and the FLOPs of each
(`torch.utils.flop_counter.FlopCounterMode`), fitted like the memory; the GPU estimate divides the full-size FLOPs
by an assumed sustained throughput (--tflops, --utilisation: fp32, as the code runs).

Ends with
  RESULT full_meta_step_peak_gb X          recompute, full size
  RESULT full_meta_step_store_peak_gb X    store (the old way), full size
  RESULT full_as_group_peak_gb X           one AS vmap group of as_group_size ResNet-18s at the full AS minibatch
  RESULT full_discovery_gpu_hours_est X    one subset: 10,000 segments (8,000 train), the full steps, and the AS of
                                           32 discovered + 32 random tasks (upper bound: every AS network runs
                                           as_epochs epochs; the early stop at 98 % train accuracy ends most sooner)
  RESULT recompute_vs_store_time_ratio X   wall time of recompute / store, summed over the measured meta-steps
"""
import argparse, copy, gc, os, platform, time, weakref
from dataclasses import asdict

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap
from torch.utils.flop_counter import FlopCounterMode

from soundcollage_nb.core import get_device
from soundcollage_nb.soundcollage.agreement import make_net
from soundcollage_nb.soundcollage.discovery import Discovery, DiscoveryConfig, config_for_scale

GB = 1e9


class SavedTensors:
    "Live bytes of the tensors autograd saves for backward (deduplicated by storage; `exclude`d storages, e.g. weights, left out), and their peak."
    def __init__(self, exclude=()): self.live, self.peak, self.refs, self.exclude = 0, 0, {}, set(exclude)
    def _pack(self, t):
        s = t.untyped_storage()
        key, n = (s.data_ptr(), str(t.device)), s.nbytes()
        if key[0] in self.exclude: return _Holder(t)
        if self.refs.get(key, 0) == 0: self.live += n
        self.refs[key] = self.refs.get(key, 0) + 1
        self.peak = max(self.peak, self.live)
        holder = _Holder(t)
        weakref.finalize(holder, self._release, key, n)
        return holder
    def _release(self, key, n):
        self.refs[key] -= 1
        if self.refs[key] == 0: del self.refs[key]; self.live -= n
    def __enter__(self):
        self._ctx = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda h: h.t)
        self._ctx.__enter__(); return self
    def __exit__(self, *exc): self._ctx.__exit__(*exc)


class _Holder:
    __slots__ = ("t", "__weakref__")
    def __init__(self, t): self.t = t


def n_params(module_or_dict):
    vals = module_or_dict.values() if isinstance(module_or_dict, dict) else module_or_dict.parameters()
    return sum(v.numel() for v in vals)


def sync(dev):
    if dev.type == "cuda": torch.cuda.synchronize()


def measure(fn, dev):
    "(peak saved bytes or CUDA peak, seconds, FLOPs, result) of one call of fn."
    gc.collect()
    if dev.type == "cuda": torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats(dev); base = torch.cuda.memory_allocated(dev)
    with FlopCounterMode(display=False) as fc, SavedTensors() as st:
        sync(dev); t = time.perf_counter()
        out = fn()
        sync(dev); sec = time.perf_counter() - t
    mem = torch.cuda.max_memory_allocated(dev) - base if dev.type == "cuda" else st.peak
    return mem, sec, fc.get_total_flops(), out


def meta_static_bytes(cfg, b, T, memory):
    "Memory outside the autograd graph of one meta-step (CPU accounting): weights, grads, Adam, trajectory, batches."
    P_enc, P_in = n_params(make_net(cfg.encoder_arch, 2, cfg.encoder_width)), n_params(make_net(cfg.inner_arch, 2, cfg.inner_width))
    S = T if cfg.inner_batches == "fresh" else 1
    static = 4*P_enc*4 + 2*P_in*4                       # encoder weights + grad + Adam m, v; the stored init pair
    static += (S*2*b + 2*b)*64*64*4                     # training batches and the held-out batch
    if memory == "recompute": static += 2*(T + 1)*P_in*4 + 2*P_in*4   # both trajectories, adjoint + its gradient
    return static


def meta_step(b, T, memory, dev, seed=0):
    cfg = config_for_scale("full", batch_size=2*b, heldout_size=2*b, inner_steps=T, inner_memory=memory, steps=1)
    disc = Discovery(cfg, dev)
    g = torch.Generator().manual_seed(seed)
    S = T if cfg.inner_batches == "fresh" else 1
    xs = torch.randn(S, 2*b, 1, 64, 64, generator=g).to(dev)
    xh = torch.randn(2*b, 1, 64, 64, generator=g).to(dev)
    mem, sec, flops, rec = measure(lambda: disc.outer_step(xs, xh), dev)
    if dev.type != "cuda": mem += meta_static_bytes(cfg, b, T, memory)
    return mem, sec, flops, rec["agreement_loss"]


def as_group_step(G, bs, dev, arch="resnet18", width=1.0):
    "One vmap Adam step of G networks on one minibatch of bs (as `_train_vectorised`)."
    nets = [make_net(arch, 2, width) for _ in range(G)]
    params, buffers = stack_module_state(nets)
    base = copy.deepcopy(nets[0]).to("meta")
    params = {k: v.detach().to(dev).requires_grad_() for k, v in params.items()}
    opt = torch.optim.Adam(list(params.values()), lr=1e-3)
    run = vmap(lambda p, bf, x: functional_call(base, (p, bf), (x,)), in_dims=(0, 0, None))
    x, y = torch.randn(bs, 1, 64, 64, device=dev), torch.randint(0, 2, (G, bs), device=dev)
    def step():
        out = run(params, buffers, x)
        loss = F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none").view(G, -1).mean(1)
        opt.zero_grad(set_to_none=True); loss.sum().backward(); opt.step()
    step()                                                    # Adam state allocated once, outside the measurement
    mem, sec, flops, _ = measure(step, dev)
    if dev.type != "cuda": mem += 4*n_params(params)*4 + bs*64*64*4     # weights, grads, Adam m, v; the minibatch
    return mem, sec, flops


def fit(rows, features):
    "Least-squares coefficients of y on the given feature columns (no intercept)."
    A = np.array([[f(r) for f in features] for r in rows], float)
    y = np.array([r["y"] for r in rows], float)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    pred = A @ coef
    return coef, float(np.max(np.abs(pred - y)/np.maximum(y, 1)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--quick", action="store_true", help="fewer sizes (a smoke run of the bench itself)")
    ap.add_argument("--tflops", type=float, default=30.0, help="assumed peak GPU throughput, TFLOP/s (fp32, A100/H100 class)")
    ap.add_argument("--utilisation", type=float, default=0.4, help="assumed sustained fraction of --tflops")
    ap.add_argument("--gpu-gb", type=float, default=80.0, help="GPU memory the full settings must fit")
    ap.add_argument("--n-segments", type=int, default=10000, help="segments of one subset (split 80/10/10)")
    args = ap.parse_args()
    dev = get_device(args.device)
    torch.manual_seed(0)
    full = config_for_scale("full")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {dev}" + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""))
    print(f"full settings: batch {full.batch_size} (b = {full.batch_size//2} per inner network), inner steps {full.inner_steps}, "
          f"held-out {full.heldout_size}, inner batches {full.inner_batches!r}, steps {full.steps} (epochs {full.epochs}), "
          f"AS: {full.as_arch} x {2*full.as_pairs} per task, {full.as_epochs} epochs max, minibatch {full.as_batch_size}, "
          f"group {full.as_group_size}")
    P_in = n_params(make_net(full.inner_arch, 2, full.inner_width))
    print(f"ResNet-18 (GroupNorm, 64x64, 1 channel): {P_in/1e6:.2f} M parameters, {P_in*4/1e6:.0f} MB in fp32")

    # ---- one meta-step, store vs recompute, same inputs in the same run
    grid = [(1, 1), (1, 2), (2, 1), (2, 2)] if args.quick else [(2, 1), (2, 2), (2, 4), (4, 1), (4, 2), (4, 4), (8, 1)]
    if dev.type == "cuda" and not args.quick: grid = [(8, 2), (8, 4), (8, 8), (16, 2), (16, 4), (32, 2), (32, 4)]
    meta_step(1, 1, "recompute", dev)                      # warm-up: first-call costs kept out of the table
    rows = {"store": [], "recompute": []}
    print(f"\none meta-step ({dev.type}; b = samples per inner network, batch = held-out = 2b, T inner steps)")
    print(f"{'b':>3} {'T':>3} | {'store GB':>9} {'s':>7} {'GFLOP':>8} | {'recompute GB':>12} {'s':>7} {'GFLOP':>8} | |loss difference|")
    for b, T in grid:
        res = {m: meta_step(b, T, m, dev) for m in ("store", "recompute")}
        for m, (mem, sec, flops, loss) in res.items(): rows[m].append(dict(b=b, T=T, y=mem, sec=sec, flops=flops, loss=loss))
        (ms, ss, fs, ls), (mr, sr, fr, lr) = res["store"], res["recompute"]
        print(f"{b:>3} {T:>3} | {ms/GB:9.3f} {ss:7.2f} {fs/1e9:8.1f} | {mr/GB:12.3f} {sr:7.2f} {fr/1e9:8.1f} | {abs(ls - lr):.1e}")

    bF, TF, HF = full.batch_size//2, full.inner_steps, full.heldout_size
    static = {m: (lambda r, m=m: meta_static_bytes(full, r["b"], r["T"], m)) for m in rows}
    if dev.type == "cuda": static = {m: (lambda r: 0.0) for m in rows}
    # fit the graph part only (static memory is known exactly), then add the full-size static part back
    graph = {m: [dict(r, y=r["y"] - static[m](r)) for r in rows[m]] for m in rows}
    (a_s, c_s, e_s, f_s), err_s = fit(graph["store"], [lambda r: r["b"], lambda r: r["b"]*r["T"], lambda r: r["T"], lambda r: 1])
    (g_r, h_r), err_r = fit(graph["recompute"], [lambda r: r["b"], lambda r: 1])
    store_graph = lambda b, T: b*(a_s + c_s*T) + e_s*T + f_s
    re_graph = lambda b, T: b*g_r + h_r
    full_row = dict(b=bF, T=TF)
    store_gb = (store_graph(bF, TF) + static["store"](full_row))/GB
    recompute_gb = (re_graph(bF, TF) + static["recompute"](full_row))/GB
    print(f"\nfit, graph bytes: store = b*({a_s/1e6:.1f} MB + {c_s/1e6:.1f} MB * T) + {e_s/1e6:.0f} MB * T + {f_s/1e6:.0f} MB "
          f"(max rel. error {err_s:.3f}); recompute = b*{g_r/1e6:.1f} MB + {h_r/1e6:.0f} MB (max rel. error {err_r:.3f})")
    print(f"full size (b = {bF}, T = {TF}, held-out {HF}): store {store_gb:.0f} GB, recompute {recompute_gb:.1f} GB "
          f"(of which trajectories {2*(TF + 1)*P_in*4/GB:.1f} GB) against {args.gpu_gb:.0f} GB")
    for bb in (128, 256):
        print(f"  per-network batch {bb:>3} (batch {2*bb}): store {(store_graph(bb, TF) + static['store'](dict(b=bb, T=TF)))/GB:6.0f} GB, "
              f"recompute {(re_graph(bb, TF) + static['recompute'](dict(b=bb, T=TF)))/GB:5.1f} GB")

    (fa_s, fc_s), ferr_s = fit([dict(r, y=r["flops"]) for r in rows["store"]], [lambda r: r["b"], lambda r: r["b"]*r["T"]])
    (fa_r, fc_r), ferr_r = fit([dict(r, y=r["flops"]) for r in rows["recompute"]], [lambda r: r["b"], lambda r: r["b"]*r["T"]])
    flops_store, flops_re = bF*(fa_s + fc_s*TF), bF*(fa_r + fc_r*TF)
    t_ratio = sum(r["sec"] for r in rows["recompute"])/sum(r["sec"] for r in rows["store"])
    print(f"FLOPs of one full-size meta-step: store {flops_store/1e15:.2f} PFLOP, recompute {flops_re/1e15:.2f} PFLOP "
          f"(ratio {flops_re/flops_store:.2f}; fit errors {ferr_s:.3f}, {ferr_r:.3f}); measured wall-time ratio recompute / store {t_ratio:.2f}")

    # ---- one AS vmap group
    ag_grid = [(1, 2), (1, 4), (2, 2), (2, 4)] if args.quick else [(1, 4), (1, 8), (1, 16), (2, 4), (2, 8), (2, 16), (4, 4), (4, 8)]
    if dev.type == "cuda" and not args.quick: ag_grid = [(1, 64), (2, 64), (4, 64), (1, 128), (2, 128), (1, 256)]
    as_group_step(1, 2, dev)
    ag_rows = []
    print(f"\none AS training step under vmap (G ResNet-18s, minibatch bs)")
    print(f"{'G':>3} {'bs':>4} | {'GB':>7} {'s':>6} {'GFLOP':>8}")
    for G, bs in ag_grid:
        mem, sec, flops = as_group_step(G, bs, dev)
        ag_rows.append(dict(G=G, bs=bs, y=mem, sec=sec, flops=flops))
        print(f"{G:>3} {bs:>4} | {mem/GB:7.3f} {sec:6.2f} {flops/1e9:8.1f}")
    per_model_static = 4*P_in*4
    as_static = (lambda r: r["G"]*per_model_static + r["bs"]*64*64*4) if dev.type != "cuda" else (lambda r: 0.0)
    # per group size G: saved = G*(bs*s_G + t_G); under vmap a network saves more per sample than alone (G = 1), so
    # each measured G gets its own fit, and larger groups are extrapolated per network from the largest measured G
    per_G = {}
    for G in sorted({r["G"] for r in ag_rows}):
        (s_G, t_G), err_G = fit([dict(r, y=(r["y"] - as_static(r))/G) for r in ag_rows if r["G"] == G], [lambda r: r["bs"], lambda r: 1])
        per_G[G] = (s_G, t_G)
        print(f"fit G={G}: saved per network = bs*{s_G/1e6:.1f} MB + {t_G/1e6:.0f} MB (max rel. error {err_G:.3f})")
    # FLOPs from the single-network rows: under vmap the counter reports more than G x one network's FLOPs (G = 4: 8x)
    # while the time grows about G x, an overcount of the grouped convolutions' backward
    (f_as,), _ = fit([dict(r, y=r["flops"]) for r in ag_rows if r["G"] == 1], [lambda r: r["G"]*r["bs"]])
    def group_gb(G, bs):
        s_G, t_G = per_G.get(G, per_G[max(per_G)])
        return (G*(bs*s_G + t_G) + as_static(dict(G=G, bs=bs)))/GB
    print(f"{f_as/1e9:.1f} GFLOP per network and sample of a training step (G = 1)")
    print(f"AS minibatch {full.as_batch_size}: " + ", ".join(f"G={G}: {group_gb(G, full.as_batch_size):.0f} GB" for G in (1, 2, 4, 8, 16, 32, 64)))
    G_fit = max([G for G in (1, 2, 4, 8, 16, 32, 64) if group_gb(G, full.as_batch_size) <= 2/3*args.gpu_gb] or [1])
    print(f"largest power of two within two thirds of {args.gpu_gb:.0f} GB (a third left for transient buffers, cuDNN "
          f"workspaces, allocator slack): {G_fit}; configured as_group_size {full.as_group_size}")

    # ---- GPU time of one subset
    n_train = round(0.8*args.n_segments); n_eval = args.n_segments - n_train
    sustained = args.tflops*1e12*args.utilisation
    disc_flops = full.steps*flops_re
    fwd = f_as/3                                           # a training step is ~3 forward passes
    n_tasks = 2*full.n_tasks                               # discovered + random-hyperplane tasks
    as_flops = n_tasks*2*full.as_pairs*(full.as_epochs*n_train*f_as + n_eval*fwd)
    hours = (disc_flops + as_flops)/sustained/3600
    print(f"\nGPU estimate at {args.tflops:.0f} TFLOP/s x {args.utilisation:.0%} = {sustained/1e12:.0f} TFLOP/s sustained (fp32):")
    print(f"  discovery: {full.steps} meta-steps x {flops_re/1e15:.2f} PFLOP = {disc_flops/1e18:.2f} EFLOP, {disc_flops/sustained/3600:.1f} h "
          f"({flops_re/sustained:.0f} s per meta-step)")
    print(f"  AS: {n_tasks} tasks x {2*full.as_pairs} ResNet-18 x {full.as_epochs} epochs x {n_train} samples (upper bound) "
          f"= {as_flops/1e18:.2f} EFLOP, {as_flops/sustained/3600:.1f} h")
    print(f"  (the old setting, 10,000 meta-steps, would be {10000*flops_re/sustained/3600:.0f} h of discovery)")
    print(f"RESULT full_meta_step_peak_gb {recompute_gb:.2f}")
    print(f"RESULT full_meta_step_store_peak_gb {store_gb:.1f}")
    print(f"RESULT full_as_group_peak_gb {group_gb(full.as_group_size, full.as_batch_size):.2f}")
    print(f"RESULT full_discovery_gpu_hours_est {hours:.1f}")
    print(f"RESULT recompute_vs_store_time_ratio {t_ratio:.3f}")


if __name__ == "__main__":
    main()
