"""Issue 18's QCFS and energy floors on the full Fashion-MNIST test set (10,000 images), loihi2.

``benchmarks/codings.py`` compares every coding on the bundled 1,000 test images; this
script measures the rows the two floors need on all 10,000 official test images
(Debian's ``dataset-fashion-mnist`` under /usr/share/datasets/fashion-mnist):

- the plain Fashion VGG (``fashion_vgg.onnx``): its ANN; rate coding (IF) at T = 32, the
  reference the energy floor holds every coding to; graded spikes at T = 1;
- the QCFS-trained VGG (``fashion_vgg_qcfs.onnx``, ``models/train_qcfs.py``, L = 4): its
  ANN as trained (every ``Clip(x, 0, lambda)`` made the QCFS quantizer
  ``lambda clip(floor(x L / lambda + 1/2), 0, L) / L`` again and run by onnxruntime, an
  oracle outside snnconv), its ReLU-ceiling ANN as exported (``Clip``, what converts);
  rate coding at T = 4 (the floor: within 1 point of its own ANN) and T = 32; graded
  spikes at T = 1 in a 3-bit payload, which ``passes/graded`` caps at L = 4: one step
  sends the trained activations themselves; burst spikes (``snnconv.neurons.burst``,
  binary spikes, up to G = 4 per step) at T = 4, which release what an IF neuron keeps in
  its membrane when its input bunches up in time (the rate-coded SNN's loss at T = L).
- "spread" rows: the same compile with ``spread=True`` (``passes/partition``): the
  synaptic operations balanced over all 128 cores of the chip instead of packed into the
  fewest, so the busiest core, which sets each step's length and so the static energy,
  does less. The program and its outputs are the same. Rate coding at T = 32 is
  measured spread too, so the 1/10 can be read like for like.

Floors checked below the table: QCFS SNN at T = 4 within 1 point of its ANN, its ANN
within 1.5 points of the plain ANN; and per network, the cheapest coding within 0.3
points of rate coding at T = 32 with its energy as a fraction of rate coding's (at most
1/10), plus the QCFS net's graded run against the plain net's rate coding.

Rows are merged into benchmarks/results/codings_full.json as each finishes (a long run
keeps what it measured); ``--rows`` picks some. Writes codings_full.{json,md}.

    python benchmarks/codings_full.py [--rows NAME ...] [--samples N]
    # rate coding at T = 32 on 10,000 images is most of the time
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import onnx
import torch
from codings import TOLERANCE, markdown

import snnconv

RESULTS = Path(__file__).resolve().parent / "results"
OUT = RESULTS / "codings_full"
MODELS = resources.files("snnconv.models")
FASHION = Path("/usr/share/datasets/fashion-mnist")
PLAIN, QCFS = "fashion vgg", "fashion vgg qcfs"
FILES = {PLAIN: "fashion_vgg.onnx", QCFS: "fashion_vgg_qcfs.onnx"}
# row name -> (network, coding label, neuron, options, T)
ROWS = {
    "plain-graded4": (PLAIN, "graded 4-bit", "graded", {"payload_bits": 4}, 1),
    "plain-graded5": (PLAIN, "graded 5-bit", "graded", {"payload_bits": 5}, 1),
    "plain-graded6": (PLAIN, "graded 6-bit", "graded", {"payload_bits": 6}, 1),
    "plain-graded4-spread": (PLAIN, "graded 4-bit, spread", "graded", {"payload_bits": 4, "spread": True}, 1),
    "plain-rate32": (PLAIN, "rate (if)", "if", {}, 32),
    "plain-rate32-spread": (PLAIN, "rate (if), spread", "if", {"spread": True}, 32),
    "qcfs-graded3": (QCFS, "graded 3-bit (L = 4)", "graded", {"payload_bits": 3}, 1),
    "qcfs-graded3-spread": (QCFS, "graded 3-bit (L = 4), spread", "graded", {"payload_bits": 3, "spread": True}, 1),
    "qcfs-rate4": (QCFS, "rate (if)", "if", {}, 4),
    "qcfs-burst4": (QCFS, "burst (G = 4)", "burst", {}, 4),
    "qcfs-rate32": (QCFS, "rate (if)", "if", {}, 32),
}


def _path(file: str) -> str:
    """A bundled model's path, or ``file`` itself where it is a path (``--qcfs``)."""
    return file if Path(file).is_absolute() else str(MODELS.joinpath(file))


def official_test(first: int | None) -> tuple[np.ndarray, np.ndarray]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
    from train_fashion import read_idx

    x = (read_idx(FASHION / "t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = read_idx(FASHION / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    return x[:first], y[:first]


def quantized(model: onnx.ModelProto, levels: int) -> onnx.ModelProto:
    """``model`` with every ``Clip(x, 0, lambda)`` replaced by QCFS's ``lambda clip(floor(x L / lambda + 1/2), 0,
    L) / L``: the network as it was trained (the exported file keeps the ReLU with its ceiling, which converts)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    constants = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        if node.op_type == "Constant":
            constants[node.output[0]] = onnx.numpy_helper.to_array(node.attribute[0].t)
        if node.op_type != "Clip":
            nodes.append(node)
            continue
        ceiling = float(constants[node.input[2]])
        x, y, tag = node.input[0], node.output[0], node.output[0].replace("/", "_")
        scale = {f"{tag}_in": levels / ceiling, f"{tag}_half": 0.5, f"{tag}_zero": 0.0, f"{tag}_top": float(levels),
                 f"{tag}_out": ceiling / levels}
        model.graph.initializer.extend(onnx.numpy_helper.from_array(np.array(v, np.float32), k) for k, v in scale.items())
        nodes += [onnx.helper.make_node("Mul", [x, f"{tag}_in"], [f"{tag}_a"]),
                  onnx.helper.make_node("Add", [f"{tag}_a", f"{tag}_half"], [f"{tag}_b"]),
                  onnx.helper.make_node("Floor", [f"{tag}_b"], [f"{tag}_c"]),
                  onnx.helper.make_node("Clip", [f"{tag}_c", f"{tag}_zero", f"{tag}_top"], [f"{tag}_d"]),
                  onnx.helper.make_node("Mul", [f"{tag}_d", f"{tag}_out"], [y])]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def onnx_accuracy(model: onnx.ModelProto, x: np.ndarray, y: np.ndarray) -> float:
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    logits = np.concatenate([session.run(None, {name: x[i:i + 1000]})[0] for i in range(0, len(x), 1000)])
    return float((logits.argmax(1) == y).mean())


def anns(x: np.ndarray, y: np.ndarray) -> dict:
    """Per network, the ANN's accuracy: the plain one, and the QCFS one as trained and as exported."""
    found = {PLAIN: onnx_accuracy(onnx.load(str(MODELS.joinpath(FILES[PLAIN]))), x, y)}
    if Path(_path(FILES[QCFS])).is_file():
        model = onnx.load(_path(FILES[QCFS]))
        levels = snnconv.load_onnx(model).fact("qcfs_levels")
        found[QCFS] = onnx_accuracy(quantized(model, levels), x, y)
        found[QCFS + " (clip)"] = onnx_accuracy(model, x, y)
    return found


def measure(name: str, x: np.ndarray, y: np.ndarray, ann: dict) -> dict:
    network, coding, neuron, options, steps = ROWS[name]
    calibration = np.load(MODELS.joinpath("fashion_calib.npz"))["x"]
    net = snnconv.compile(_path(FILES[network]), "loihi2", calibration, timesteps=steps,
                          neuron=neuron, **options)
    total = len(x)
    result = net.run(x, steps, progress=lambda done: print(f"  {name}: {done}/{total}", flush=True))
    stats = result.stats
    return {"row": name, "network": network, "coding": coding, "timesteps": steps, "ann_accuracy": ann[network],
            "accuracy": result.accuracy(y), "ann_macs": net.ann["macs"], "synaptic_ops": stats["synaptic_ops"],
            "messages": stats["spikes"], "energy_uj": stats["energy_uj"], "latency_us": stats["latency_us"],
            "energy_split_uj": stats["energy_split_uj"], "samples": total}


def floors(rows: list[dict], ann: dict) -> list[str]:
    """Issue 18's QCFS floors and the energy floor across the two networks."""
    by = {r["row"]: r for r in rows}
    lines = [f"- ANNs on the same images: plain {100 * ann[PLAIN]:.2f}%"
             + (f"; QCFS as trained {100 * ann[QCFS]:.2f}%, as exported (ReLU with ceilings) "
                f"{100 * ann[QCFS + ' (clip)']:.2f}%" if QCFS in ann else "") + "."]
    if QCFS in ann:
        gap = ann[PLAIN] - ann[QCFS]
        lines.append(f"- QCFS ANN vs plain ANN: {100 * gap:+.2f} points below (floor: at most 1.5): "
                     f"{'meets' if gap <= 0.015 + 1e-9 else 'misses'}.")
    for r in rows:
        if r["network"] == QCFS and r["timesteps"] <= 4:
            gap = ann[QCFS] - r["accuracy"]
            lines.append(f"- QCFS SNN at T = {r['timesteps']} ({r['coding']}): {100 * r['accuracy']:.2f}%, "
                         f"{100 * gap:+.2f} points below its ANN (floor: at most 1 at T = 4): "
                         f"{'meets' if gap <= 0.01 + 1e-9 else 'misses'}.")
    reference = by.get("plain-rate32")
    if reference:
        for r in rows:
            if r is reference or r["timesteps"] == 32:  # rate coding, spread or not, is the reference
                continue
            close = r["accuracy"] >= reference["accuracy"] - TOLERANCE - 1e-9
            share = reference["energy_uj"] / r["energy_uj"]
            lines.append(f"- {r['network']}, {r['coding']} at T = {r['timesteps']}: {100 * r['accuracy']:.2f}% "
                         f"({'within' if close else 'not within'} 0.3 points of the plain net's rate coding at "
                         f"T = 32, {100 * reference['accuracy']:.2f}%), {r['energy_uj']:.1f} uJ = 1/{share:.1f} of "
                         f"its {reference['energy_uj']:.1f} uJ"
                         + (f" ({'meets' if share >= 10 else 'misses'} 1/10)." if close else "."))
    spread = by.get("plain-rate32-spread")
    if spread:
        for r in rows:
            if r["row"].endswith("-spread") and r["timesteps"] != 32:
                lines.append(f"- Like for like (both spread): {r['network']}, {r['coding']} at T = {r['timesteps']}, "
                             f"{r['energy_uj']:.1f} uJ = 1/{spread['energy_uj'] / r['energy_uj']:.1f} of rate coding "
                             f"at T = 32 spread, {spread['energy_uj']:.1f} uJ ({100 * spread['accuracy']:.2f}%).")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--samples", type=int, help="the first N test images (default: all 10,000)")
    parser.add_argument("--qcfs", help="a QCFS-trained candidate to measure instead of the bundled one")
    parser.add_argument("--out", default="codings_full", help="results file name, without suffix")
    args = parser.parse_args()
    global OUT
    OUT = RESULTS / args.out
    if args.qcfs:
        FILES[QCFS] = str(Path(args.qcfs).resolve())
    torch.set_num_threads(2)
    x, y = official_test(args.samples)
    ann = anns(x, y)
    print(json.dumps(ann), flush=True)
    old = json.loads(OUT.with_suffix(".json").read_text()) if OUT.with_suffix(".json").exists() else {}
    rows = {r["row"]: r for r in old.get("rows", []) if r.get("samples") == len(y)}
    meta = {"snnconv": snnconv.__version__, "torch": torch.__version__, "machine": platform.machine(),
            "target": "loihi2", "samples": f"the first {len(y)} of the 10,000 official Fashion-MNIST test images",
            "ann_accuracy": ann, "qcfs_model": Path(FILES[QCFS]).name}
    RESULTS.mkdir(exist_ok=True)
    for name in args.rows:
        if ROWS[name][0] not in ann:
            continue
        rows[name] = measure(name, x, y, ann)
        print(rows[name], flush=True)
        ordered = [rows[k] for k in ROWS if k in rows]
        OUT.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": ordered}, indent=2) + "\n")
        OUT.with_suffix(".md").write_text(markdown(ordered) + "\n" + "\n".join(floors(ordered, ann)) + "\n")
    print(OUT.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
