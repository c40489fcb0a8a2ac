"""Print the float-versus-fixed-point figures the README records for the shipped examples.

    .venv/bin/python examples/quantization_figures.py [--fold-thresholds]

Each example is traced from its checkpoint, folded, quantized for loihi2 and run by the
reference simulator in float and in fixed point on all 360 digits test images (T = 4).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

EXAMPLES = Path(__file__).resolve().parent
sys.path.insert(0, str(EXAMPLES))

from models import MODELS  # noqa: E402

from snnc.datasets import digits_split  # noqa: E402
from snnc.frontends.torch import trace  # noqa: E402
from snnc.targets import LOIHI2  # noqa: E402
from snnc.tools.evaluate import evaluate  # noqa: E402
from snnc.tools.pass_runner import compile_graph  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold-thresholds", action="store_true")
    args = parser.parse_args()
    _, _, x, y = digits_split()
    print(f"{'example':<20} {'float':>7} {'fixed':>7} {'change':>7}  per-layer spike agreement")
    for name, factory in MODELS.items():
        model = factory(timesteps=4)
        state = torch.load(EXAMPLES / "checkpoints" / f"{name}.pt", weights_only=True)
        model.load_state_dict(state.get("net", state))
        graph = trace(model.eval(), torch.zeros(2, 1, 8, 8), 4, input_shape=(1, 8, 8))
        compiled = compile_graph(graph, LOIHI2, timesteps=4,
                                 threshold_folding=args.fold_thresholds)
        ev = evaluate(compiled.graph, compiled.reference, x, y, 4)
        layers = ", ".join(f"{k} {100 * v:.1f}%" for k, v in ev.agreement.items())
        print(f"{name:<20} {100 * ev.float_accuracy:>6.2f}% {100 * ev.fixed_accuracy:>6.2f}% "
              f"{-ev.delta_points:>+6.2f}  {layers}")


if __name__ == "__main__":
    main()
