"""Concept sensitivity (TCAV-style): gradients checked per sample and against Captum's TCAV."""

import numpy as np
import pytest
import torch
import xarray as xr

from latentatlas.concepts import analyse_concepts, capture_gradients
from latentatlas.concepts.sensitivity import directional_derivatives, gradients_dataset
from latentatlas.demos.shapes import make_shapes, shapes_cnn

LAYERS = ["block1", "block3", "pool", "head"]


@pytest.fixture(scope="module")
def model_and_images():
    torch.manual_seed(0)
    model = shapes_cnn(width=8).eval()
    # BatchNorm statistics that are not the identity, so eval mode matters
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    images = make_shapes(24, image_size=16, seed=0)["images"]
    return model, images


def per_sample_gradients(model, images, layer):
    """The plain reference: one autograd call per sample and output, on the unpooled map."""
    module = model.get_submodule(layer)
    out = []
    for x in images:
        seen = {}
        handle = module.register_forward_hook(lambda m, i, o: seen.__setitem__("h", o))
        try:
            y = model(torch.as_tensor(x[None]))
        finally:
            handle.remove()
        rows = []
        for c in range(y.shape[1]):
            (g,) = torch.autograd.grad(y[0, c], seen["h"], retain_graph=True)
            rows.append(g[0].flatten(1).sum(1) if g.ndim > 2 else g[0])
        out.append(torch.stack(rows))
    return torch.stack(out).detach().numpy()


def test_gradients_match_a_per_sample_autograd_loop(model_and_images):
    model, images = model_and_images
    grads = capture_gradients(model, images, LAYERS, output_names=list("abcd"), batch_size=10, progress=False)
    assert grads["output"].values.tolist() == list("abcd")
    for layer in LAYERS:
        assert grads[layer].dims == ("sample", "output", f"{layer}:feature")
        np.testing.assert_allclose(grads[layer].values, per_sample_gradients(model, images, layer), rtol=1e-4, atol=1e-6)
    # the logits are the head's output: its gradient is the identity
    np.testing.assert_allclose(grads["head"].values, np.broadcast_to(np.eye(4), (len(images), 4, 4)), atol=1e-6)


def test_scalar_output_and_finite_difference(model_and_images):
    """A user-named scalar output; the derivative along v equals a finite difference of the output."""
    model, images = model_and_images
    output = lambda y: torch.logsumexp(y, 1)  # noqa: E731  a scalar per sample
    grads = capture_gradients(model, images, ["block3"], output=output, progress=False)
    assert grads["output"].values.tolist() == ["output0"]
    v = np.random.default_rng(0).normal(size=(1, grads["block3"].shape[2], 1))
    dd = directional_derivatives(grads["block3"].values[None, :, 0], v)[0, :, 0]
    unit = torch.as_tensor(v[0, :, 0] / np.linalg.norm(v), dtype=torch.float32)
    eps = 1e-2

    def shifted(e):
        handle = model.block3.register_forward_hook(lambda m, i, o: o + e * unit[None, :, None, None])
        try:
            with torch.no_grad():
                return output(model(torch.as_tensor(images))).double().numpy()
        finally:
            handle.remove()

    np.testing.assert_allclose(dd, (shifted(eps) - shifted(-eps)) / (2 * eps), rtol=2e-2, atol=2e-3)


def test_tcav_scores_match_captum(model_and_images, tmp_path):
    """Captum's TCAV, given our concept direction as its CAV, counts the same signs."""
    captum_tcav = pytest.importorskip("captum.concept")
    from captum.concept._utils.classifier import Classifier

    model, images = model_and_images
    layer, target = "block2", 2  # block3's gradients are the same for every sample: only linear maps follow
    grads = capture_gradients(model, images, [layer], progress=False)[layer].values  # (n, 4, 32)
    mean = grads[:, target].mean(0)
    v = np.random.default_rng(1).normal(size=grads.shape[2])
    v -= (v @ mean) / (mean @ mean) * mean  # across the mean gradient: signs differ between samples
    ours = (directional_derivatives(grads[None, :, target], v[None, :, None])[0, :, 0] > 0).mean()

    with torch.no_grad():
        spatial = model.block2(model.block1(torch.as_tensor(images[:1]))).shape[2:]
    assert len(spatial) == 2
    # a shift v at every position of the map is Captum's CAV over the flattened (channel, y, x) map
    cav = torch.as_tensor(np.repeat(v, int(np.prod(spatial))), dtype=torch.float32)

    class Fixed(Classifier):
        def __init__(self):
            pass

        def train_and_eval(self, dataloader, **kwargs):
            return {}

        def weights(self):
            return torch.stack([cav, -cav])

        def classes(self):
            return [0, 1]

    loader = torch.utils.data.DataLoader(torch.as_tensor(images), batch_size=8)
    concepts = [captum_tcav.Concept(0, "ours", loader), captum_tcav.Concept(1, "rest", loader)]
    tcav = captum_tcav.TCAV(model, [layer], classifier=Fixed(), save_path=str(tmp_path))
    scores = tcav.interpret(torch.as_tensor(images), [concepts], target=target)
    theirs = float(scores["0-1"][layer]["sign_count"][0])
    assert ours == pytest.approx(theirs)
    assert 0.0 < ours < 1.0  # a case where signs differ between samples


def planted(n=900, seed=0):
    """Activations where class a's output grows along concept ``glow`` and nothing else does."""
    rng = np.random.default_rng(seed)
    classes = np.array(["a", "b", "c"])[rng.integers(3, size=n)]
    glow = rng.random(n) < 0.4
    tint = rng.random(n) < 0.5
    onehot = (classes[:, None] == np.array(["a", "b", "c"])).astype(float)
    # 40 noise features: in few dimensions random directions align with any gradient by chance
    X = np.c_[
        2.5 * glow + rng.normal(size=n), 2.5 * tint + rng.normal(size=n), 3 * onehot + rng.normal(size=(n, 3)),
        rng.normal(size=(n, 40)),
    ]  # fmt: skip
    # outputs: a reads feature 0 (glow) plus its own axis; b and c only their own axes
    W = np.zeros((3, 45))
    W[0, [0, 2]] = 1.0
    W[1, 3] = W[2, 4] = 1.0
    # per-sample gradients: the linear weights, with sample noise so signs vary
    G = W[None] + 0.3 * rng.normal(size=(n, 3, 45))
    acts = xr.Dataset({"layer": (("sample", "f"), X)})
    return acts, gradients_dataset({"layer": G}, ["a", "b", "c"]), {"glow": glow, "tint": tint}, classes


def test_sensitivity_finds_the_output_that_reads_the_concept():
    acts, grads, concepts, classes = planted()
    result = analyse_concepts(acts, concepts, classes, gradients=grads, n_permutations=20, seed=0)
    at = result.sel(layer="layer")
    assert at["sensitivity"].dims == ("concept", "class")
    score = at["sensitivity"].sel(concept="glow")
    assert float(score.sel({"class": "a"})) > 0.95
    # (the TCAV score's own test is weak here: gradients barely vary between samples, so random
    # directions score near 0 or 1 too; the mean derivative is what separates them)
    assert float(at["derivative_pvalue"].sel(concept="glow", **{"class": "a"})) < 0.01
    # no other (concept, class) has a significant derivative
    others = at["derivative_pvalue"].where(~((at["concept"] == "glow") & (at["class"] == "a")))
    assert float(others.min()) > 0.05
    # the mean derivative is the class output's weight along the unit probe direction: ~ cos(angle) <= 1
    assert 0.5 < float(at["derivative"].sel(concept="glow", **{"class": "a"})) <= 1.1


def test_single_output_serves_every_class_and_bad_gradients():
    acts, grads, concepts, classes = planted(300)
    energy = gradients_dataset({"layer": grads["layer"].values[:, :1]}, ["energy"])
    result = analyse_concepts(acts, concepts, classes, gradients=energy, n_permutations=4)
    assert result["sensitivity"].sizes == {"layer": 1, "concept": 2, "class": 3}
    with pytest.raises(ValueError, match="name one output per class"):
        analyse_concepts(acts, concepts, classes, gradients=gradients_dataset({"layer": grads["layer"].values[:, :2]}, ["a", "x"]))
    with pytest.raises(ValueError, match="have shape"):
        analyse_concepts(acts, concepts, classes, gradients=gradients_dataset({"layer": grads["layer"].values[:10]}, list("abc")))
    with pytest.raises(ValueError, match="outputs must hold"):
        analyse_concepts(acts, concepts, classes, outputs=np.ones((300, 2)))


def test_output_excess_sees_what_the_model_does():
    """Model probabilities of class a that rise with glow beyond the class labels."""
    acts, _, concepts, classes = planted()
    member = classes[:, None] == np.array(["a", "b", "c"])
    proba = 0.8 * member + 0.1 * ~member
    proba[:, 0] += 0.15 * concepts["glow"]
    proba /= proba.sum(1, keepdims=True)
    result = analyse_concepts(acts, concepts, classes, outputs=proba, n_permutations=20)
    excess = result["output_excess"]
    assert excess.dims == ("concept", "class")
    assert float(excess.sel(concept="glow", **{"class": "a"})) == pytest.approx(float(excess.max()))
    assert float(excess.sel(concept="glow", **{"class": "a"})) > 0.03
    assert float(result["output_excess_pvalue"].sel(concept="glow", **{"class": "a"})) < 0.01
    assert float(result["output_excess_pvalue"].sel(concept="tint", **{"class": "a"})) > 0.05
