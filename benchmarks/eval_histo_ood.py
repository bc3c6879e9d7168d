"""histo-cae on in-distribution vs out-of-distribution H&E: does the calibrated scale separate them?

    .venv/bin/python benchmarks/eval_histo_ood.py

CRCHistoPhenotypes validation images (never trained on; also the calibration set, so their
scale is ~0..1 by construction), MoNuSeg 2018 test images (40x, other organs, other
labs) and MICCAI 2015 images (TCGA). Prints per set: reconstruction PSNR (dB, RGB in
[0, 1]) and calibrated anomaly statistics inside the tissue mask.
"""
from __future__ import annotations

import csv
import glob
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    import torch

    torch.set_num_threads(1)
    from engine import weights
    from engine.io import read
    from engine.jobs import run_job
    from engine.tasks.reconstruct import reconstruct_task

    data = REPO.parent / "shared" / "data" / "histo"
    loaded = weights.load("histo-cae")
    split = {r["image"]: r["sfcn_opi_split"] for r in csv.DictReader(open(data / "crchisto/split.csv"))}
    sets = {
        "crchisto validation (ID)": [str(data / f"crchisto/{n}/{n}.png") for n, s in sorted(split.items()) if s != "train"],
        "MoNuSeg 2018 test (OOD, 40x)": sorted(glob.glob(str(data / "monuseg/*.png"))),
        "MoNuSeg, --mpp 0.25 (rescaled)": sorted(glob.glob(str(data / "monuseg/*.png"))),
        "MICCAI 2015 (OOD)": sorted(glob.glob(str(data / "miccai2015_seg/image*.png"))),
    }
    print(f"model histo-cae sha256 {loaded.sha256[:12]}; calibration: {loaded.meta['calibration']['data']}")
    print(f"{'set':<30} {'n':>3} {'PSNR dB':>8} {'mean':>6} {'p99':>6} {'frac>1':>7} {'s/img':>6}")
    for label, files in sets.items():
        ps, st, t0 = [], [], time.time()
        for f in files:
            img = read(f, **({"mpp": 0.25} if "rescaled" in label else {}))
            r = run_job(reconstruct_task(img, model=loaded, device="cpu"))
            x = img.array[..., :3].astype(np.float32) / 255
            y = np.clip(r.reconstruction.array / 255, 0, 1)
            ps.append(10 * np.log10(1 / float(np.mean((x - y) ** 2))))
            st.append(r.anomaly.stats)
        dt = (time.time() - t0) / len(files)
        print(f"{label:<30} {len(files):>3} {np.mean(ps):>8.2f} {np.mean([s['mean'] for s in st]):>6.2f} "
              f"{np.mean([s['p99'] for s in st]):>6.2f} {np.mean([s['fraction_above_1'] for s in st]):>7.3f} {dt:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
