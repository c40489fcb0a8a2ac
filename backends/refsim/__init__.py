"""The reference simulator: the definition of every node's semantics.

`simulate(graph, inputs, timesteps=T)` runs a graph with the trained model's timing (zero
delay per synaptic hop), vectorized over the batch: float graphs in floating point, and
quantized graphs (`Fx*` nodes) with the target's integer arithmetic, bit for bit as Lava's
bit-accurate models. A later stage adds the chip's pipeline timing on the same table.
"""

from snnc.backends.refsim.simulator import RULES, SimResult, hardware_record, simulate

__all__ = ["RULES", "SimResult", "hardware_record", "simulate"]
