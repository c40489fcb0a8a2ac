"""Analyses of a graph that change nothing: the chip's pipeline timing (`timing`), the
fixed-point range analysis (`range_analysis`) and the core mapping (`mapping`). Both
backends, the passes and the tools read them; they import only the ground (`snnc.ir`,
`snnc.targets`, `snnc.errors`)."""
