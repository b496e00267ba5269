"""FRE on real latent features (CHGNet, SevenNet, SOAP of the small built-in set) equals scikit-matter's.

Real features are low-rank, collinear and full of repeated rows (equivalent atoms of ideal
crystals), the cases where a reorganised computation could drift from the reference.
"""

import numpy as np
import pytest

skmatter = pytest.importorskip("skmatter")
pytest.importorskip("chgnet")
pytest.importorskip("sevenn")
pytest.importorskip("featomic")

from skmatter.metrics import (  # noqa: E402
    global_reconstruction_distortion,
    global_reconstruction_error,
    pointwise_local_reconstruction_error,
)

from latentatlas import fre  # noqa: E402
from latentatlas.features import get_featurizer  # noqa: E402
from latentatlas.structures import builtin_frames  # noqa: E402

MODELS = ("chgnet-0.3.0", "sevennet-0", "soap")


@pytest.fixture(scope="module")
def features():
    frames = builtin_frames(small=True)
    out = {}
    for name in MODELS:
        f = get_featurizer(name)
        ds = f.featurize(frames, f.layers[-1:], progress=False)
        (var,) = ds.data_vars
        out[name] = ds[var].values.astype(np.float64)
    return out


@pytest.mark.parametrize("source", MODELS)
def test_gfre_matrix_equals_skmatter_on_real_features(features, source):
    ours = fre.fre_matrix(features, "gfre", progress=False).sel(source=source).values
    reference = [global_reconstruction_error(features[source], features[t]) for t in MODELS]
    np.testing.assert_allclose(ours, reference, rtol=1e-8, atol=1e-10)


def test_gfrd_equals_skmatter_on_real_features_of_equal_width(features):
    # scikit-matter's GFRD needs dim X <= dim Y; CHGNet and SevenNet last layers are both narrower than SOAP
    X, Y = features["chgnet-0.3.0"], features["soap"]
    np.testing.assert_allclose(fre.gfrd(X, Y, alphas=[1e-6]),
                               global_reconstruction_distortion(X, Y, estimator=_fixed_ridge(1e-6)), rtol=1e-8)


@pytest.mark.parametrize(("source", "target"), [("soap", "chgnet-0.3.0"), ("sevennet-0", "soap")])
def test_pointwise_lfre_equals_skmatter_on_real_features(features, source, target):
    X, Y = features[source], features[target]
    ours = fre.pointwise_lfre(X, Y, n_local_points=50)
    reference = pointwise_local_reconstruction_error(X, Y, 50)
    np.testing.assert_allclose(ours, reference, rtol=1e-8, atol=1e-10)


def _fixed_ridge(alpha):
    from skmatter.linear_model import Ridge2FoldCV

    return Ridge2FoldCV(alphas=[alpha], alpha_type="relative", regularization_method="cutoff", random_state=0x5F3759DF,
                        shuffle=True, scoring="neg_root_mean_squared_error", n_jobs=1)
