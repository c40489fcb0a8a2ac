"""How many neurons one Loihi 2 core takes of a layer, from how Loihi 2 stores synapses
(target `synapse_format = "loihi2"`; the figures and how they were read: docs/targets.md,
"Loihi 2 synaptic memory").

Everything here was read off the one public account of Intel's Loihi 2 compiler at work,
the per-core table and messages it printed for PilotNet (lava-dl benchmark.ipynb):

- Synaptic memory is counted in entries of `synmem_entry_bits` (64), at most
  `synmem_entries_per_core` (12,000) per core.
- A convolution's kernel is stored once per core and shared by all its neurons:
  C_in x kH x kW x ceil(C_out x b / 64) entries, b the signed width of its weights. Its input
  arrives on population axons (the table: 1 or 2 input axons per conv core), so its
  neurons' receptive fields do not count against the axon limit.
- A convolution layer is cut into column strips: full height, all channels, a power-of-two
  number of columns, the widest strip below `conv_tile_neurons` (4,096) neurons; a kernel
  larger than one core's entries divides the strip's channels among ceil(entries / cap)
  cores.
- A dense synapse stores every weight, `dense_weight_bits` (16) each: inputs x
  ceil(n x 16 / 64) entries for n neurons, and takes one input axon per source neuron. The
  compiler starts with the whole layer on one core and, while a core's entries exceed the
  cap, multiplies the number of cores by ceil(entries / cap).
- A split fan-in's merged layer reads one relay neuron per neuron and relay: one entry and
  one axon each.

The mapper keeps its contiguous neuron ranges (channels innermost): a range of a strip's
size holds the same number of neurons as the strip, so the core counts are the compiler's
rule's; which positions share a core (rows, not columns) is this model's approximation, and
moves only the message and hop counts.
"""

from __future__ import annotations

import math

import numpy as np

from snnc.targets import Target


def signed_bits(weight: np.ndarray) -> int:
    """The width of the smallest signed integer holding every weight."""
    top = int(np.abs(weight).max(initial=0))
    return max(2, top.bit_length() + 1)


def conv_entries(weight: np.ndarray, target: Target) -> int:
    """Entries of one shared convolution kernel [C_out, C_in, kH, kW]."""
    c_out, c_in, kh, kw = weight.shape
    return c_in * kh * kw * math.ceil(c_out * signed_bits(weight) / target.synmem_entry_bits)


def dense_entries(inputs: int, neurons: int, target: Target) -> int:
    """Entries of `neurons` dense rows over `inputs` source neurons."""
    return inputs * math.ceil(neurons * target.dense_weight_bits / target.synmem_entry_bits)


def strip_neurons(shape: tuple[int, ...], target: Target) -> int:
    """Neurons of the widest column strip (full height, all channels, a power-of-two number
    of columns) below `conv_tile_neurons`; a single neuron at least."""
    c, h, w = shape
    cols = 1
    while cols * 2 <= w and cols * 2 * h * c < target.conv_tile_neurons:
        cols *= 2
    if cols * h * c < target.conv_tile_neurons:
        return cols * h * c
    # one column is already too tall: rows of it, as many as fit below the limit
    return max(1, ((target.conv_tile_neurons - 1) // c) * c) if c < target.conv_tile_neurons \
        else target.conv_tile_neurons - 1


class Demand:
    """A layer's synaptic memory and input axons as functions of the neurons on a core."""

    def __init__(self, projections, weights: dict[str, np.ndarray], target: Target) -> None:
        self.target = target
        self.kernel = 0        # shared conv kernels: entries whatever the neurons
        self.populations = 0   # conv sources: one population axon each
        self.dense_inputs = 0  # source neurons read by dense rows
        self.relays = 0        # one-to-one relays: one entry and one axon per neuron each
        sources = set()
        for proj in projections:
            if proj.one_to_one:
                self.relays += 1
            elif proj.kernel is not None:
                self.kernel += conv_entries(weights[proj.synapse], target)
                sources.add(proj.source)
            else:
                self.dense_inputs += proj.cell_size
        self.populations = len(sources)
        # Channel groups sharing out a convolution kernel too large for one core's entries
        # (at most one output channel each); other layers keep their synapses whole.
        channels = projections[0].dst.channels if projections else 1
        self.groups = min(math.ceil(self.kernel / target.synmem_entries_per_core), channels) \
            if self.convolution_only else 1

    @property
    def kernel_per_core(self) -> int:
        return math.ceil(self.kernel / self.groups)

    @property
    def convolution_only(self) -> bool:
        return self.kernel > 0 and not self.dense_inputs and not self.relays

    def entries(self, neurons: int) -> int:
        return (self.kernel_per_core + dense_entries(self.dense_inputs, neurons, self.target)
                + self.relays * neurons)

    def axons(self, neurons: int) -> int:
        return self.populations + self.dense_inputs + self.relays * neurons


def neurons_per_core(demand: Demand, shape: tuple[int, ...], size: int,
                     target: Target) -> tuple[int, str]:
    """How many of the layer's `size` neurons one core takes, and the limit that set it."""
    cap = target.synmem_entries_per_core
    if demand.convolution_only and len(shape) == 3:
        strip = strip_neurons(shape, target)
        per_core = max(1, strip // demand.groups)
        return min(per_core, size, target.neurons_per_core), \
            "memory" if demand.groups > 1 else "conv strip"
    cores, bound = 1, "layer end"
    while True:
        per_core = math.ceil(size / cores)
        entries = demand.entries(per_core)
        axons = demand.axons(per_core)
        if per_core > target.neurons_per_core:
            cores, bound = math.ceil(size / target.neurons_per_core), "neurons"
            continue
        if entries <= cap and axons <= target.max_input_axons_per_core:
            return per_core, bound
        if per_core == 1:
            return 1, "memory" if entries > cap else "axons"
        grow = max(math.ceil(entries / cap), math.ceil(axons / target.max_input_axons_per_core))
        cores, bound = cores * max(grow, 2), "memory" if entries > cap else "axons"
