"""Where does REPET-SIM put each source? The separation's side of issue #18, item 2.

    .venv/bin/python bench/bench_separation_routing.py [--snr 0] [--synth 200] [--runs runs/quality/mini] [--figures figures/bench]

For every clip of the discovery-quality benchmark's datasets (the same mixtures, read from or built into the same
folder as bench_discovery_quality.py builds them) the share of each source's STFT energy that REPET-SIM's vocal
(Comp#1) and background (Comp#2) masks keep, the masks computed from the mixture (`separate.source_routing`):

* the built-in synthetic set: the vocal-like foreground and the hidden background source (`synth_clip(...,
  return_sources=True)`), per background class;
* FSDD speech over the ESC-50 clips at each `--snr`: the background is the ESC-50 clip (times the mixture's gain),
  the speech is the mixture minus it (the mixtures are 16-bit FLAC: the speech so recovered carries the file's
  quantisation, -80 dB below the speech in the silent gap before its first utterance), per ESC-50 major category.

RESULT lines: routing_{bg,fg}_to_{comp2,comp1}_{synth,snr<x>} (means over clips); routing_seconds.
"""
import argparse, os, sys, time
os.environ.setdefault("OMP_NUM_THREADS", "1")
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))


def routing_row(dataset: str, clip_id: str, cls: str, group: str, foreground, background) -> dict:
    "One clip's row: the share of the foreground's and the background's STFT energy in Comp#2 and Comp#1."
    from soundcollage_nb.soundcollage.separate import source_routing
    r = source_routing({"fg": foreground, "bg": background}, device="cpu").set_index("source")
    return {"dataset": dataset, "clip_id": clip_id, "class": cls, "group": group,
            **{f"{s}_to_comp{c}": r.loc[s, col] for s in ("bg", "fg") for c, col in ((2, "background"), (1, "vocal"))}}


def synth_rows(n: int) -> list:
    from soundcollage_nb.synth import synth_clip
    rows = []
    for i in range(n):
        _, row, src = synth_clip(i, seed=0, return_sources=True)
        name = "+".join(row["hidden_labels"])
        rows.append(routing_row("synth", row["clip_id"], name, name, src["foreground"], src["background"]))
    return rows


def mixture_rows(root: Path, snr: float) -> list:
    from bench_discovery_quality import dataset
    from soundcollage_nb.audio import load_audio
    from soundcollage_nb.core import shared_path
    from soundcollage_nb.datasets import esc50_manifest
    name = f"snr{snr:+g}"
    man = dataset(root, name, n_speech=100, n_bg=0, n_synth=0)
    esc = esc50_manifest(shared_path("data", "esc50-public")).set_index("clip_id")
    rows = []
    for r in man.itertuples(index=False):
        mix = load_audio(r.path, 22050)
        bg = load_audio(esc.loc[r.background, "path"], 22050)
        bg = np.pad(bg, (0, max(0, len(mix) - len(bg))))[: len(mix)] * r.gain
        rows.append(routing_row(name, r.clip_id, r.hidden_labels[0], r.hidden_labels[1], mix - bg, bg))
    return rows


def figure(d: pd.DataFrame, path: Path):
    import matplotlib; matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sets = list(dict.fromkeys(d.dataset))
    nc = min(2, len(sets)); nr = -(-len(sets) // nc)
    fig, axes = plt.subplots(nr, nc, figsize=(6 * nc, 2.6 * nr + 0.5), squeeze=False)
    for ax, s in zip(axes.flat, sets):
        g = d[d.dataset == s].groupby("group")[["bg_to_comp2", "bg_to_comp1"]].mean().sort_values("bg_to_comp2")
        y = np.arange(len(g))
        ax.barh(y, g.bg_to_comp2, color="#c98a1a", label="in Comp#2 (background)")
        ax.barh(y, g.bg_to_comp1, left=g.bg_to_comp2, color="#2a6fb0", label="in Comp#1 (vocal)")
        ax.set_yticks(y, g.index, fontsize=8); ax.set_xlim(0, 1); ax.set_title(f"{s}: share of the background's energy", fontsize=10)
    for ax in list(axes.flat)[len(sets):]: ax.set_visible(False)
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path.with_suffix(".png"), dpi=120); plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snr", default="0", help="SNRs of the ESC-50 mixtures (empty: none)")
    ap.add_argument("--synth", type=int, default=200, help="clips of the synthetic set (0: none)")
    ap.add_argument("--runs", default="runs/quality/mini", help="where bench_discovery_quality keeps (or this builds) its datasets")
    ap.add_argument("--figures", default=None, help="also write separation_routing.csv / .png there")
    args = ap.parse_args()
    import torch; torch.set_num_threads(1)
    t0, rows = time.time(), []
    if args.synth: rows += synth_rows(args.synth)
    for s in [float(x) for x in args.snr.split(",") if x.strip()]: rows += mixture_rows(Path(args.runs), s)
    d = pd.DataFrame(rows)
    cols = ["bg_to_comp2", "bg_to_comp1", "fg_to_comp2", "fg_to_comp1"]
    for s, g in d.groupby("dataset", sort=False):
        print(f"\n{s} ({len(g)} clips), mean share of each source's STFT energy per component:")
        print(g.groupby("group")[cols].mean().sort_values("bg_to_comp2").round(3).to_string())
    if args.figures:
        out = Path(args.figures); out.mkdir(parents=True, exist_ok=True)
        d.to_csv(out / "separation_routing.csv", index=False); figure(d, out / "separation_routing")
    print()
    for s, g in d.groupby("dataset", sort=False):
        for c in cols: print(f"RESULT routing_{c}_{s} {g[c].mean():.3f}")
    print(f"RESULT routing_seconds {time.time() - t0:.0f}")


if __name__ == "__main__":
    main()
