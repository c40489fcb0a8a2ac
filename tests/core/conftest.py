"""Fixtures shared by tests/core's check and backend tests (both environments, no torch)."""

from __future__ import annotations

import numpy as np
import pytest

from snnc.targets import LOIHI2
from snnc.tools.pass_runner import compile_graph

#: The steps the shared compiled graph is quantized for; the tests that use it run T = 3.
T = 3


@pytest.fixture(scope="session")
def compiled(residual_graph):
    """The residual test graph (tests/conftest.py, seed 3, LIF, fc bias) compiled for
    loihi2 at T = 3: what the check, batch and backend tests run."""
    return compile_graph(residual_graph(np.random.default_rng(3), False, fc_bias=True), LOIHI2,
                         timesteps=T)
