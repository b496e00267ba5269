"""All (layer, concept) probes at once, batched, vs the BAGEL-style scikit-learn loop.

Both sides get the same activations (a shapes CNN's layers on held-out images, or the
layers of a features Dataset given with --features) and the same train/test split. The
reference is BAGEL's per-layer
``MultiOutputClassifier(OneVsRestClassifier(LogisticRegression(solver="liblinear",
class_weight="balanced", C=0.1)))`` on standardised activations; latentatlas fits
:class:`latentatlas.concepts.LinearProbes` on every layer and concept in one batched
problem. Times are the best of --repeat runs of fit + predict on the test split, by default with
one BLAS thread on both sides (liblinear is single-threaded; on a busy machine, several
threads on few cores slow small batched problems down badly). The accuracy line compares the
held-out balanced accuracies per (layer, concept); both sides minimise the same objective.

Run: ``python benchmarks/probes.py`` (trains a small CNN first, ~10-60 s) or
``python benchmarks/probes.py --features features.nc`` (per-atom concepts of its frames).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def shapes_activations(n: int, seed: int):
    from latentatlas.concepts import capture_activations, concept_matrix
    from latentatlas.demos.shapes import make_shapes, train_shapes_cnn

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

    out, fits = [], []
    for name in X_train:
        scaler = StandardScaler().fit(X_train[name])
        clf = MultiOutputClassifier(
            OneVsRestClassifier(LogisticRegression(solver="liblinear", class_weight="balanced", C=0.1))
        ).fit(scaler.transform(X_train[name]), Y_train)
        out.append(clf.predict(scaler.transform(X_test[name])).astype(bool))
        fits.append(clf)
    return np.stack(out), fits


def batched_probes(X_train, Y_train, X_test):
    from latentatlas.concepts import LinearProbes

    probes = LinearProbes(C=0.1).fit(X_train, Y_train)
    return probes.decision_function(X_test) > 0, probes


def objective_gaps(X_train, Y_train, fits, probes):
    """Relative gap (ours - liblinear) / liblinear of the shared objective per (layer, concept).

    The objective is liblinear's: ``||(coef, intercept)||^2 / 2 + C sum_i c_i log(1 + exp(-s_i f_i))``.
    """
    gaps = np.zeros((len(fits), Y_train.shape[1]))
    n_pos = Y_train.sum(0)
    weight = 0.1 * np.where(Y_train, len(Y_train) / (2 * n_pos), len(Y_train) / (2 * (len(Y_train) - n_pos)))
    Z = probes.standardise(X_train).numpy()
    for i, clf in enumerate(fits):
        width = X_train[probes.layers_[i]].shape[1]
        for k, ovr in enumerate(clf.estimators_):
            ref = ovr.estimators_[0]
            values = []
            for coef, intercept in ((probes.coef_[i, :width, k], probes.intercept_[i, k]), (ref.coef_[0], ref.intercept_[0])):
                logits = Z[i, :, :width] @ coef + intercept
                margin = np.where(Y_train[:, k], logits, -logits)
                values.append(0.5 * (coef @ coef + intercept**2) + weight[:, k] @ np.logaddexp(0, -margin))
            gaps[i, k] = (values[0] - values[1]) / values[1]
    return gaps


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
        help="BLAS and torch threads (default 1, like liblinear; 0 keeps the libraries' defaults)",
    )  # fmt: skip
    args = parser.parse_args()
    import sklearn.linear_model  # noqa: F401  (loads its BLAS before the limit below)
    import torch
    from threadpoolctl import threadpool_limits

    from latentatlas.concepts import balanced_accuracy

    if args.threads:
        torch.set_num_threads(args.threads)
        # limits only the BLAS libraries loaded by now: numpy's, scipy's and scikit-learn's
        threadpool_limits(args.threads)

    X, Y, names = features_activations(args.features) if args.features else shapes_activations(args.n, args.seed)
    order = np.random.default_rng(args.seed).permutation(len(Y))
    train, test = order[: len(Y) // 2], order[len(Y) // 2 :]
    X_train = {k: v[train] for k, v in X.items()}
    X_test = {k: v[test] for k, v in X.items()}
    widths = {k: v.shape[1] for k, v in X.items()}
    print(f"{len(train)} training / {len(test)} test samples, {len(X)} layers {widths}, {len(names)} concepts")
    print(f"threads: {args.threads or 'library defaults'}; scikit-learn's liblinear runs on one core")

    batched_probes(X_train, Y[train], X_test)  # warm-up
    t_sk, (pred_sk, fits) = best_time(lambda: sklearn_loop(X_train, Y[train], X_test), args.repeat)
    t_lp, (pred_lp, probes) = best_time(lambda: batched_probes(X_train, Y[train], X_test), args.repeat)
    acc_sk = balanced_accuracy(Y[test], pred_sk)
    acc_lp = balanced_accuracy(Y[test], pred_lp)
    diff = np.abs(acc_lp - acc_sk)
    print(f"scikit-learn loop (liblinear, per layer): {t_sk * 1e3:8.1f} ms   mean balanced accuracy {np.nanmean(acc_sk):.4f}")
    print(f"latentatlas LinearProbes (all at once):   {t_lp * 1e3:8.1f} ms   mean balanced accuracy {np.nanmean(acc_lp):.4f}")
    print(f"speed-up: {t_sk / t_lp:.1f}x   balanced accuracy |difference|: max {np.nanmax(diff):.4f}, mean {np.nanmean(diff):.4f}")
    gaps = objective_gaps(X_train, Y[train], fits, probes)
    print(
        f"objective (ours - liblinear) / liblinear over {gaps.size} probes: min {gaps.min():.1e}, max {gaps.max():.1e}; "
        f"held-out predictions that differ: {(pred_lp != pred_sk).sum()} of {pred_lp.size}"
    )


if __name__ == "__main__":
    main()
