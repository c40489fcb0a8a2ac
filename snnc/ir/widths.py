"""The one table of fixed-point words: every width, shift and unit the fixed-point nodes use.

`Widths` holds them; `FORMAT` is Loihi 2's, as lava-nc 0.10's bit-accurate models define it
(`AbstractPyLifModelFixed`, `PyLifModelBitAcc`, `PyDenseModelBitAcc`), the format the
fixed-point nodes' equations are written in (snnc/ir/fixed.py) and that `Graph.build` checks.
A target (snnc/targets.py) names the widths its chip runs; the quantize pass, range analysis,
the reference simulator's integer rules and the Lava backend's checks all read them from here,
never from literals of their own.

`integer_problems` and `weight_problems` turn a field and the table into one line per problem,
naming the field, the bad value and the accepted range: the IR raises them, range analysis
reports them and the Lava backend refuses them (`snnc.ir.fixed.width_problems` lists a node's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Widths:
    """Word widths, shifts and units of a fixed-point format (bits unless said otherwise)."""

    #: Whose widths these are, for messages ("outside the Loihi 2 range").
    chip: str = "Loihi 2"
    # Synapses (PyDenseModelBitAcc: clip to 8 bits, then for mixed sign the LSB is dropped).
    weight_bits: int = 8
    weight_exp_min: int = -8    # chip: 4-bit signed exponent (nengo-loihi discretize); to confirm
    weight_exp_max: int = 7     # (Lava's Python model shifts by any integer)
    act_shift: int = 6          # synaptic input enters u as a << 6 (MSB alignment)
    synaptic_input_bits: int = 16  # the chip's dendritic accumulator; Lava does not wrap it
    message_bits: int = 24      # payload of a graded spike (Lava's num_message_bits)
    graded_input_bits: int = 8  # the payload quantize gives analog input (<= message_bits)
    # Neurons (AbstractPyLifModelFixed, PyLifModelBitAcc).
    state_bits: int = 24        # u and v: u wraps, v clips, at this width
    decay_bits: int = 12        # du, dv: unsigned, out of 2^12 (decay_unity)
    bias_mant_bits: int = 13    # signed
    bias_exp_max: int = 7       # 3-bit unsigned exponent
    vth_bits: int = 17          # unsigned; compared as v > vth << vth_shift
    vth_shift: int = 6
    # CLIF (snnc's definition, snnc/ir/fixed.py): sigmoid table values and M's fraction bits.
    sigmoid_frac_bits: int = 12
    # Integer arithmetic of the CLIF index, H * sig_mult in int64 (|H| <= state_max).
    sig_shift_max: int = 62
    m_shift_max: int = 24

    @property
    def decay_unity(self) -> int:
        """The decay unit: decay(x, d) multiplies by (decay_unity - d) / decay_unity."""
        return 1 << self.decay_bits

    @property
    def decay_max(self) -> int:
        return self.decay_unity - 1

    @property
    def sigmoid_unity(self) -> int:
        """1.0 in the CLIF's sigmoid table and in M."""
        return 1 << self.sigmoid_frac_bits

    @property
    def state_max(self) -> int:
        """Largest |v| (v clips to +-state_max); u wraps past 2^(state_bits - 1)."""
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

    @property
    def weight_max(self) -> int:
        """Largest single-sign weight magnitude (excitatory [0, max], inhibitory [-max, 0]);
        mixed-sign weights are even values in [-(max + 1), max - 1]."""
        return (1 << self.weight_bits) - 1

    @property
    def sig_mult_max(self) -> int:
        """Largest CLIF index multiplier: |H| * sig_mult stays below 2^63."""
        return (1 << (64 - self.state_bits)) - 1

    @property
    def ranges(self) -> dict[str, tuple[int, int]]:
        """Accepted integers of each field name the fixed-point nodes use."""
        decay = (0, self.decay_max)
        return {
            "weight_exp": (self.weight_exp_min, self.weight_exp_max),
            "bits": (1, self.message_bits),
            "du": decay,
            "dv": decay,
            "bias_mant": (-self.bias_mant_max - 1, self.bias_mant_max),
            "bias_exp": (0, self.bias_exp_max),
            "vth": (0, self.vth_max),
            "reset_sub": (0, self.state_max),
            "sig_lut": (0, self.sigmoid_unity),
            "reset_lut": (0, self.state_max),
            "sig_mult": (0, self.sig_mult_max),
            "sig_shift": (1, self.sig_shift_max),
            "m_shift": (0, self.m_shift_max),
        }

    #: Fields whose range is the chip's, narrower than what Lava's Python models accept.
    CHIP_FIELDS = frozenset({"weight_exp"})

    def where(self, field: str) -> str:
        return f"the {self.chip} range" if field in self.CHIP_FIELDS else "Lava's range"


#: The format of the fixed-point nodes: Loihi 2 as lava-nc 0.10 models it.
FORMAT = Widths()


def integer_problems(node: Any, field: str, widths: Widths) -> list[str]:
    """`field` of `node` is an integer (Python or numpy, not bool) or a non-empty integer array
    within its range in `widths`; else one line saying what it is and what is accepted."""
    lo, hi = widths.ranges[field]
    value = getattr(node, field)
    where = widths.where(field)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iu":
            return [f"{field} is an array of {value.dtype}; expected integers in [{lo}, {hi}]"]
        if value.size == 0:
            return [f"{field} is an empty array; expected integers in [{lo}, {hi}]"]
        vmin, vmax = int(value.min()), int(value.max())
        if vmin < lo or vmax > hi:
            return [f"{field} = array in [{vmin}, {vmax}] is outside {where} [{lo}, {hi}]"]
        return []
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        return [f"{field} = {value!r} ({type(value).__name__}) is not an integer; expected "
                f"an integer in [{lo}, {hi}]"]
    if not lo <= value <= hi:
        return [f"{field} = {value!r} is outside {where} [{lo}, {hi}]"]
    return []


def weight_problems(node: Any, widths: Widths) -> list[str]:
    """The weights are what Lava's Dense keeps unchanged after its clip to `weight_bits` and,
    for mixed signs, its truncation of the LSB; and the exponent is in range."""
    w = node.weight
    if not isinstance(w, np.ndarray) or w.dtype.kind not in "iu":
        kind = w.dtype if isinstance(w, np.ndarray) else type(w).__name__
        return [f"weight is {kind}; expected an integer numpy array of {widths.weight_bits}-bit "
                f"{widths.chip} weights"] + integer_problems(node, "weight_exp", widths)
    top = widths.weight_max
    lo, hi = int(w.min(initial=0)), int(w.max(initial=0))
    if lo >= 0:
        ok, accepted = hi <= top, f"[0, {top}] (excitatory)"
    elif hi <= 0:
        ok, accepted = lo >= -top, f"[-{top}, 0] (inhibitory)"
    else:
        ok, accepted = lo >= -top - 1 and hi <= top - 1 and not np.any(w % 2), \
            f"even values in [{-top - 1}, {top - 1}] (mixed sign: Lava drops the LSB)"
    problems = [] if ok else [f"weight = array in [{lo}, {hi}] is not what Lava's "
                              f"{widths.weight_bits}-bit Dense keeps unchanged: {accepted}"]
    return problems + integer_problems(node, "weight_exp", widths)
