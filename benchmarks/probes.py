"""All (layer, concept) probes at once in torch vs the BAGEL-style scikit-learn loop.

Both sides get the same activations (a shapes CNN's layers on held-out images, or the
layers of a features Dataset given with --features) and the same train/test split. The
reference is BAGEL's per-layer
``MultiOutputClassifier(OneVsRestClassifier(LogisticRegression(solver="liblinear",
class_weight="balanced", C=0.1)))`` on standardised activations; latentatlas fits
:class:`latentatlas.concepts.LinearProbes` on every layer and concept in one batched
problem. Times are the best of --repeat runs of fit + predict on the test split, by default with
one torch thread (liblinear is single-threaded; on a busy machine, several torch threads
on few cores slow small batched problems down badly).

Run: ``python benchmarks/probes.py`` (trains a small CNN first, ~10-60 s) or
``python benchmarks/probes.py --features features.nc`` (per-atom concepts of its frames).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def shapes_activations(n: int, seed: int):
    from latentatlas.concepts import capture_activations, concept_matrix
    from latentatlas.concepts.shapes import make_shapes, train_shapes_cnn

    train = make_shapes(4000, image_size=24, bias=0.9, seed=seed)
    model = train_shapes_cnn(train["images"], train["classes"], epochs=6, seed=seed)
    data = make_shapes(n, image_size=24, seed=seed + 1)
    acts = capture_activations(model, data["images"], ["block1", "block2", "block3", "pool", "head"])
    Y, names, *_ = concept_matrix(data["concepts"])
    return {k: acts[k].values.astype(np.float64) for k in acts.data_vars}, Y, names


def features_activations(path: str):
    from latentatlas.concepts import activation_arrays, concept_matrix
    from latentatlas.concepts.atoms import atom_concepts
    from latentatlas.dataset import frames_from_features
    from latentatlas.io import load

    ds = load(path)
    Y, names, *_ = concept_matrix(atom_concepts(frames_from_features(ds)))
    return activation_arrays(ds), Y, names


def sklearn_loop(X_train, Y_train, X_test):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.multioutput import MultiOutputClassifier
    from sklearn.preprocessing import StandardScaler

    out = []
    for name in X_train:
        scaler = StandardScaler().fit(X_train[name])
        clf = MultiOutputClassifier(
            OneVsRestClassifier(LogisticRegression(solver="liblinear", class_weight="balanced", C=0.1))
        ).fit(scaler.transform(X_train[name]), Y_train)
        out.append(clf.predict(scaler.transform(X_test[name])).astype(bool))
    return np.stack(out)


def torch_probes(X_train, Y_train, X_test):
    from latentatlas.concepts import LinearProbes

    return LinearProbes(C=0.1).fit(X_train, Y_train).decision_function(X_test) > 0


def best_time(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", help="a features netCDF file (latentatlas featurize) instead of the shapes CNN")
    parser.add_argument("--n", type=int, default=4000, help="shapes images analysed (default 4000)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads (default 1, like liblinear; 0 keeps torch's default)",
    )  # fmt: skip
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from latentatlas.concepts import balanced_accuracy

    X, Y, names = features_activations(args.features) if args.features else shapes_activations(args.n, args.seed)
    order = np.random.default_rng(args.seed).permutation(len(Y))
    train, test = order[: len(Y) // 2], order[len(Y) // 2 :]
    X_train = {k: v[train] for k, v in X.items()}
    X_test = {k: v[test] for k, v in X.items()}
    widths = {k: v.shape[1] for k, v in X.items()}
    print(f"{len(train)} training / {len(test)} test samples, {len(X)} layers {widths}, {len(names)} concepts")
    print(f"torch threads: {torch.get_num_threads()}; scikit-learn's liblinear runs on one core")

    torch_probes(X_train, Y[train], X_test)  # warm-up: first torch call loads kernels
    t_sk, pred_sk = best_time(lambda: sklearn_loop(X_train, Y[train], X_test), args.repeat)
    t_lp, pred_lp = best_time(lambda: torch_probes(X_train, Y[train], X_test), args.repeat)
    acc_sk = balanced_accuracy(Y[test], pred_sk)
    acc_lp = balanced_accuracy(Y[test], pred_lp)
    diff = np.abs(acc_lp - acc_sk)
    print(f"scikit-learn loop (liblinear, per layer): {t_sk * 1e3:8.1f} ms   mean balanced accuracy {np.nanmean(acc_sk):.4f}")
    print(f"latentatlas LinearProbes (all at once):   {t_lp * 1e3:8.1f} ms   mean balanced accuracy {np.nanmean(acc_lp):.4f}")
    print(f"speed-up: {t_sk / t_lp:.1f}x   balanced accuracy |difference|: max {np.nanmax(diff):.4f}, mean {np.nanmean(diff):.4f}")


if __name__ == "__main__":
    main()
