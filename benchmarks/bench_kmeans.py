"""Wall time of faiss k-means (as avssl clusters) against scikit-learn KMeans, and how far they agree.

Cases: 20k x 192 into K=500, and 200k x 192 into K=6000 (the pseudo-labelling shape, at a fifth of the
VoxCeleb2 size). scikit-learn runs on the large case only with ``--sklearn-large``: it takes far longer.
Both start from random rows (``init='random'``, one run) and run the same number of Lloyd iterations
(scikit-learn with ``tol=0``, so it stops early only once no label changes).

Rows are unit-normalised random Gaussians, so there is no true clustering: NMI between two labelings
says how much two runs agree on an arbitrary partition, not which is right. To read it, the table also
runs faiss spherical (what avssl uses) with the next seed: two methods agree about as well as one method
with two seeds, or they do not. faiss Euclidean has scikit-learn's objective, a like-for-like timing.

Run: ``.venv/bin/python benchmarks/bench_kmeans.py [--case small|large|all] [--sklearn-large]``.
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score as nmi
from threadpoolctl import threadpool_limits

from avssl.pseudo.kmeans import cluster_embeddings, normalised_rows

CASES = {"small": (20_000, 192, 500), "large": (200_000, 192, 6_000)}
REFERENCES = ("faiss spherical", "sklearn euclidean")


def run_methods(
    points: np.ndarray, n_clusters: int, iterations: int, seed: int, with_sklearn: bool, repeats: int
) -> dict:
    """method -> (iterations run, best wall seconds of ``repeats``, labels) for every method.

    The best of a few runs, because a benchmark on a shared machine measures the neighbours too.
    Every method is deterministic for its seed, so the repeats give the same labels.
    """
    methods = {
        "faiss spherical": lambda: cluster_embeddings(points, n_clusters, seed, iterations).labels,
        "faiss sph. seed+1": lambda: cluster_embeddings(points, n_clusters, seed + 1, iterations).labels,
        "faiss euclidean": lambda: cluster_embeddings(points, n_clusters, seed, iterations, False).labels,
    }
    if with_sklearn:
        sklearn = KMeans(n_clusters, init="random", n_init=1, max_iter=iterations, tol=0.0, random_state=seed)
        methods["sklearn euclidean"] = lambda: sklearn.fit(points).labels_
    runs = {}
    for method, run in methods.items():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            labels = run()
            times.append(time.perf_counter() - start)
        done = sklearn.n_iter_ if method.startswith("sklearn") else iterations
        runs[method] = (done, min(times), labels)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("small", "large", "all"), default="all")
    parser.add_argument("--sklearn-large", action="store_true", help="run scikit-learn on the large case too")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for faiss and scikit-learn alike")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="report the best wall time of this many runs")
    args = parser.parse_args()

    faiss.omp_set_num_threads(args.threads)
    print(f"{args.threads} threads, best of {args.repeats} runs, faiss {faiss.__version__}")
    header = f"{'case':<28} {'method':<18} {'iters':>5} {'wall s':>8}"
    print(header + "".join(f" {'NMI vs ' + ref:>25}" for ref in REFERENCES))
    with threadpool_limits(args.threads):
        for name in ("small", "large") if args.case == "all" else (args.case,):
            n_rows, dim, n_clusters = CASES[name]
            rng = np.random.default_rng(args.seed)
            points = normalised_rows(rng.standard_normal((n_rows, dim), dtype=np.float32))
            with_sklearn = name == "small" or args.sklearn_large
            case = f"{name} ({n_rows // 1000}k x {dim}, K={n_clusters})"
            runs = run_methods(points, n_clusters, args.iterations, args.seed, with_sklearn, args.repeats)
            for method, (done, seconds, labels) in runs.items():
                agreement = [
                    f"{nmi(runs[ref][2], labels):.3f}" if ref in runs and ref != method else "-"
                    for ref in REFERENCES
                ]
                row = f"{case:<28} {method:<18} {done:>5} {seconds:>8.2f}"
                print(row + "".join(f" {a:>25}" for a in agreement), flush=True)


if __name__ == "__main__":
    main()
