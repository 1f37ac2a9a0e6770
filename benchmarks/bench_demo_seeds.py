"""The demo pipeline over several seeds: every seed's EER per system, and the median.

One seed can flatter or hide a method; the claims in the docs are medians over the seeds printed
here. Each seed is a complete `avssl demo` run (its own corpus, training and scoring) in
OUT/seed<N>; finished seeds are reused, so the script can be interrupted and restarted.

    python benchmarks/bench_demo_seeds.py --seeds 0 1 2 --out-dir runs/seeds
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from avssl.demo import run_demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out-dir", default="runs/seeds")
    parser.add_argument("--quick", action="store_true", help="tiny corpus, 2 epochs (smoke test of the script)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per training process (1 on a machine shared with other jobs)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="trainings side by side within a seed (default: the demo's; 1 when seeds run in parallel)")
    args = parser.parse_args()

    reports = {}
    for seed in args.seeds:
        folder = Path(args.out_dir) / f"seed{seed}"
        done = folder / "results.json"
        if done.is_file():
            reports[seed] = json.loads(done.read_text())
        else:
            overrides = ("run.progress=false", *((f"run.threads={args.threads}",) if args.threads else ()))
            reports[seed] = run_demo(folder, seed=seed, profile="quick" if args.quick else "full", overrides=overrides,
                                     jobs=args.jobs)
    first = reports[args.seeds[0]]
    systems, lists = list(first["results"]), first["trial_lists"]
    header = ["system", *(f"{name} EER% seed {s}" for name in lists for s in args.seeds), *(f"{n} median" for n in lists)]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for system in systems:
        cells = [system]
        medians = []
        for name in lists:
            values = [100 * reports[s]["results"][system][name]["eer"] for s in args.seeds]
            cells += [f"{v:.2f}" for v in values]
            medians.append(float(np.median(values)))
        cells += [f"{m:.2f}" for m in medians]
        print("| " + " | ".join(cells) + " |")
    print("\n| clustering (diagnostic only) | round | " + " | ".join(f"NMI seed {s}" for s in args.seeds) + " | median |")
    print("|---|---|" + "---|" * (len(args.seeds) + 1))
    for k, row in enumerate(first.get("clusterings", [])):
        values = [reports[s]["clusterings"][k]["nmi"] for s in args.seeds]
        cells = [row["stage"], str(row["round"]), *(f"{v:.3f}" for v in values), f"{float(np.median(values)):.3f}"]
        print("| " + " | ".join(cells) + " |")
    if all("gains" in reports[s] for s in args.seeds):
        print("\n| what each stage bought (EER points; negative = better) | "
              + " | ".join(f"{name} seed {s}" for name in lists for s in args.seeds)
              + " | " + " | ".join(f"{name} median" for name in lists)
              + " | " + " | ".join(f"{name} seeds better" for name in lists) + " |")
        print("|---|" + "---|" * (len(lists) * (len(args.seeds) + 2)))
        for k, row in enumerate(first["gains"]):
            changes = {name: [reports[s]["gains"][k]["eer"][name]["change"] for s in args.seeds] for name in lists}
            cells = [row["question"], *(f"{v:+.2f}" for name in lists for v in changes[name]),
                     *(f"{float(np.median(changes[name])):+.2f}" for name in lists),
                     *(f"{sum(v < 0 for v in changes[name])} of {len(args.seeds)}" for name in lists)]
            print("| " + " | ".join(cells) + " |")
    seconds = [reports[s]["timings_s"]["total"] for s in args.seeds]
    print(f"\nwall time per seed (s): {', '.join(f'{t:.0f}' for t in seconds)}")


if __name__ == "__main__":
    main()
