"""Targets are data: word widths, shifts and limits of a chip, not code paths.

Each constant names its source; `docs/targets.md` collects the published figures
behind the word widths (`widths`), the resource limits (analyses/mapping.py) and the cost
constants (tools/cost.py), and marks which are Loihi 1 stand-ins or assumptions.
"""

from __future__ import annotations

from dataclasses import dataclass

from snnc.errors import SnncError
from snnc.ir.widths import FORMAT, Widths


@dataclass(frozen=True)
class Target:
    name: str
    quantized: bool
    # Every word width, shift and unit of the chip's fixed point: the one table
    # (snnc/ir/widths.py), read by quantize, range analysis and the backends' checks.
    widths: Widths = FORMAT
    # Resources, for analyses/mapping.py. [L2] = Loihi 2 brief, [L1] = Davies et al. 2018, a
    # Loihi 1 stand-in where Loihi 2 publishes no figure, [A] = assumption (docs/targets.md).
    neurons_per_core: int = 8192        # [L2] 1M neurons / 128 cores (WikiChip); to confirm
    sram_bytes_per_core: int = 128 * 1024  # [L2] 128 KB per core, shared by synapses and state
    synapse_bytes_per_weight: int = 1   # [A] one 8-bit weight per stored synapse, no compression
    state_bytes_per_neuron: int = 8     # [A] two 24-bit state words (u, v or v, m) in 32 bits
    max_input_axons_per_core: int = 4096  # [L1] N_axin, p. 89 constraint 4
    cores_per_chip: int = 128           # [L2]
    mesh_width: int = 8                 # [L2] 8 x 16 mesh; x is the E-W axis
    mesh_height: int = 16               # [L2]
    input_port_xy: tuple[int, int] = (0, 0)  # [A] where input spikes enter the mesh
    # How synapses are stored (analyses/mapping.py): "loihi2", as Intel's Loihi 2 compiler
    # stores them (analyses/loihi2_memory.py: shared conv kernels on population axons, dense
    # rows, an entry cap), or "explicit": every synapse `synapse_bytes_per_weight` bytes in
    # `sram_bytes_per_core`, one input axon per source neuron read (Loihi 1's rule).
    synapse_format: str = "loihi2"
    synmem_entries_per_core: int = 12000  # [M] the compiler's SynMem register limit
    synmem_entry_bits: int = 64           # [A] one synaptic memory word
    dense_weight_bits: int = 16           # [M] read off the compiler's dense entry counts
    conv_tile_neurons: int = 4096         # [M] conv strips stay below this many neurons
    # Costs, for tools/cost.py: [L1] Table 2 (pre-silicon, 0.75 V), none published for Loihi 2.
    energy_per_synop_j: float = 23.6e-12        # [L1] synaptic spike op (min)
    energy_per_neuron_update_j: float = 81e-12  # [L1] neuron update, active (inactive: 52 pJ)
    energy_per_message_j: float = 1.7e-12       # [L1] within-tile spike energy
    energy_per_hop_x_j: float = 3.0e-12         # [L1] tile hop E-W
    energy_per_hop_y_j: float = 4.0e-12         # [L1] tile hop N-S
    # [F] fitted to PilotNet's measured 408.9 inferences/s (the one free constant; was
    # Loihi 1's 3.5 ns maximum): docs/targets.md, "Calibration"
    time_per_synop_s: float = 0.855e-9
    time_per_neuron_update_s: float = 8.4e-9    # [L1] neuron update, active (inactive: 5.3 ns)
    time_per_message_s: float = 2.1e-9          # [L1] within-tile spike latency
    time_per_hop_x_s: float = 4.1e-9            # [L1] tile hop E-W
    time_per_hop_y_s: float = 6.5e-9            # [L1] tile hop N-S
    barrier_sync_s: float = 465e-9              # [L1] mesh-wide barrier, 32 tiles (1 tile: 113)
    # Chip-to-chip links, per message and link crossed (maps on several chips): no figure is
    # published for Loihi or Loihi 2, so both are assumptions (docs/targets.md).
    energy_per_chip_hop_j: float = 320e-12      # [A] 32-bit message at 10 pJ/bit
    time_per_chip_hop_s: float = 100e-9         # [A] one serial link crossing
    # Static power: [M] measured on Loihi 2 (lava-dl PilotNet benchmark, one chip, idle).
    static_power_per_chip_w: float = 0.232078
    cycle_s: float = 1e-9  # [A] Loihi is clockless; a reported "cycle" is this much time


FLOAT = Target("float", quantized=False)
LOIHI2 = Target("loihi2", quantized=True)

TARGETS = {t.name: t for t in (FLOAT, LOIHI2)}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise SnncError(f"unknown target {name!r}; known targets: {', '.join(TARGETS)}") from None
