"""``latentatlas concepts`` on a user's model given by module path, and on bad input."""

import textwrap

import numpy as np
import pytest

from latentatlas.cli import main
from latentatlas.demos.shapes import make_shapes
from latentatlas.io import load


@pytest.fixture()
def user_model(tmp_path, monkeypatch):
    (tmp_path / "usermodels.py").write_text(
        textwrap.dedent(
            """
            import torch
            from latentatlas.demos.shapes import shapes_cnn

            def build():
                torch.manual_seed(0)
                return shapes_cnn()
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    data = make_shapes(240, image_size=16, seed=0)
    path = tmp_path / "data.npz"
    np.savez(
        path,
        inputs=data["images"],
        classes=data["classes"],
        **{f"concept_{k}": v for k, v in data["concepts"].items()},
    )
    return path


def test_user_model_writes_a_result(user_model, tmp_path, capsys):
    out = tmp_path / "r.nc"
    code = main(
        ["concepts", "--model", "usermodels:build", "--layers", "block1", "block3.0", "head",
         "--data", str(user_model), "--out", str(out), "--n-permutations", "3", "--quiet"]
    )  # fmt: skip
    assert code == 0
    result = load(out)
    assert result["layer"].values.tolist() == ["block1", "block3.0", "head"]
    assert "background=purple" in result["concept"].values
    assert sorted(result["class"].values) == ["circle", "cross", "square", "triangle"]
    assert result.attrs["model"] == "usermodels:build"
    assert (result["probe_accuracy"].sel(layer="block1", concept="background=teal") > 0.9).all()
    assert "held-out balanced probe accuracy" in capsys.readouterr().out


def test_output_classes_give_the_calibrated_rule_its_evidence(user_model, tmp_path, capsys):
    """With output_classes the CLI passes the model's probabilities and logit gradients, as the demos do."""
    import torch

    from latentatlas.concepts import analyse_concepts, capture_activations, capture_gradients, load_factory
    from latentatlas.demos.shapes import SHAPES, class_probabilities

    with np.load(user_model) as f:
        arrays = dict(f)
    named = tmp_path / "named.npz"
    np.savez(named, output_classes=np.array(SHAPES), **arrays)
    out = tmp_path / "r.nc"
    args = ["concepts", "--model", "usermodels:build", "--layers", "block1", "head", "--data", str(named),
            "--out", str(out), "--n-permutations", "3", "--quiet"]  # fmt: skip
    assert main(args) == 0
    assert "rule: calibrated, on the model's own outputs" in capsys.readouterr().out
    result = load(out)
    # the same analysis as the library's, given the model's outputs and gradients
    model = load_factory("usermodels:build").eval()
    proba = class_probabilities(model, torch.as_tensor(arrays["inputs"]))
    grads = capture_gradients(model, arrays["inputs"], ["block1", "head"], output_names=SHAPES, progress=False)
    acts = capture_activations(model, arrays["inputs"], ["block1", "head"], progress=False)
    concepts = {k.removeprefix("concept_"): v for k, v in arrays.items() if k.startswith("concept_")}
    direct = analyse_concepts(acts, concepts, arrays["classes"], class_names=list(SHAPES), n_permutations=3,
                              outputs=proba, gradients=grads)  # fmt: skip
    assert result["class"].values.tolist() == list(SHAPES)
    for name in ("output_excess", "output_excess_pvalue", "derivative", "derivative_pvalue", "excess"):
        np.testing.assert_allclose(result[name].values, direct[name].values, rtol=1e-6, atol=1e-9, err_msg=name)
    # a wrong count of output classes is named, and nothing is written
    np.savez(named, output_classes=np.array(SHAPES[:3]), **arrays)
    args[args.index(str(out))] = str(tmp_path / "x.nc")
    assert main(args) == 2
    assert "the model gives 4 outputs per sample but" in capsys.readouterr().err
    assert not (tmp_path / "x.nc").exists()


def test_bad_layer_lists_valid_names_and_writes_nothing(user_model, tmp_path, capsys):
    out = tmp_path / "r.nc"
    code = main(["concepts", "--model", "usermodels:build", "--layers", "block9", "--data", str(user_model), "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown layer name(s) ['block9']" in err and "'block1', 'block1.0'" in err
    assert not out.exists()


def test_bad_data_files(tmp_path, capsys, user_model):
    no_concepts = tmp_path / "bare.npz"
    np.savez(no_concepts, inputs=np.zeros((4, 3, 16, 16), np.float32), classes=np.array(["a", "b", "a", "b"]))
    code = main(["concepts", "--model", "usermodels:build", "--layers", "head", "--data", str(no_concepts), "--out", str(tmp_path / "x.nc")])
    assert code == 2 and "lacks ['concept_<name>']" in capsys.readouterr().err
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, inputs=np.zeros((2, 3, 16, 16)), classes=np.array([{"a": 1}, None], dtype=object), concept_x=np.array([0, 1]))
    code = main(["concepts", "--model", "usermodels:build", "--layers", "head", "--data", str(pickled), "--out", str(tmp_path / "x.nc")])
    assert code == 2 and "not Python objects" in capsys.readouterr().err
    short = tmp_path / "short.npz"
    np.savez(short, inputs=np.zeros((4, 3, 16, 16), np.float32), classes=np.array(["a", "b", "a"]), concept_x=np.array([0, 1, 0, 1]))
    code = main(["concepts", "--model", "usermodels:build", "--layers", "head", "--data", str(short), "--out", str(tmp_path / "x.nc")])
    assert code == 2 and "4 inputs but 3 classes" in capsys.readouterr().err
    code = main(["concepts", "--model", "usermodels:build", "--out", str(tmp_path / "x.nc")])
    assert code == 2 and "--model needs --layers" in capsys.readouterr().err
