"""BatchNormalization (inference mode) -> ``BatchNorm`` layers, folded later by a pass."""

from __future__ import annotations

import numpy as np

from snnconv.errors import BadModelError
from snnconv.frontend.context import Context, Node
from snnconv.frontend.registry import converter
from snnconv.ir import BatchNorm


@converter("BatchNormalization", 9, 14, 15)
def batch_normalization(node: Node, ctx: Context) -> None:
    if node.attr("training_mode", 0):
        raise node.unsupported("training_mode=1; export the model in eval mode (model.eval())")
    if len([t for t in node.outputs if t]) > 1:
        raise node.unsupported("running-statistics outputs are requested (training mode); export in eval mode")
    gamma, beta, mean, var = (
        ctx.require_const(node, i, what).astype(np.float32)
        for i, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var"))
    )
    eps = float(node.attr("epsilon", 1e-5))
    if not np.all(var + eps > 0):
        raise BadModelError(f"{node.label}: variance + epsilon ({eps}) is not positive everywhere; "
                            "fix or re-export the model")
    ctx.emit(node, BatchNorm, [node.inputs[0]], gamma=gamma, beta=beta, mean=mean, var=var, eps=eps)
