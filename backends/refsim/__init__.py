"""The reference simulator: the definition of every node's semantics.

`simulate(graph, inputs, timesteps=T)` runs a graph, vectorized over the batch, from one
table of per-node-type rules (`RULES`): float graphs in floating point, quantized graphs
(`Fx*` nodes) with the target's integer arithmetic, bit for bit as Lava's bit-accurate
models. `timing="zero"` (the default) is the trained model's timing, no delay per synaptic
hop; `timing="hardware"` is the chip's pipeline timing (one step per hop,
`snnc.analyses.timing`), and `hardware_record` returns that run at every step, pipeline fill
included, as the Lava backend records it and `snnc check` compares it.
"""

from snnc.backends.refsim.simulator import RULES, SimResult, hardware_record, simulate

__all__ = ["RULES", "SimResult", "hardware_record", "simulate"]
