"""The Lava backend (Python 3.10 with lava-nc 0.10; no torch).

`snnc.backends.lava.lower.run_fixed(graph, x, T)` lowers a quantized graph to Lava processes
and runs it bit-accurately; importing this package itself does not import lava, so the
compile environment can reach the subprocess runner.
"""
