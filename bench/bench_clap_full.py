"""Benchmark the cost of the curation paper's experiments at `full` scale: GPU memory of a teacher and a student training
step at batch 128, and the GPU-hours of one seed (teacher, 14 + 4 students, AudioSet embedding, validation, zero-shot).

    .venv/bin/python bench/bench_clap_full.py [--quick] [--sizes 2 4] [--tflops 30] [--utilisation 0.4]

The model is the package's real `full` model, built offline: `CLAP(rehearsal_model_config(), seed=0)` (Cnn14 at width 1,
64..2048 channels, with its AudioSet head; BERT-base built from its config with random weights and the bert-base-uncased
vocabulary of the MiniLM wheel; msclap projections to d = 1024), on 5-s crops at 44.1 kHz (220,500 samples) and
realistic 12-20-token captions tokenised by the model's own tokenizer (`model.encode_text(list_of_str)`; every batch
holds the longest caption of the pool, so every batch pads to the same length, as a batch of 128 would).
What is measured against what: every quantity at two (or more) small batch sizes on this CPU, in the same run on the
same inputs, fitted y = a*B + c by least squares and extrapolated to batch 128; the fit is printed with its intercept
share and the deviation of the larger size from proportionality (a linearity check).

Steps (as `clap.train.train_clap` runs them, without AMP: fp32, as this bench is asked to count):
  teacher step: contrastive_loss(encode_audio(w), encode_text(caps), scale()) + backward + Adam step;
  student step: the same with a no-grad forward of a frozen second CLAP (the teacher, eval mode) on the same audio and
                captions and soft_contrastive_loss(a, t, s, teacher_a, teacher_t, 0.3);
  embedding: one clip (`encode_audio`, eval, no grad) and one caption (`encode_text`, eval, no grad).

FLOPs: `torch.utils.flop_counter.FlopCounterMode` (matmuls and convolutions, forward and backward; the STFT, pooling,
norms, activations and the Adam update are not counted: a few % at most). GPU time divides the full-size FLOPs by an
assumed sustained throughput (--tflops x --utilisation, fp32 on an A100/H100-class GPU). The package trains with float16
autocast on CUDA, which runs faster than this fp32 figure: the hours are an upper bound at that throughput.
Memory at batch 128 (fp32): weights (parameters + buffers) + Adam state (exp_avg, exp_avg_sq: read from the optimiser) +
gradients (read from the parameters) + the bytes autograd saves for backward (`saved_tensors_hooks`, deduplicated by
storage, parameters' own storages left out since the weights are counted already; peak of the live total) + the input
batch; the student also holds the frozen teacher's weights. Allocator slack, cuDNN workspaces and the transient buffers
of one operation are not counted (leave a third of the GPU for them); the sum is an upper bound on the rest, since the
gradients are allocated during backward while the saved tensors are being freed.
Wall time per step on this CPU is printed for information only (it does not transfer to a GPU).

Protocol counts: the named constants below (with their sources) and `CLAP_SCALES['full']` (teacher_epochs,
student_epochs, batch_size); the students are `student_plan(STUDENTS | TABLE3_STUDENTS, targets)` of the package.

Ends with
  RESULT clap_full_teacher_step_peak_gb X      one teacher training step at batch 128, fp32
  RESULT clap_full_student_step_peak_gb X      one student training step at batch 128, fp32 (+ the frozen teacher)
  RESULT clap_full_teacher_step_tflop X        FLOPs of one teacher step at batch 128
  RESULT clap_full_student_step_tflop X        FLOPs of one student step at batch 128 (teacher forward included)
  RESULT clap_full_gpu_hours_per_seed_est X    Tables 2 + 3 of one seed at --tflops x --utilisation
  RESULT clap_full_embed_gpu_hours_est X       the embedding part alone (AudioSet + captions, two teachers)
"""
import argparse, gc, math, os, platform, sys, time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from soundcollage_nb.clap.model import CLAP, CLAP_SR, CLIP_SECONDS, rehearsal_model_config
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_discovery_memory import SavedTensors, fit      # this folder's memory counter and least-squares fit
from soundcollage_nb.clap.losses import contrastive_loss, soft_contrastive_loss
from soundcollage_nb.papers.clap_curation import CLAP_SCALES, STUDENTS, TABLE3_STUDENTS, student_plan

GB = 1e9

# ---- protocol counts (each with its source)
N_TEACHER_PAIRS = 128_000        # paper §3.1: the teacher saw "128 k paired clips" (FSD50K, ClothoV2, AudioCaps, MACS)
N_AUDIOSET_CLIPS = 1_900_000     # paper: AudioSet unbalanced train, "> 1.9 M clips", embedded by each teacher (one 5-s crop each)
N_CAPTIONS = 128_000             # the teacher's captions, embedded by each teacher for the Improvement-Sets (one per pair)
N_VAL_PAIRS = 2_475              # AudioCaps val, the validation pass after every epoch (nbs/82_papers.clap_curation.ipynb, `full`)
TARGETS = {"ESC-50": 2000, "UrbanSound8K": 8732, "TUT17": 6300}   # zero-shot test clips (the data sets' sizes as the paper uses them)
TABLE3_FRACTION = 0.10           # paper Table 3: the teacher trained on 10 % of the pairs; its students' epochs are one pass
                                 # over those pairs (`curation_run` passes len(teacher's pairs) to `train_student`)
N_TEACHERS = 2                   # the 100 % teacher (Table 2) and the 10 % teacher (Table 3) each curate the pool
N_SEEDS = 3                      # the paper reports averages of three runs
BETA = 0.3                       # soft-label weight (paper; CLAP_SCALES['full'].beta)
N_SAMPLES = int(CLAP_SR*CLIP_SECONDS)   # 220,500 samples per 5-s crop

CAPTIONS = [  # AudioCaps / Clotho-style captions; the first is the longest (every batch pads to it)
    "a man speaks loudly over a cheering crowd while a referee whistle blows in the background",
    "a dog barks repeatedly while cars pass by on a wet street",
    "rain falls steadily on a metal roof as thunder rumbles in the distance",
    "a woman talks softly while dishes clatter in a busy kitchen",
    "birds chirp and sing in a forest as leaves rustle in the wind",
    "an engine idles and then accelerates away down a gravel road",
    "water runs from a faucet into a sink and then stops abruptly",
    "a baby cries loudly while an adult speaks calmly nearby",
    "footsteps echo on a wooden floor as a door creaks open slowly",
    "a train horn blows twice as the train rushes past the crossing",
    "people chatter and laugh in a crowded restaurant with music playing",
    "a helicopter flies overhead with its rotor blades thumping loudly",
]


def measure(fn, exclude=()):
    "(peak saved bytes, seconds, FLOPs, result) of one call of fn (CPU)."
    gc.collect()
    with FlopCounterMode(display=False) as fc, SavedTensors(exclude) as st:
        t = time.perf_counter()
        out = fn()
        sec = time.perf_counter() - t
    return st.peak, sec, fc.get_total_flops(), out


def linear(rows, key, what, unit, scale):
    "Fit rows[key] = a*B + c, print it with its linearity checks, return (a, c)."
    pts = [dict(B=r["B"], y=r[key]) for r in rows]
    (a, c), err = fit(pts, [lambda r: r["B"], lambda r: 1])
    big = max(pts, key=lambda r: r["B"]); small = min(pts, key=lambda r: r["B"])
    prop = abs(big["y"]/big["B"] - small["y"]/small["B"])/(big["y"]/big["B"])
    print(f"  {what:<34} = B*{a/scale:10.3f} {unit} + {c/scale:9.3f} {unit}   (fit error {err:.1e}; intercept "
          f"{abs(c)/big['y']:.1%} of B={big['B']}; per-sample change B={small['B']}->{big['B']}: {prop:.2%})")
    return a, c


def storages(*modules):
    return {t.untyped_storage().data_ptr() for m in modules for t in list(m.parameters()) + list(m.buffers())}


def nbytes(tensors): return sum(t.numel()*t.element_size() for t in tensors)


def captions(B): return [CAPTIONS[i % len(CAPTIONS)] for i in range(B)]


def waves(B, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(N_SAMPLES)/CLAP_SR
    f = 100 + 7900*torch.rand(B, 1, generator=g)
    return (0.2*torch.sin(2*math.pi*f*t) + 0.05*torch.randn(B, N_SAMPLES, generator=g)).float()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="batch sizes 1 and 2 (a smoke run of the bench itself)")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="training batch sizes measured (default 2 4; quick 1 2)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (at most 2 on this shared machine)")
    ap.add_argument("--tflops", type=float, default=30.0, help="assumed peak GPU throughput, TFLOP/s (fp32, A100/H100 class)")
    ap.add_argument("--utilisation", type=float, default=0.4, help="assumed sustained fraction of --tflops")
    ap.add_argument("--gpu-gb", type=float, default=80.0, help="GPU memory the full settings must fit")
    args = ap.parse_args()
    torch.set_num_threads(min(args.threads, 2))
    sizes = sorted(args.sizes or ([1, 2] if args.quick else [2, 4]))
    if len(sizes) < 2: ap.error("--sizes needs at least two batch sizes")
    emb_sizes = [1, 2]
    full = CLAP_SCALES["full"]
    BS = full.batch_size
    t_start = time.perf_counter()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device cpu")
    print(f"CLAP_SCALES['full']: batch {BS}, teacher {full.teacher_epochs} epochs at lr {full.lr}, students "
          f"{full.student_epochs} epochs at lr {full.student_lr}, beta {full.beta}, student_steps {full.student_steps} "
          f"(None: one pass over the teacher's pairs per epoch), amp on CUDA (float16; counted here in fp32)")

    t0 = time.perf_counter()
    model = CLAP(rehearsal_model_config(), seed=0)
    print(f"built CLAP(rehearsal_model_config()) in {time.perf_counter() - t0:.1f} s")
    tok = model.caption_encoder.base.tokenize(CAPTIONS)
    lens = tok["attention_mask"].sum(1).tolist()
    L = tok["input_ids"].shape[1]
    P_audio = sum(p.numel() for p in model.audio_encoder.parameters())
    P_text = sum(p.numel() for p in model.caption_encoder.parameters())
    W_bytes = nbytes(list(model.parameters()) + list(model.buffers()))
    print(f"parameters: audio tower {P_audio/1e6:.1f} M, text tower {P_text/1e6:.1f} M, total "
          f"{(P_audio + P_text + 1)/1e6:.1f} M; weights + buffers {W_bytes/GB:.3f} GB fp32")
    print(f"captions: {len(CAPTIONS)} in the pool, {min(lens)}-{max(lens)} tokens with [CLS]/[SEP] (mean {np.mean(lens):.1f}); "
          f"every batch pads to {L}")

    # ---- teacher steps (hard loss), then student steps (soft loss + frozen teacher) on the same model and optimiser
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=full.lr)
    ex = storages(model)

    def teacher_step(w, caps):
        loss = contrastive_loss(model.encode_audio(w), model.encode_text(caps), model.scale())
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        return loss.item()

    def step_rows(title, step, ex):
        "Measure `step` at each batch size: rows of (B, saved bytes, seconds, FLOPs), printed."
        rows = []
        print(title); print(f"{'B':>3} | {'saved GB':>9} {'s':>7} {'GFLOP':>9} | loss")
        for B in sizes:
            w, caps = waves(B, seed=B), captions(B)
            mem, sec, flops, loss = measure(lambda: step(w, caps), ex)
            rows.append(dict(B=B, mem=mem, sec=sec, flops=flops))
            print(f"{B:>3} | {mem/GB:9.3f} {sec:7.1f} {flops/1e9:9.1f} | {loss:.4f}")
        return rows

    rows_t = step_rows("\nteacher step (contrastive loss + backward + Adam), batch B, fp32, CPU", teacher_step, ex)
    G_bytes = nbytes([p.grad for p in params if p.grad is not None])
    n_with_grad = sum(p.grad is not None for p in params)
    A_bytes = nbytes([v for s in opt.state.values() for v in s.values() if torch.is_tensor(v)])
    print(f"gradients {G_bytes/GB:.3f} GB ({n_with_grad} of {len(params)} parameters get one: the AudioSet head is unused "
          f"by the loss), Adam state {A_bytes/GB:.3f} GB")

    t0 = time.perf_counter()
    teacher = CLAP(rehearsal_model_config(), seed=1).eval()
    for p in teacher.parameters(): p.requires_grad_(False)
    T_bytes = nbytes(list(teacher.parameters()) + list(teacher.buffers()))
    print(f"\nbuilt the frozen teacher (a second CLAP, eval mode) in {time.perf_counter() - t0:.1f} s: {T_bytes/GB:.3f} GB")
    ex = storages(model, teacher)

    def student_step(w, caps):
        a, t, s = model.encode_audio(w), model.encode_text(caps), model.scale()
        with torch.no_grad(): ta, tt = teacher.encode_audio(w), teacher.encode_text(caps)
        loss = soft_contrastive_loss(a, t, s, ta, tt, BETA)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        return loss.item()

    rows_s = step_rows(f"student step (teacher no-grad forward + soft contrastive loss, beta {BETA} + backward + Adam), batch B, fp32, CPU",
                       student_step, ex)

    # ---- embedding (eval, no grad): clips and captions
    rows_a, rows_c = [], []
    print(f"embedding by the frozen model (eval, no grad), as a teacher curates: clips by encode_audio, captions by encode_text")
    print(f"{'n':>3} | {'clip s':>7} {'GFLOP':>8} | {'caption s':>9} {'GFLOP':>8}")
    for n in emb_sizes:
        _, sa, fa, _ = measure(lambda: teacher.encode_audio(waves(n, seed=10 + n)))
        rows_a.append(dict(B=n, flops=fa, sec=sa))
        nc = 2*n
        _, sc, fcap, _ = measure(lambda: teacher.encode_text(captions(nc)))
        rows_c.append(dict(B=nc, flops=fcap, sec=sc))
        print(f"{n:>3} | {sa:7.2f} {fa/1e9:8.2f} | {sc:9.3f} {fcap/1e9:8.3f}  ({nc} captions)")
    print(f"(measurements took {time.perf_counter() - t_start:.0f} s)")

    # ---- fits and extrapolation to batch BS
    print(f"\nlinear fits y = a*B + c (B: batch size), extrapolated to B = {BS}")
    fa_t, fc_t = linear(rows_t, "flops", "teacher step FLOPs", "GFLOP", 1e9)
    ma_t, mc_t = linear(rows_t, "mem", "teacher step saved activations", "GB", GB)
    fa_s, fc_s = linear(rows_s, "flops", "student step FLOPs", "GFLOP", 1e9)
    ma_s, mc_s = linear(rows_s, "mem", "student step saved activations", "GB", GB)
    ea, ec = linear(rows_a, "flops", "clip embedding FLOPs", "GFLOP", 1e9)
    ca, cc = linear(rows_c, "flops", "caption embedding FLOPs", "GFLOP", 1e9)
    F_t, F_s = fa_t*BS + fc_t, fa_s*BS + fc_s
    F_clip, F_cap = ea, ca      # per item: the slope (the intercept is ~0; printed above)
    batch_bytes = BS*N_SAMPLES*4 + 3*BS*L*8
    saved_t, saved_s = ma_t*BS + mc_t, ma_s*BS + mc_s
    peak_t = W_bytes + A_bytes + G_bytes + saved_t + batch_bytes
    peak_s = W_bytes + A_bytes + G_bytes + saved_s + batch_bytes + T_bytes
    print(f"\npeak training memory at batch {BS}, fp32 (GB)")
    print(f"  {'part':<34} {'teacher':>8} {'student':>8}")
    for name, vt, vs in [("weights + buffers", W_bytes, W_bytes), ("Adam state (exp_avg, exp_avg_sq)", A_bytes, A_bytes),
                         ("gradients", G_bytes, G_bytes), ("saved activations", saved_t, saved_s),
                         ("input batch (waves, tokens)", batch_bytes, batch_bytes),
                         ("frozen teacher weights", 0, T_bytes), ("total", peak_t, peak_s)]:
        print(f"  {name:<34} {vt/GB:8.2f} {vs/GB:8.2f}")
    fits = "fits" if max(peak_t, peak_s)/GB <= 2/3*args.gpu_gb else "does NOT fit"
    print(f"  against {args.gpu_gb:.0f} GB: {fits} within two thirds (a third left for workspaces, transients, slack)")
    print(f"FLOPs at batch {BS}: teacher step {F_t/1e12:.2f} TFLOP, student step {F_s/1e12:.2f} TFLOP "
          f"(ratio {F_s/F_t:.2f}); one clip {F_clip/1e9:.2f} GFLOP, one caption ({L} tokens) {F_cap/1e9:.3f} GFLOP")
    print(f"wall time here (information only): teacher step {rows_t[-1]['sec']/rows_t[-1]['B']:.1f} s per sample, student "
          f"{rows_s[-1]['sec']/rows_s[-1]['B']:.1f} s per sample at B = {sizes[-1]} "
          f"({rows_t[-1]['flops']/rows_t[-1]['sec']/1e9:.0f} GFLOP/s with the counters on)")

    # ---- the protocol
    tasks = list(TARGETS)
    plan2, plan3 = student_plan(STUDENTS, tasks), student_plan(TABLE3_STUDENTS, tasks)
    spe = math.ceil(N_TEACHER_PAIRS/BS)                       # steps per epoch, one pass over the teacher's pairs
    spe3 = math.ceil(round(TABLE3_FRACTION*N_TEACHER_PAIRS)/BS)
    sustained = args.tflops*1e12*args.utilisation
    h = lambda flops: flops/sustained/3600
    n_test = sum(TARGETS.values())
    def zs_clips(plan): return sum(TARGETS[t] if t else n_test for _, _, _, t in plan)
    val_flops = N_VAL_PAIRS*(F_clip + F_cap)                  # one validation pass (eval; one clip + one caption per pair)
    parts = [
        ("Table 2 teacher (100 %)", f"{full.teacher_epochs} ep x {spe} steps", full.teacher_epochs*spe*F_t),
        (f"Table 2 students ({len(plan2)})", f"{len(plan2)} x {full.student_epochs} ep x {spe} steps", len(plan2)*full.student_epochs*spe*F_s),
        (f"Table 3 teacher ({TABLE3_FRACTION:.0%})", f"{full.teacher_epochs} ep x {spe3} steps", full.teacher_epochs*spe3*F_t),
        (f"Table 3 students ({len(plan3)})", f"{len(plan3)} x {full.student_epochs} ep x {spe3} steps", len(plan3)*full.student_epochs*spe3*F_s),
        ("validation passes (AudioCaps val)", f"{2*full.teacher_epochs + (len(plan2) + len(plan3))*full.student_epochs} x {N_VAL_PAIRS} pairs",
         (2*full.teacher_epochs + (len(plan2) + len(plan3))*full.student_epochs)*val_flops),
        ("embedding (curation)", f"{N_TEACHERS} x ({N_AUDIOSET_CLIPS/1e6:.1f} M clips + {N_CAPTIONS//1000} k captions)",
         N_TEACHERS*(N_AUDIOSET_CLIPS*F_clip + N_CAPTIONS*F_cap)),
        ("zero-shot evaluation", f"{zs_clips([(0, 0, 0, None)] + plan2) + zs_clips([(0, 0, 0, None)] + plan3)} clips",
         (zs_clips([(0, 0, 0, None)] + plan2) + zs_clips([(0, 0, 0, None)] + plan3))*F_clip),
    ]
    total = sum(p[2] for p in parts)
    embed_h = h(parts[5][2])
    print(f"\nGPU estimate, one seed, at {args.tflops:.0f} TFLOP/s x {args.utilisation:.0%} = {sustained/1e12:.0f} TFLOP/s sustained (fp32)")
    print(f"  Table 2 students: {', '.join(n + ('/' + t if t else '') for n, _, _, t in plan2)}")
    print(f"  Table 3 students: {', '.join(n + ('/' + t if t else '') for n, _, _, t in plan3)}")
    print(f"  {'part':<34} {'count':<40} {'EFLOP':>8} {'GPU h':>8} {'share':>6}")
    for name, count, flops in parts:
        print(f"  {name:<34} {count:<40} {flops/1e18:8.3f} {h(flops):8.1f} {flops/total:6.1%}")
    print(f"  {'total, one seed':<34} {'':<40} {total/1e18:8.3f} {h(total):8.1f}")
    print(f"  {'total, x' + str(N_SEEDS) + ' seeds (the paper averages three)':<75} {N_SEEDS*total/1e18:8.3f} {N_SEEDS*h(total):8.1f}")
    alt = total - parts[3][2] + len(plan3)*full.student_epochs*spe*F_s
    print(f"  (if Table 3 students ran {spe} steps per epoch like Table 2's instead of one pass over the 10 % pairs: "
          f"{h(alt):.1f} h per seed)")
    print(f"  per step at that throughput: teacher {F_t/sustained:.2f} s, student {F_s/sustained:.2f} s; "
          f"embedding {N_AUDIOSET_CLIPS/1e6:.1f} M clips {h(N_AUDIOSET_CLIPS*F_clip):.2f} h per teacher")
    print(f"(total run {time.perf_counter() - t_start:.0f} s)")
    print(f"RESULT clap_full_teacher_step_peak_gb {peak_t/GB:.2f}")
    print(f"RESULT clap_full_student_step_peak_gb {peak_s/GB:.2f}")
    print(f"RESULT clap_full_teacher_step_tflop {F_t/1e12:.3f}")
    print(f"RESULT clap_full_student_step_tflop {F_s/1e12:.3f}")
    print(f"RESULT clap_full_gpu_hours_per_seed_est {h(total):.1f}")
    print(f"RESULT clap_full_embed_gpu_hours_est {embed_h:.2f}")


if __name__ == "__main__":
    main()
