"""Targets are data: word widths, shifts and limits of a chip, not code paths.

Each constant names its source; `targets.md` collects them with the published figures the
mapping and cost model (a later stage) will use.
"""

from __future__ import annotations

from dataclasses import dataclass

from snnc.errors import SnncError


@dataclass(frozen=True)
class Target:
    name: str
    quantized: bool
    # Synapses (lava.proc.dense PyDenseModelBitAcc: clip to 8 bits, then for mixed sign the
    # LSB is dropped: even values in [-256, 254]).
    weight_bits: int = 8
    weight_exp_min: int = -8  # chip: 4-bit signed exponent (nengo-loihi discretize); to confirm
    weight_exp_max: int = 7
    # Neurons (lava.proc.lif PyLifModelBitAcc).
    state_bits: int = 24        # u and v
    decay_bits: int = 12        # du, dv: unsigned, out of 4096
    bias_mant_bits: int = 13    # signed
    bias_exp_max: int = 7       # 3-bit unsigned exponent
    vth_bits: int = 17          # unsigned; compared as v > vth << vth_shift
    vth_shift: int = 6
    act_shift: int = 6          # synaptic input enters u as a_in << 6
    synaptic_input_bits: int = 16  # the chip's dendritic accumulator; Lava does not wrap it
    graded_input_bits: int = 8  # payload of graded input spikes (analog input lowering)
    # CLIF fixed-point tables (snnc's definition; see passes/quantize.py).
    sigmoid_frac_bits: int = 12

    @property
    def decay_unity(self) -> int:
        return 1 << self.decay_bits

    @property
    def state_max(self) -> int:
        return (1 << (self.state_bits - 1)) - 1

    @property
    def vth_max(self) -> int:
        return (1 << self.vth_bits) - 1

    @property
    def bias_mant_max(self) -> int:
        return (1 << (self.bias_mant_bits - 1)) - 1

    @property
    def synaptic_input_max(self) -> int:
        return (1 << (self.synaptic_input_bits - 1)) - 1


FLOAT = Target("float", quantized=False)
LOIHI2 = Target("loihi2", quantized=True)

TARGETS = {t.name: t for t in (FLOAT, LOIHI2)}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise SnncError(f"unknown target {name!r}; known targets: {', '.join(TARGETS)}") from None
