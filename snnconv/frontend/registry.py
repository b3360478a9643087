"""The registry of ONNX op converters, keyed by op and by the opset version in which it changed.

A converter is one decorated function in an op-family module of ``snnconv.frontend.ops``::

    @converter("Relu", 6, 13, 14)
    def relu(node, ctx): ...

The versions are the ``since_version`` of each schema the function handles. A model's
node is resolved with ``onnx.defs.get_schema(op, max_inclusive_version=opset)``: a model
at opset 12 uses Relu-6, at opset 14 Relu-14. A schema version nobody registered is
refused by name rather than guessed at, so a new onnx release cannot change meaning
silently. Registering the same (op, version) twice is an error.

An op that snnconv knows it cannot convert may register a refusal instead, for all its
versions (``@refusal("LeakyRelu")``): a function that raises the one-line error naming the
node, why and what to do. Refused ops are not in ``supported_ops``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

import onnx

from snnconv.errors import UnsupportedOpError

__all__ = ["converter", "lookup", "refusal", "registered_versions", "supported_ops"]

_CONVERTERS: dict[tuple[str, int], Callable] = {}
_REFUSALS: dict[str, Callable] = {}


def converter(op_type: str, *versions: int) -> Callable[[Callable], Callable]:
    """Register the decorated function for ``op_type`` at each schema version in ``versions``."""

    def register(fn: Callable) -> Callable:
        for version in versions:
            key = (op_type, version)
            if key in _CONVERTERS:
                raise RuntimeError(f"converter for {op_type}-{version} registered twice")
            _CONVERTERS[key] = fn
        return fn

    return register


def refusal(*op_types: str) -> Callable[[Callable], Callable]:
    """Register the decorated function as the refusal of each op in ``op_types``, at every version."""

    def register(fn: Callable) -> Callable:
        for op_type in op_types:
            if op_type in _REFUSALS or any(op == op_type for op, _ in _CONVERTERS):
                raise RuntimeError(f"{op_type} has a converter or a refusal already")
            _REFUSALS[op_type] = fn
        return fn

    return register


def _load_ops() -> None:
    """Import every module of ``snnconv.frontend.ops`` so their converters register."""
    package = importlib.import_module("snnconv.frontend.ops")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def supported_ops() -> list[str]:
    """The op types snnconv converts (at some opset), sorted."""
    _load_ops()
    return sorted({op for op, _ in _CONVERTERS})


def registered_versions(op_type: str) -> list[int]:
    """The schema versions of ``op_type`` that have a converter."""
    _load_ops()
    return sorted(v for op, v in _CONVERTERS if op == op_type)


def lookup(op_type: str, domain: str, opset: int, label: str) -> Callable:
    """The converter for ``op_type`` in a model importing ``domain`` at ``opset``.

    ``label`` names the node in error messages.
    """
    _load_ops()
    supported = ", ".join(supported_ops())
    if domain not in ("", "ai.onnx"):
        raise UnsupportedOpError(
            f"{label}: ops of domain {domain!r} are not supported; snnconv reads the default ONNX domain: {supported}"
        )
    try:
        since = onnx.defs.get_schema(op_type, max_inclusive_version=opset, domain="").since_version
    except onnx.defs.SchemaError:
        raise UnsupportedOpError(f"{label}: {op_type} is not an ONNX op at opset {opset}; supported ops: {supported}") from None
    found = _CONVERTERS.get((op_type, since)) or _REFUSALS.get(op_type)
    if found is not None:
        return found
    versions = registered_versions(op_type)
    if versions:
        raise UnsupportedOpError(
            f"{label}: {op_type}-{since} (opset {opset}) is not supported yet; supported versions of {op_type}: "
            f"{versions}; convert the model to one of those opsets with onnx.version_converter"
        )
    raise UnsupportedOpError(
        f"{label}: snnconv has no converter for {op_type}; replace it in the model by supported ops: {supported}"
    )
