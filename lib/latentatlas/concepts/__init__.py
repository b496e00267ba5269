"""Concept-based interpretability (after BAGEL, arXiv:2507.05810).

Linear probes read human concepts from each layer of a model; per class, the model's
concept presence is set against the dataset's; a knowledge graph of classes, concepts and
layers exposes suspected spurious correlations. torch is imported only by the functions
that need it, and scikit-learn (of which :class:`LinearProbes` is an estimator) only when the
probes are first used.
"""

from .activations import activation_arrays, capture_activations, layer_names, load_factory
from .graph import knowledge_graph, rule_conditions, spurious_correlations
from .moad import moad
from .presence import analyse_concepts, benjamini_hochberg, concept_matrix, examples
from .sensitivity import capture_gradients

__all__ = [
    "activation_arrays",
    "capture_activations",
    "layer_names",
    "load_factory",
    "knowledge_graph",
    "spurious_correlations",
    "rule_conditions",
    "capture_gradients",
    "moad",
    "analyse_concepts",
    "benjamini_hochberg",
    "concept_matrix",
    "examples",
    "LinearProbes",
    "balanced_accuracy",
]


def __getattr__(name: str):
    if name in ("LinearProbes", "balanced_accuracy"):  # .probes imports scikit-learn
        from . import probes

        return getattr(probes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
