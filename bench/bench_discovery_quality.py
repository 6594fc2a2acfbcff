"""Does discovery find the hidden classes? SoundCollage against known answers on real audio (issue #18, item 1).

    .venv/bin/python bench/bench_discovery_quality.py [--snr -5,0,5] [--seeds 0,1,2] [--scale mini] [--quick]

Data: FSDD speech over the ESC-50 clips of ../shared (`synth.speech_over_backgrounds`, built once per SNR with its own
fixed seed, so every benchmark run reads the same mixtures): each mixture's given label is its speaker, its hidden
labels the background's ESC-50 class and major category. Per SNR and seed: SoundCollage Comp#1 (vocal) and Comp#2
(background), the baseline (whole-clip MFCCs) and the random-hyperplane tasks of each, named with the ground truth
(`--labeler ground-truth`). Per task (`clarity.group_clarity`): the best clarity among background labels (classes +
major categories) and among speakers, the group its best label belongs to; per run: the means, the share of tasks a
background label dominates, the hidden classes recovered at clarity >= 0.5. Mean ± std over seeds.

RESULT lines: quality_bg_clarity_{comp1,comp2,baseline,random}, quality_speaker_clarity_{...},
quality_bg_task_share_{...}, quality_recovered_{...} (over all SNRs and seeds), and the same per SNR with _snr<x>.
"""
import argparse, time
from pathlib import Path

import numpy as np
import pandas as pd

from soundcollage_nb.core import shared_path
from soundcollage_nb.datasets import esc50_manifest, fsdd_manifest, read_manifest
from soundcollage_nb.synth import speech_over_backgrounds
from soundcollage_nb.soundcollage.clarity import group_clarity, group_summary
from soundcollage_nb.soundcollage.pipeline import discover

SYSTEMS = {"comp1": ("vocal", "."), "comp2": ("background", "."), "baseline": ("background", "baseline"),
           "random": ("background", "random")}


def mixtures(root: Path, snr: float, n_speech: int, n_bg: int):
    "The mixtures of one SNR, built once (construction seed 0, independent of the benchmark's seeds)."
    out = root / f"mix_snr{snr:+g}"
    if (out / "manifest.csv").exists(): return read_manifest(out / "manifest.csv")
    sp = fsdd_manifest(shared_path("data", "fsdd"))
    sp = sp.groupby("speaker").head(n_speech).reset_index(drop=True)
    bg = esc50_manifest(shared_path("data", "esc50-public"))
    man, rej = speech_over_backgrounds(sp, bg.iloc[: n_bg] if n_bg else bg, out, snr_db=snr, seed=0)
    print(f"  mixtures at {snr:+g} dB: {len(man)} ({len(rej)} rejected) -> {out}")
    return man


def run(root: Path, man: pd.DataFrame, snr: float, seed: int, scale: str, overrides: dict) -> dict:
    "Comp#1, Comp#2 (+ baseline) on one SNR and seed; the group summary of every system."
    base = root / f"snr{snr:+g}" / f"seed{seed}"
    for comp in ("vocal", "background"):
        out = base / comp
        if not (out / "summary.csv").exists():
            discover(man, out, labeler="ground-truth", scale=scale, components=(comp,), device="auto", progress=False,
                     baseline=(comp == "background"), downstream=False, preprocess_dir=root / f"snr{snr:+g}" / "preprocess",
                     preprocess_components=("vocal", "background"), seed=seed, **overrides)
    speakers = sorted(set(man.speaker))
    background = sorted({h for hs in man.hidden_labels for h in hs})
    groups = {"background": background, "speaker": speakers}
    res = {}
    for name, (comp, sub) in SYSTEMS.items():
        tab = pd.read_csv(base / comp / sub / "clarity.csv")
        per = group_clarity(tab, groups)
        res[name] = group_summary(per, groups, tab)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snr", default="-5,0,5"); ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--scale", default="mini"); ap.add_argument("--runs", default="runs/quality")
    ap.add_argument("--speech-per-speaker", type=int, default=100, help="FSDD utterances per speaker to draw from")
    ap.add_argument("--backgrounds", type=int, default=0, help="ESC-50 clips (0: all of ../shared)")
    ap.add_argument("--quick", action="store_true", help="smoke scale, 0 dB, seed 0, 48 backgrounds")
    args = ap.parse_args()
    if shared_path("data", "fsdd") is None or shared_path("data", "esc50-public") is None:
        raise SystemExit("needs ../shared/data/fsdd and ../shared/data/esc50-public")
    overrides = {}
    if args.quick:
        args.snr, args.seeds, args.scale, args.backgrounds = "0", "0", "smoke", 48
        overrides = dict(n_tasks=8, n_random=4)
    snrs, seeds = [float(s) for s in args.snr.split(",")], [int(s) for s in args.seeds.split(",")]
    root = Path(args.runs) / args.scale
    t0 = time.time()
    rows = []
    for snr in snrs:
        man = mixtures(root, snr, args.speech_per_speaker, args.backgrounds)
        for seed in seeds:
            for system, s in run(root, man, snr, seed, args.scale, overrides).items():
                rows.append({"snr": snr, "seed": seed, "system": system, **{k: v for k, v in s.items() if not isinstance(v, list)},
                             "recovered": len(s["background_recovered"]), "recovered_classes": ";".join(s["background_recovered"])})
            print(f"  {snr:+g} dB, seed {seed}: done ({time.time() - t0:.0f} s)")
    df = pd.DataFrame(rows)
    (root / "quality.csv").parent.mkdir(parents=True, exist_ok=True); df.to_csv(root / "quality.csv", index=False)
    cols = ["background_clarity", "speaker_clarity", "background_share", "recovered"]
    print(df.groupby(["snr", "system"])[cols].agg(["mean", "std"]).round(3).to_string())
    names = {"background_clarity": "bg_clarity", "speaker_clarity": "speaker_clarity", "background_share": "bg_task_share", "recovered": "recovered"}
    for system in SYSTEMS:
        d = df[df.system == system]
        for c, n in names.items():
            print(f"RESULT quality_{n}_{system} {d[c].mean():.3f}")
            for snr in snrs: print(f"RESULT quality_{n}_{system}_snr{snr:+g} {d[d.snr == snr][c].mean():.3f}")
    print(f"RESULT quality_minutes {(time.time() - t0) / 60:.1f}")


if __name__ == "__main__":
    main()
