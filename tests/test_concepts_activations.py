"""Activation capture by dotted layer names, and user models from the command line."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from latentatlas.concepts import capture_activations, layer_names, load_factory


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Sequential(nn.Conv2d(4, 5, 3), nn.BatchNorm2d(5)),
        nn.Flatten(),
        nn.Linear(5 * 6 * 6, 2),
    )


def test_pooled_outputs_match_a_manual_forward():
    model = small_model().train()
    x = torch.randn(23, 3, 8, 8)
    acts = capture_activations(model, x.numpy(), ["0", "2.0", "2", "4"], batch_size=5, progress=False)
    assert model.training  # the mode is restored
    assert all(not m._forward_hooks for m in model.modules())  # hooks are removed
    model.eval()
    with torch.no_grad():
        h0 = model[0](x)
        h20 = model[2][0](model[1](h0))
        h2 = model[2][1](h20)
        out = model(x)
    np.testing.assert_allclose(acts["0"].values, h0.mean((2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["2.0"].values, h20.mean((2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["2"].values, h2.mean((2, 3)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["4"].values, out.numpy(), rtol=1e-5, atol=1e-6)
    assert acts["2.0"].dims == ("sample", "2.0:feature") and acts["2.0"].shape == (23, 5)


def test_unknown_layer_lists_valid_names():
    model = small_model()
    assert layer_names(model) == ["0", "1", "2", "2.0", "2.1", "3", "4"]
    with pytest.raises(KeyError, match=r"unknown layer name\(s\) \['2.7'\].*valid dotted names are: \['0', '1', '2', '2.0'"):
        capture_activations(model, np.zeros((2, 3, 8, 8), np.float32), ["0", "2.7"])
    with pytest.raises(ValueError, match="must be unique"):
        capture_activations(model, np.zeros((2, 3, 8, 8), np.float32), ["0", "0"])


def test_load_factory():
    model = load_factory("latentatlas.demos.shapes:shapes_cnn")
    assert "block2" in layer_names(model)
    with pytest.raises(ValueError, match="package.module:factory"):
        load_factory("latentatlas.demos.shapes")
    with pytest.raises(ValueError, match="cannot import module 'no_such_module_xyz'"):
        load_factory("no_such_module_xyz:f")
    with pytest.raises(ValueError, match="has no attribute 'nope'"):
        load_factory("latentatlas.demos.shapes:nope")


def test_import_stays_light():
    import subprocess
    import sys

    code = "import sys, latentatlas.concepts; print(sorted({'torch', 'sklearn', 'networkx'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
