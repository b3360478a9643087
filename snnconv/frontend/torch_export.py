"""A ``torch.nn.Module`` plus an example input -> ONNX ModelProto, in memory.

Both of torch's exporters are offered: ``"dynamo"`` (``torch.export``, the default of
current torch) and ``"legacy"`` (TorchScript tracing). The batch axis is exported as
dynamic so the model takes any batch size; the module's training flag is restored.

A module holding a ``torch.nn.RNN``, ``LSTM`` or ``GRU`` is always exported with the legacy
(TorchScript) exporter: it writes the ONNX ``RNN`` / ``LSTM`` / ``GRU`` node whole (one per
stacked layer), which the frontend converts (a ReLU RNN) or refuses with the reason (LSTM,
GRU), whereas the dynamo exporter unrolls the recurrence into per-item MatMuls that no
longer say they were a recurrent layer.

Nodes are named after the module that computed them (``module_names``), so the layers a
user reads in reports are the module's own paths (``features.3``, ``layer1.0.conv1``)
rather than the exporter's (``node_conv2d_1``, ``/features/features.3/Conv``).
"""

from __future__ import annotations

import ast
import contextlib
import io
import logging
import re
import warnings

import numpy as np
import onnx
import torch

from snnconv import training
from snnconv.errors import BadModelError
from snnconv.frontend.importer import QCFS_LEVELS_KEY

__all__ = ["EXPORTERS", "export_module", "module_names", "recurrent_modules"]

EXPORTERS = ("dynamo", "legacy")
# Ops that only move or reshape values: in a module that emits several nodes, the first other op takes the module's
# name (features.7's ReduceMean, not the Unsqueeze around it).
_PLUMBING = frozenset({"Cast", "Concat", "Constant", "ConstantOfShape", "Expand", "Flatten", "Gather", "Identity",
                       "Reshape", "Shape", "Slice", "Squeeze", "Transpose", "Unsqueeze"})


def export_module(module: torch.nn.Module, example_input: torch.Tensor, exporter: str = "dynamo") -> onnx.ModelProto:
    """Export ``module`` in eval mode, tracing it on ``example_input`` (batch first; a numpy array is taken as a
    tensor)."""
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    if isinstance(example_input, np.ndarray):
        example_input = torch.from_numpy(example_input)
    if not isinstance(example_input, torch.Tensor) or example_input.ndim < 2:
        raise BadModelError("example_input must be a tensor of shape (batch, ...) that the module accepts")
    if exporter == "dynamo" and recurrent_modules(module):
        exporter = "legacy"  # the RNN node whole, not unrolled (see the module docstring)
    if example_input.dtype != torch.float32:
        raise BadModelError(f"example_input has dtype {example_input.dtype}; snnconv converts float32 networks: "
                            "pass a float32 example (example.float()) and a module in float32 (module.float())")
    was_training = module.training
    module.eval()
    try:
        with _quiet(), training.exporting(module):
            model = _export(module, example_input, exporter)
    except Exception as exc:  # exporters raise many kinds; all mean the module did not export
        raise BadModelError(f"torch module {type(module).__name__}: ONNX export ({exporter}) failed on an example of "
                            f"shape {tuple(example_input.shape)}: {_root_cause(exc)}; pass an example batch the "
                            f"module takes (batch first)") from exc
    finally:
        module.train(was_training)
    for node, name in zip(model.graph.node, module_names(model.graph.node)):
        node.name = name
    if (levels := training.levels_of(module)) is not None:
        onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props},
                                            QCFS_LEVELS_KEY: str(levels)})
    return model


def recurrent_modules(module: torch.nn.Module) -> list[str]:
    """The paths of ``module``'s recurrent layers (``torch.nn.RNN``, ``LSTM``, ``GRU``; "" for the module itself)."""
    return [name for name, sub in module.named_modules() if isinstance(sub, torch.nn.RNNBase)]


def module_names(nodes) -> list[str]:
    """Names for exported ``nodes`` after the module paths the exporter recorded; unique, and never empty.

    The dynamo exporter records each node's module scopes in its metadata
    (``pkg.torch.onnx.name_scopes``: ``['', 'layer1', 'layer1.0', 'layer1.0.conv1', 'conv2d']``),
    the legacy exporter in the node's name (``/layer1/layer1.0/conv1/Conv``, a scope either
    qualified or relative to the one before). A node of a module without submodules that
    emitted nodes (a Conv2d, a ReLU) takes the module's path (``layer1.0.conv1``); one of a
    module with such submodules (the residual Add of a block, a functional flatten in
    ``forward``) the path and its op (``layer1.0.add``, ``reshape``); where a module emits
    several nodes, those that compute (not a reshape or a constant) take the path (a module
    called twice: ``act``, ``act_2``) and the others add their op (``pool.unsqueeze``). A
    node that the exporter's optimizer made from several (a conv with its BatchNorm fused
    in) takes the path of its weights' module (``layer1.0.conv1``, its initializer being
    ``layer1.0.conv1.weight``), as the legacy export names that conv. A node without a
    recorded scope keeps its name; names taken twice get ``_2``, ``_3``, ... in node order.
    """
    nodes = list(nodes)
    paths = [_module_path(node) for node in nodes]
    recorded = [path for path in paths if path is not None]
    parents = {path[:i] for path in recorded for i in range(len(path)) if path[i] == "."} | \
        ({""} if any(recorded) else set())
    primary: dict[str, int] = {}  # module path -> the node that takes it
    for index, (node, path) in enumerate(zip(nodes, paths)):
        if path is None or path in parents:
            continue
        if path not in primary or nodes[primary[path]].op_type in _PLUMBING and node.op_type not in _PLUMBING:
            primary[path] = index
    names, taken = [], set()
    for index, (node, path) in enumerate(zip(nodes, paths)):
        if path is None:
            base = node.name or f"{node.op_type}_{index}"
        elif primary.get(path) == index or path not in parents and node.op_type not in _PLUMBING:
            base = path or node.op_type.lower()  # a module called twice: path, path_2
        else:
            base = f"{path}.{node.op_type.lower()}" if path else node.op_type.lower()
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        names.append(name)
    return names


def _module_path(node) -> str | None:
    """The path of the module that emitted ``node`` ("" for the root module), or None where none is recorded."""
    metadata = {entry.key: entry.value for entry in node.metadata_props}
    if "pkg.onnxscript.rewriter.rule_name" in metadata and len(node.input) > 1 and node.input[1].endswith(".weight"):
        return node.input[1][:-len(".weight")]  # e.g. a conv with its BatchNorm fused in: the conv's weights, its name
    if "pkg.torch.onnx.name_scopes" in metadata:
        try:
            scopes = ast.literal_eval(metadata["pkg.torch.onnx.name_scopes"])
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
        if not isinstance(scopes, list) or len(scopes) < 2:
            return None
        scopes = scopes[1:-1]  # the root first, the op last
    elif node.name.startswith("/"):
        scopes = node.name.split("/")[1:-1]
    else:
        return None
    path = ""
    for scope in scopes:
        if not isinstance(scope, str) or not scope:
            return None
        path = scope if not path or scope.startswith(path + ".") else f"{path}.{scope}"
    return path


def _export(module: torch.nn.Module, example_input: torch.Tensor, exporter: str) -> onnx.ModelProto:
    if exporter == "dynamo":
        batch = torch.export.Dim("batch", min=1)
        program = torch.onnx.export(module, (example_input,), dynamo=True, input_names=["input"],
                                    dynamic_shapes=({0: batch},), verbose=False)
        return program.model_proto
    buffer = io.BytesIO()
    torch.onnx.export(module, (example_input,), buffer, dynamo=False, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "batch"}},
                      training=torch.onnx.TrainingMode.PRESERVE)
    return onnx.load_from_string(buffer.getvalue())


def _root_cause(exc: BaseException) -> str:
    """The first line of the innermost exception the exporter's chain wraps, without terminal colours: the
    exporters wrap the module's own error (a shape mismatch) in pages of their own report."""
    while exc.__cause__ is not None or exc.__context__ is not None and not exc.__suppress_context__:
        exc = exc.__cause__ or exc.__context__
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    return first if len(first) <= 300 else first[:297] + "..."


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' progress prints and deprecation warnings."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo",
                                                    "torch.export._trace", "torch._subclasses.fake_tensor")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.CRITICAL)  # export failures come back as one BadModelError line
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
