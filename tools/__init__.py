"""The tools that use every layer: the command line, `snnc check` and its reports, the
compile pipeline and its pass runner, golden vectors, evaluation, the cost model and the
demo. Nothing below this package imports it (tests/core/test_layers.py checks the rule)."""
