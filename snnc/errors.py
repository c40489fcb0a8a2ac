"""Typed errors. Every message names the offending layer, key or file and what is accepted.

The CLI turns any `SnncError` into one line on stderr and a non-zero exit code.
"""

from __future__ import annotations


class SnncError(Exception):
    """Base of every error snnc raises on bad input."""


class GraphError(SnncError):
    """The graph is malformed: a dangling edge, a cycle, a duplicate name, a bad field."""


class ShapeError(GraphError):
    """A node's input or declared output shape disagrees with what its operation implies."""


class UnsupportedNodeError(SnncError):
    """A backend or pass has no rule for a node type."""

    def __init__(self, node_name: str, node_type: str, where: str, supported: list[str]):
        self.node_name = node_name
        self.node_type = node_type
        super().__init__(
            f"{where} cannot handle node {node_name!r} of type {node_type}; "
            f"supported types: {', '.join(sorted(supported))}"
        )


class SimulationInputError(SnncError):
    """Inputs given to a simulator do not fit the graph."""


class ArtifactError(SnncError):
    """A .snnc file cannot be read. Subclasses say why."""


class NotAnArtifactError(ArtifactError):
    """The file does not start with the snnc magic bytes."""


class TruncatedArtifactError(ArtifactError):
    """The file is shorter than its header says."""


class CorruptArtifactError(ArtifactError):
    """The checksum does not match: bytes were changed after writing."""


class ArtifactVersionError(ArtifactError):
    """The file was written in a format newer than this snnc reads."""
