"""The reference simulator: the definition of every node's semantics.

`simulate(graph, inputs, timesteps=T)` runs a float graph with the trained model's timing
(zero delay per synaptic hop), vectorized over the batch. Later stages add bit-accurate
fixed point and the chip's pipeline timing on the same dispatch table.
"""

from snnc.backends.refsim.float_ops import RULES
from snnc.backends.refsim.simulator import SimResult, simulate

__all__ = ["RULES", "SimResult", "simulate"]
