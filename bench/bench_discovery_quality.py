"""Does discovery find the hidden classes? SoundCollage against known answers on real audio (issue #18, item 1).

    .venv/bin/python bench/bench_discovery_quality.py [--snr -5,0,5] [--seeds 0,1,2] [--scale mini] [--jobs 2]
        [--synth 200] [--components vocal,background] [--no-baseline] [--override KEY=VALUE ...] [--preprocess KEY=VALUE ...] [--tag NAME] [--quick]

Data: FSDD speech over the ESC-50 clips of ../shared (`synth.speech_over_backgrounds`, built once per SNR with its own
fixed seed, so every benchmark run reads the same mixtures): each mixture's given label is its speaker, its hidden
labels the background's ESC-50 class and major category. Plus the built-in synthetic set (`--synth N` clips, seed 0;
given label = the vocal-like foreground, hidden = its background sources). Per dataset and seed: SoundCollage Comp#1
(vocal) and Comp#2 (background), the baseline (whole-clip MFCCs) and Comp#2's random-hyperplane tasks, named with the
ground truth (`--labeler ground-truth`). Per task (`clarity.group_clarity`): the best clarity among background labels
(classes + major categories) and among given labels (speakers / foregrounds), the group its best label belongs to;
per run: the means, the share of tasks a background label dominates, the share whose best label is Silence (the ground-truth labeler's
name of a silent segment), the hidden labels recovered at clarity >= 0.5.
Mean ± std over seeds.

`--override` passes discovery settings (e.g. `uniformity_coef=5`) to every run, `--preprocess` pre-processing ones
(e.g. `pad_to=null`); `--tag` names the run folder, so
factor studies never mix with the defaults' numbers. `--jobs` runs that many (dataset, seed) units at once, one
thread each (the pre-processing of each dataset first, then the units).

RESULT lines: quality_bg_clarity_{comp1,comp2,baseline,random}, quality_speaker_clarity_{...},
quality_bg_task_share_{...}, quality_silence_share_{...}, quality_recovered_{...} (over the ESC-50 mixtures' SNRs and seeds), the same per SNR
with _snr<x>, on the synthetic set with _synth (and on the clean backgrounds with _clean); then quality_minutes.
"""
import argparse, hashlib, json, os, time
os.environ.setdefault("OMP_NUM_THREADS", "1")      # one BLAS thread per unit, set before numpy loads (here and in the spawned workers)
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

SYSTEMS = {"comp1": ("vocal", "."), "comp2": ("background", "."), "baseline": ("background", "baseline"),
           "random": ("background", "random")}
COMPONENTS = ("vocal", "background")


def _threads():
    import torch; torch.set_num_threads(1)


def dataset(root: Path, name: str, n_speech: int, n_bg: int, n_synth: int) -> pd.DataFrame:
    "The manifest of one dataset ('snr<x>' mixtures or 'synth'), built once (construction seed 0, independent of the benchmark's seeds)."
    from soundcollage_nb.core import shared_path
    from soundcollage_nb.datasets import esc50_manifest, fsdd_manifest, read_manifest, write_manifest
    from soundcollage_nb.synth import cached_synth_dataset, esc50_major_category, speech_over_backgrounds
    out = root / "data" / name
    if name == "synth": return cached_synth_dataset(out, n_synth, seed=0)
    if (out / "manifest.csv").exists(): return read_manifest(out / "manifest.csv")
    bg = esc50_manifest(shared_path("data", "esc50-public"))
    bg = bg.iloc[: n_bg] if n_bg else bg
    if name == "clean":                      # the backgrounds alone: what a perfect separation would hand discovery
        man = bg.assign(hidden_labels=[[l[0], esc50_major_category(t)] for l, t in zip(bg.labels, bg.target)],
                         labels=[["no speech"]] * len(bg))
        out.mkdir(parents=True, exist_ok=True); write_manifest(man, out / "manifest.csv")
        return man
    sp = fsdd_manifest(shared_path("data", "fsdd"))
    sp = sp.groupby("speaker").head(n_speech).reset_index(drop=True)
    man, rej = speech_over_backgrounds(sp, bg, out, snr_db=float(name[3:]), seed=0)
    print(f"  mixtures at {name[3:]} dB: {len(man)} ({len(rej)} rejected) -> {out}", flush=True)
    return man


def named(prefix: str, settings: dict) -> str:
    "A folder name for a set of settings: 'prefix-key1value1-...'."
    return "-".join([prefix] + [f"{k}{v}" for k, v in sorted(settings.items())])


def pre_dir(root: Path, name: str, pp: dict) -> Path:
    "Each pre-processing setting in its own folder (the defaults in 'preprocess')."
    return root / name / named("preprocess", pp)


def prepare(root: Path, name: str, pp: dict, n_speech: int, n_bg: int, n_synth: int) -> str:
    "Build a dataset and pre-process both components once (every seed reads the same segments)."
    _threads()
    from soundcollage_nb.soundcollage.preprocess import PreprocessConfig, preprocess_manifest
    man = dataset(root, name, n_speech, n_bg, n_synth)
    preprocess_manifest(man, pre_dir(root, name, pp), PreprocessConfig(**pp, components=COMPONENTS), device="auto", progress=False)
    return name


def unit(root: Path, run_dir: Path, name: str, seed: int, scale: str, overrides: dict, pp: dict, components: tuple, baseline: bool,
         n_speech: int, n_bg: int, n_synth: int) -> list:
    "Comp#1 / Comp#2 (+ baseline, random) on one dataset and seed; one row per system."
    _threads()
    from soundcollage_nb.soundcollage.clarity import group_clarity, group_summary, task_clarity
    from soundcollage_nb.soundcollage.pipeline import discover
    t0 = time.time()
    man = dataset(root, name, n_speech, n_bg, n_synth)
    base = run_dir / name / f"seed{seed}"
    for comp in components:
        out = base / comp
        with_baseline = baseline and comp == "background"
        if not (out / "summary.csv").exists() or (with_baseline and not (out / "baseline" / "clarity.csv").exists()):
            discover(man, out, labeler="ground-truth", scale=scale, components=(comp,), device="auto", progress=False,
                     baseline=with_baseline, downstream=False, preprocess_dir=pre_dir(root, name, pp),
                     preprocess_components=COMPONENTS, preprocess=pp, seed=seed, report=False, **overrides)
    groups = {"background": sorted({h for hs in man.hidden_labels for h in hs}), "speaker": sorted({l for ls in man.labels for l in ls})}
    rows = []
    for system, (comp, sub) in SYSTEMS.items():
        if comp not in components or (system == "baseline" and not baseline): continue
        tab = pd.read_csv(base / comp / sub / "clarity.csv")
        s = group_summary(group_clarity(tab, groups), groups, tab)
        rows.append({"dataset": name, "snr": float(name[3:]) if name.startswith("snr") else np.nan, "seed": seed, "system": system,
                     **{k: v for k, v in s.items() if not isinstance(v, list)},
                     "silence_share": float((task_clarity(tab).best_label.astype(str) == "Silence").mean()),
                     "recovered": len(s["background_recovered"]), "recovered_classes": ";".join(s["background_recovered"])})
    print(f"  {name}, seed {seed}: {time.time() - t0:.0f} s", flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snr", default="-5,0,5", help="SNRs of the ESC-50 mixtures (empty: none)")
    ap.add_argument("--seeds", default="0,1,2"); ap.add_argument("--scale", default="mini")
    ap.add_argument("--runs", default="runs/quality"); ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--synth", type=int, default=200, help="clips of the built-in synthetic set (0: leave it out)")
    ap.add_argument("--clean", action="store_true", help="add the ESC-50 clips without speech (the ceiling of a perfect separation)")
    ap.add_argument("--components", default="vocal,background")
    ap.add_argument("--no-baseline", action="store_true", help="leave the baseline out (factor studies of Comp#2)")
    ap.add_argument("--override", nargs="*", metavar="KEY=VALUE", help="discovery settings of every run")
    ap.add_argument("--preprocess", nargs="*", metavar="KEY=VALUE", help="pre-processing settings, e.g. pad_to=null")
    ap.add_argument("--figures", default=None, help="also copy quality.csv / .png there as discovery_quality[_TAG].*")
    ap.add_argument("--tag", default=None, help="the run folder's name (default: the scale, + the overrides)")
    ap.add_argument("--speech-per-speaker", type=int, default=100, help="FSDD utterances per speaker to draw from")
    ap.add_argument("--backgrounds", type=int, default=0, help="ESC-50 clips (0: all of ../shared)")
    ap.add_argument("--quick", action="store_true", help="smoke scale, 0 dB, seed 0, 48 backgrounds, 60 synthetic clips")
    args = ap.parse_args()
    from soundcollage_nb.core import shared_path
    from soundcollage_nb.papers.runner import key_values
    if shared_path("data", "fsdd") is None or shared_path("data", "esc50-public") is None:
        raise SystemExit("needs ../shared/data/fsdd and ../shared/data/esc50-public")
    overrides, pp = key_values(args.override), key_values(args.preprocess)
    if args.quick:
        args.snr, args.seeds, args.scale, args.backgrounds, args.synth = "0", "0", "smoke", 48, 60
        overrides = {"n_tasks": 8, "n_random": 4, **overrides}
    names = [f"snr{float(s):+g}" for s in args.snr.split(",") if s.strip()] + (["synth"] if args.synth else []) + (["clean"] if args.clean else [])
    seeds, components = [int(s) for s in args.seeds.split(",")], tuple(c for c in args.components.split(",") if c)
    root = Path(args.runs) / (f"{args.scale}-quick" if args.quick else args.scale)
    tag = args.tag or named("default", {**overrides, **pp})
    from soundcollage_nb.soundcollage.discovery import DISCOVERY_SCALES
    key = json.dumps({"scale": dict(DISCOVERY_SCALES[args.scale]), "overrides": overrides, "preprocess": pp}, sort_keys=True, default=str)
    run_dir = root / f"{tag}-{hashlib.sha1(key.encode()).hexdigest()[:6]}"    # the scale's defaults may change: never reuse stale runs
    data_kw = dict(n_speech=args.speech_per_speaker, n_bg=args.backgrounds, n_synth=args.synth)
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
        for name in pool.map(prepare, [root] * len(names), names, [pp] * len(names), *[[v] * len(names) for v in data_kw.values()]):
            print(f"  {name}: pre-processed ({time.time() - t0:.0f} s)", flush=True)
        jobs = [pool.submit(unit, root, run_dir, name, seed, args.scale, overrides, pp, components, not args.no_baseline, **data_kw)
                for name in names for seed in seeds]
        rows = [r for j in jobs for r in j.result()]
    df = pd.DataFrame(rows)
    run_dir.mkdir(parents=True, exist_ok=True); df.to_csv(run_dir / "quality.csv", index=False)
    (run_dir / "settings.json").write_text(json.dumps({"scale": args.scale, "overrides": overrides, "preprocess": pp, "seeds": seeds,
                                                       "datasets": names, "components": components}, indent=1))
    from soundcollage_nb.soundcollage.clarity import quality_figure
    title = f"{args.scale}, {len(seeds)} seed(s), {run_dir.name}"
    quality_figure(df, run_dir / "quality.png", title=title)
    if args.figures:
        fig_dir = Path(args.figures); fig_dir.mkdir(parents=True, exist_ok=True)
        stem = "discovery_quality" + ("" if tag == "default" else f"_{tag}")
        df.to_csv(fig_dir / f"{stem}.csv", index=False); quality_figure(df, fig_dir / f"{stem}.png", title=title)
        print(f"  -> {fig_dir / stem}.csv / .png")
    cols = ["background_clarity", "speaker_clarity", "background_share", "silence_share", "recovered"]
    print(df.groupby(["dataset", "system"])[cols].agg(["mean", "std"]).round(3).to_string())
    metrics = {"background_clarity": "bg_clarity", "speaker_clarity": "speaker_clarity", "background_share": "bg_task_share",
               "silence_share": "silence_share", "recovered": "recovered"}
    mix = df[df.dataset.str.startswith("snr")]
    for system in df.system.unique():
        for c, n in metrics.items():
            d = mix[mix.system == system]
            if len(d): print(f"RESULT quality_{n}_{system} {d[c].mean():.3f}")
            for name in names:
                d = df[(df.system == system) & (df.dataset == name)]
                suffix = name if not name.startswith("snr") else f"snr{name[3:]}"
                print(f"RESULT quality_{n}_{system}_{suffix} {d[c].mean():.3f}")
    print(f"RESULT quality_minutes {(time.time() - t0) / 60:.1f}")


if __name__ == "__main__":
    main()
