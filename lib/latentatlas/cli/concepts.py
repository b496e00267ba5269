"""``latentatlas concepts``: concept knowledge-graph analysis (BAGEL) of a model's layers.

With ``--model``, a ``--data`` file that names the class of each model output
(``output_classes``) gives the analysis the model's own class probabilities and the
gradients of its class logits, the evidence of the calibrated spurious-correlation rule
(:mod:`latentatlas.concepts.graph`); without it, the rule falls back on class probes.
"""

from __future__ import annotations

import argparse

from ._checks import check_output, open_fraction, positive_float, positive_int

DATA_FORMAT = """\
--data format: one .npz file (numpy.savez, no pickled objects) with
  inputs            (n, ...) float array fed to the model in batches
  classes           (n,) class label of each sample (str or int)
  concept_<name>    (n,) labels of concept <name>: bool/0-1 for a binary concept,
                    any other values (str or int) for a one-hot concept
  output_classes    optional (n_outputs,) the class of each column of the model's
                    output (class logits), e.g. the class names in training order:
                    adds the model's own class probabilities (softmax) and the
                    gradients of its class logits, the evidence of the calibrated
                    spurious-correlation rule (without them: class probes)
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "concepts",
        help="probe concepts in every layer, compare model and dataset concept presence, flag spurious correlations",
        description=(
            "Concept analysis after BAGEL (arXiv:2507.05810): class-balanced linear probes per\n"
            "(layer, concept), model vs dataset concept presence per class, permuted-label\n"
            "significance and suspected spurious correlations, written as one netCDF Dataset over\n"
            "(layer, concept, class). Run a built-in demo, your own torch model, or a features file."
        ),
        epilog=DATA_FORMAT
        + "\nExamples:\n  latentatlas concepts --demo shapes --out shapes.nc\n"
        "  latentatlas concepts --model mypkg.models:build --layers encoder.2 head --data data.npz --out r.nc\n"
        "  latentatlas concepts --features features.nc --out atoms.nc",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--demo", choices=["shapes", "shapes-control", "atoms"], help="a built-in demonstration")
    src.add_argument("--model", metavar="MODULE:FACTORY", help="importable callable returning a torch.nn.Module")
    src.add_argument("--features", metavar="FILE", help="per-atom features netCDF (latentatlas featurize); classes = subsets")
    p.add_argument("--layers", nargs="+", metavar="LAYER", help="dotted layer names (--model) or feature sets (--features)")
    p.add_argument("--data", metavar="NPZ", help="inputs and labels for --model (format below)")
    p.add_argument("--out", "-o", required=True, help="output netCDF file (written atomically)")
    p.add_argument("--models", nargs="+", default=["chgnet-0.3.0", "sevennet-0"], metavar="NAME", help="featurisers of --demo atoms")
    p.add_argument("--quick", action="store_true", help="shapes demos: smaller images and data (seconds, not minutes)")
    p.add_argument("--test-fraction", type=open_fraction, default=0.5, help="held-out fraction of each class (default 0.5)")
    p.add_argument("--n-permutations", type=positive_int, default=20, help="permuted-label baseline repeats (default 20)")
    p.add_argument("--C", type=positive_float, default=0.1, help="inverse L2 regularisation of the probes (default 0.1)")
    p.add_argument("--batch-size", type=positive_int, default=256, help="samples per forward pass for --model (default 256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def load_npz(path: str) -> tuple:
    """``inputs``, ``classes``, ``{name: labels}`` and ``output_classes`` (None if absent) from a --data file.

    See :data:`DATA_FORMAT`.
    """
    from pathlib import Path

    import numpy as np

    if not Path(path).exists():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as err:
        raise ValueError(f"{path}: {err}; store labels as str or number arrays, not Python objects") from err
    missing = [k for k in ("inputs", "classes") if k not in arrays]
    concepts = {k[len("concept_") :]: v for k, v in arrays.items() if k.startswith("concept_")}
    if missing or not concepts:
        raise ValueError(
            f"{path} lacks {missing + ([] if concepts else ['concept_<name>'])}; it has {sorted(arrays)}\n{DATA_FORMAT}"
        )
    output_classes = arrays.get("output_classes")
    if output_classes is not None and (output_classes.ndim != 1 or len(set(output_classes.tolist())) != len(output_classes)):
        raise ValueError(f"{path}: output_classes must be a 1-D array of distinct class labels, got {output_classes.tolist()}")
    return arrays["inputs"], arrays["classes"], concepts, output_classes


def run(args: argparse.Namespace) -> int:
    from ..io import save

    kwargs = {"test_fraction": args.test_fraction, "n_permutations": args.n_permutations, "C": args.C, "seed": args.seed}
    if args.demo and (args.layers or args.data):
        raise ValueError("--layers and --data apply to --model (and --layers to --features), not to --demo")
    if args.model and not (args.layers and args.data):
        raise ValueError("--model needs --layers (dotted submodule names) and --data (an .npz file)")
    if args.features and args.data:
        raise ValueError("--data applies to --model; a features file carries its own structures")
    if args.quick and args.demo not in ("shapes", "shapes-control"):
        raise ValueError("--quick applies to the shapes demos only")
    check_output(args.out, [p for p in (args.features, args.data) if p])

    if args.demo in ("shapes", "shapes-control"):
        from ..demos.shapes import QUICK, shapes_demo

        size = QUICK if args.quick else {}
        bias = 0.9 if args.demo == "shapes" else 0.0
        result = shapes_demo(bias, progress=not args.quiet, **size, **kwargs)
    elif args.demo == "atoms":
        from ..demos.atoms import atoms_demo

        result = atoms_demo(args.models, progress=not args.quiet, **kwargs)
    elif args.features:
        from ..concepts.atoms import analyse_atoms
        from ..io import load

        result = analyse_atoms(load(args.features), layers=args.layers, **kwargs)
    else:
        from ..concepts import analyse_concepts, capture_activations, capture_gradients, load_factory
        from ..concepts.activations import class_probabilities

        inputs, classes, concepts, output_classes = load_npz(args.data)
        model = load_factory(args.model)
        if len(classes) != len(inputs):
            raise ValueError(f"{args.data}: {len(inputs)} inputs but {len(classes)} classes; give one class per input")
        run_kw = {"batch_size": args.batch_size, "progress": not args.quiet}
        acts = capture_activations(model, inputs, args.layers, **run_kw)
        if output_classes is not None:
            names = [str(c) for c in output_classes]
            proba = class_probabilities(model, inputs, args.batch_size)
            if proba.shape[1] != len(names):
                raise ValueError(
                    f"the model gives {proba.shape[1]} outputs per sample but {args.data} names {len(names)} "
                    f"output_classes {names}: give the class of each output column"
                )
            grads = capture_gradients(model, inputs, args.layers, output_names=names, **run_kw)
            kwargs |= {"class_names": names, "outputs": proba, "gradients": grads}
        result = analyse_concepts(acts, concepts, classes, **kwargs).assign_attrs(model=args.model, data=str(args.data))
    save(result, args.out)
    print(summary(result))
    print(f"wrote {args.out}")
    return 0


def summary(result) -> str:
    """Probe accuracy per layer and the suspected spurious correlations, as text."""
    from ..concepts import spurious_correlations

    lines = ["held-out balanced probe accuracy (layer x concept):"]
    lines.append(result["probe_accuracy"].to_pandas().T.round(2).to_string())
    flagged = spurious_correlations(result)
    lines.append(
        "spurious-correlation rule: "
        + ("calibrated, on the model's own outputs" if flagged.attrs["use_outputs"] else
           "class probes as evidence (no model outputs; for --model, name output_classes in --data)")
    )  # fmt: skip
    hits = flagged.to_dataframe().query("spurious").index.tolist()
    if hits:
        lines.append("suspected spurious correlations (layer, concept, class: excess, model vs dataset presence):")
        for layer, concept, cls in hits:
            at = result.sel(layer=layer, concept=concept, **{"class": cls})
            lines.append(
                f"  {layer}  {concept}  {cls}: excess {float(at['excess']):+.3f}, "
                f"{float(at['model_presence']):.2f} vs {float(at['dataset_presence']):.2f}"
            )
    else:
        lines.append("no suspected spurious correlation")
    return "\n".join(lines)
