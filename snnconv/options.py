"""The options of the API and the command line, checked in one place.

Each check returns the value in its plain Python type or raises ``BadOptionError`` (a
``ValueError`` too) naming the option, the value and what is allowed. The command line's
argument types call the same checks, so both surfaces accept exactly the same values.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

from snnconv.errors import BadOptionError
from snnconv.neurons import burst as burst_neurons
from snnconv.neurons import graded

__all__ = ["EXECUTORS", "MAX_TIMESTEPS", "burst", "choice", "choices", "decay", "device", "payload_bits", "percentile",
           "positive", "shape", "timesteps", "timesteps_list"]

# Rate-coded conversions reach their ANN's accuracy within a few hundred steps (Rueckauer et
# al. 2017 report convergence by ~1,000 on ImageNet); 16,384 leaves room for the slowest and
# keeps a run bounded: T = 2^31 would simulate for days.
MAX_TIMESTEPS = 1 << 14
EXECUTORS = ("local", "ray")  # where a run's batches simulate: here, or as tasks on Ray (snnconv.distributed)


def positive(value, name: str, high: int | None = None) -> int:
    """``value`` (an int, or its digits as text) as an int in [1, ``high``]; bools and fractions are refused."""
    number = None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value)
    if number is None or number < 1:
        raise BadOptionError(f"{name}: {value!r} is not a positive integer")
    if high is not None and number > high:
        raise BadOptionError(f"{name}: {number:,} is out of range; give an integer from 1 to {high:,}")
    return number


def timesteps(value, name: str = "timesteps") -> int:
    """A number of timesteps T in [1, ``MAX_TIMESTEPS``]."""
    steps = positive(value, name)
    if steps > MAX_TIMESTEPS:
        raise BadOptionError(f"{name}: {steps:,} is more than the {MAX_TIMESTEPS:,} steps snnconv simulates; "
                             "rate-coded networks reach their ANN's accuracy within a few hundred: give a smaller T")
    return steps


def timesteps_list(values, name: str = "timesteps") -> tuple[int, ...]:
    """One T or several, sorted and without repeats; "8,16,32" is accepted as text."""
    if isinstance(values, str):
        text, values = values, values.split(",")
        if not all(v.strip().isdigit() for v in values):
            raise BadOptionError(f"{name}: {text!r} is not a list of timesteps like 8,16,32")
    elif not isinstance(values, Iterable):
        values = [values]
    steps = tuple(sorted({timesteps(v, name) for v in values}))
    if not steps:
        raise BadOptionError(f"{name}: empty; give one or more T, e.g. 8,16,32")
    return steps


def percentile(value, name: str = "percentile") -> float | str:
    """A normalization percentile in (0, 100], or "auto"."""
    if value == "auto":
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(value, bool) or not 0 < number <= 100:
        raise BadOptionError(f"{name}: {value!r} is not a percentile in (0, 100] or 'auto'")
    return number


def decay(value, neuron: str, name: str = "decay") -> int:
    """A leaky neuron's membrane decay per step, a fraction in (0, 1), as an integer in 4096ths (Loihi's decay_v).

    None is 1/256 for ``neuron`` "lif" and no decay for the others; a decay for a neuron
    without leak is refused.
    """
    if neuron != "lif":
        if value is not None:
            raise BadOptionError(f"{name}: {value!r} is given but neuron {neuron!r} has no leak; use neuron 'lif'")
        return 0
    if value is None:
        return 16
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    steps = round(number * 4096) if math.isfinite(number) else 0
    if isinstance(value, bool) or not 1 <= steps <= 4095:
        raise BadOptionError(f"{name}: {value!r} is not a decay per step in [1/4096, 4095/4096]")
    return steps


def payload_bits(value, neuron: str, name: str = "payload_bits") -> int | None:
    """Graded spikes' payload width in bits, 1 to ``MAX_PAYLOAD_BITS`` (None: 8) for ``neuron`` "graded"; None
    for the other neurons, which refuse a value (they send no payload)."""
    return _count_for(value, neuron, "graded", name, graded.DEFAULT_PAYLOAD_BITS, graded.MAX_PAYLOAD_BITS,
                      "sends no payload")


def burst(value, neuron: str, name: str = "burst") -> int | None:
    """The longest burst of a burst neuron, 1 to ``MAX_BURST`` spikes (None: ``DEFAULT_BURST``) for ``neuron``
    "burst"; None for the other neurons, which refuse a value."""
    return _count_for(value, neuron, "burst", name, burst_neurons.DEFAULT_BURST, burst_neurons.MAX_BURST,
                      "fires no bursts")


def _count_for(value, neuron: str, owner: str, name: str, default: int, high: int, others: str) -> int | None:
    if neuron != owner:
        if value is not None:
            raise BadOptionError(f"{name}: {value!r} is given but neuron {neuron!r} {others}; use neuron {owner!r}")
        return None
    return default if value is None else positive(value, name, high)


def choice(value, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise BadOptionError(f"{name}: {value!r} is not one of {', '.join(map(repr, allowed))}")
    return value


def choices(value, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """One of ``allowed`` or several, in the order given and without repeats; "if,graded" is accepted as text."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, Iterable):
        items = list(value)
    else:
        items = [value]
    picked = tuple(dict.fromkeys(choice(item.strip() if isinstance(item, str) else item, name, allowed)
                                 for item in items))
    if not picked:
        raise BadOptionError(f"{name}: empty; give one or more of {', '.join(map(repr, allowed))}")
    return picked


def device(value, name: str = "device") -> str:
    """A torch device the chip model runs on: "cpu", "cuda" or "cuda:N"."""
    text = str(value)
    kind, _, index = text.partition(":")
    if kind not in ("cpu", "cuda") or (index and not (kind == "cuda" and index.isdigit())):
        raise BadOptionError(f"{name}: {value!r} is not 'cpu', 'cuda' or 'cuda:N'")
    return text


def shape(value, name: str = "input_shape") -> tuple[int, ...]:
    """One sample's shape: positive integers, as a sequence or as text like "3,32,32"."""
    if isinstance(value, str):
        value = value.replace("x", ",").split(",")
    if not isinstance(value, Iterable):
        raise BadOptionError(f"{name}: {value!r} is not a shape like (3, 32, 32)")
    dims = tuple(positive(d, name) for d in value)
    if not dims:
        raise BadOptionError(f"{name}: empty; give one sample's shape like (3, 32, 32)")
    return dims
