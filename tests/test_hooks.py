"""The one hook helper: what it records, and that its hooks never outlive the block."""

import pytest
import torch
import torch.nn as nn

from latentatlas.hooks import capture, evaluating


def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.Tanh(), nn.Linear(4, 2)))


def test_outputs_inputs_and_transform_per_call():
    m, x = model(), torch.randn(5, 3)
    with capture(m, {"first": m[0], "inner": "1.1", "head_in": "1.1"}, pre={"head_in"},
                 transform=lambda name, v: (name, v.detach().clone())) as seen, torch.no_grad():
        m(x)
        m(2 * x)
    with torch.no_grad():
        h = m[0](x)
        expected = {"first": h, "inner": m(x), "head_in": torch.tanh(h)}
    for name, value in expected.items():
        assert len(seen[name]) == 2 and seen[name][0][0] == name
        torch.testing.assert_close(seen[name][0][1], value, rtol=0, atol=0)
    assert all(not mod._forward_hooks and not mod._forward_pre_hooks for mod in m.modules())


def test_hooks_are_removed_when_the_block_fails():
    m = model().train()
    with pytest.raises(RuntimeError), evaluating(m), capture(m, {"first": "0"}):
        assert not m.training
        m(torch.randn(5, 7))  # wrong width: the forward pass raises
    assert m.training and not m[0]._forward_hooks
    with pytest.raises(KeyError, match=r"no submodule '2'.*valid dotted names are: \['0', '1', '1.0', '1.1'\]"):
        with capture(m, {"x": "2"}):
            pass
    with pytest.raises(KeyError, match=r"pre names \['y'\]"):
        with capture(m, {"x": "0"}, pre={"y"}):
            pass
