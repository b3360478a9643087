"""snnconv: an ANN-to-SNN conversion compiler for neuromorphic chips.

torch and onnx are imported on first use of what needs them, so ``--version`` starts
fast, ``snnconv inspect`` does not load torch and ``snnconv run`` does not load onnx.
"""

from snnconv import errors
from snnconv.ir import Graph
from snnconv.version import __version__

__all__ = ["Graph", "__version__", "bench", "compile", "errors", "evaluate", "load", "load_onnx", "load_torch"]


def __getattr__(name: str):
    if name in ("load_onnx", "load_torch"):
        import snnconv.frontend

        return getattr(snnconv.frontend, name)
    if name in ("compile", "load", "CompiledNetwork"):
        import snnconv.compiled

        return getattr(snnconv.compiled, name)
    if name == "evaluate":
        from snnconv.evaluation import evaluate

        return evaluate
    if name == "bench":
        from snnconv.benchmark import bench

        return bench
    if name == "ann":
        import snnconv.ann

        return snnconv.ann
    raise AttributeError(f"module 'snnconv' has no attribute {name!r}")
