"""snnc: compile trained spiking neural networks to Loihi-style fixed-point programs.

`import snnc` loads the core only (IR, artifact); it never imports torch or lava, so the
same package serves the compile environment and the Lava environment.
"""

__version__ = "0.1.0"

from snnc.errors import SnncError  # noqa: E402
from snnc.ir import Graph  # noqa: E402

__all__ = ["Graph", "SnncError", "__version__"]
