"""Backends: run or emit a graph (`snnc.backends.refsim`, the reference simulator)."""
