"""Print the float-versus-fixed-point figures the README records for the shipped examples.

    .venv/bin/python examples/quantization_figures.py [--fold-thresholds]

Each example is traced from its checkpoint, folded, quantized for loihi2 and run by the
reference simulator in float and in fixed point on all 360 test images (T = 4) of the data
set it trained on (`train_digits.DATA`: digits, or digits32 for the deep ResNets).
`--models a,b` picks examples (default: all of `models.MODELS`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

EXAMPLES = Path(__file__).resolve().parent
sys.path.insert(0, str(EXAMPLES))

from models import MODELS  # noqa: E402
from train_digits import DATA  # noqa: E402

from snnc.datasets import SHAPES, SPLITS  # noqa: E402
from snnc.frontends.torch import trace  # noqa: E402
from snnc.targets import LOIHI2  # noqa: E402
from snnc.tools.evaluate import evaluate  # noqa: E402
from snnc.tools.pass_runner import compile_graph  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold-thresholds", action="store_true")
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    print(f"{'example':<20} {'float':>7} {'fixed':>7} {'change':>7}  per-layer spike agreement")
    for name in args.models.split(","):
        source = DATA.get(name, "digits")
        _, _, x, y = SPLITS[source]()
        shape = SHAPES[source]
        model = MODELS[name](timesteps=4)
        state = torch.load(EXAMPLES / "checkpoints" / f"{name}.pt", weights_only=True)
        model.load_state_dict(state.get("net", state))
        graph = trace(model.eval(), torch.zeros(2, *shape), 4, input_shape=shape)
        compiled = compile_graph(graph, LOIHI2, timesteps=4,
                                 threshold_folding=args.fold_thresholds)
        ev = evaluate(compiled.graph, compiled.reference, x, y, 4)
        layers = ", ".join(f"{k} {100 * v:.1f}%" for k, v in ev.agreement.items())
        print(f"{name:<20} {100 * ev.float_accuracy:>6.2f}% {100 * ev.fixed_accuracy:>6.2f}% "
              f"{-ev.delta_points:>+6.2f}  {layers}")


if __name__ == "__main__":
    main()
