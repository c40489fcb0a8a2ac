"""Graph-to-graph passes: folding, simplification, quantization, mapping."""
