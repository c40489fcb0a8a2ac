"""Continuous-time neuron parameters (NIR's tau, r, w_in, v_leak) <-> the IR's per-step ones.

The one place both directions live: the NIR frontend (`snnc.frontends.nir`) reads a file's
time constants through `to_steps`, the NIR exporter (`snnc.backends.nir`) writes an IR
neuron's through `to_continuous`. The rule is forward Euler with step dt, as the exporters
that write NIR discretise (snnTorch: dt = 1e-4, tau = dt / (1 - beta), r = tau / dt):

    tau dv/dt = (v_leak - v) + r x     ->   v[t] = v[t-1] + dt/tau (v_leak - v[t-1] + r x[t])
                                             decay = 1 - dt/tau,  input scale = dt * r / tau
        dv/dt = r x  (IF, I)           ->   decay = 1,            input scale = dt * r

docs/semantics.md §7 gives the equations and their sources. numpy only.
"""

from __future__ import annotations

import numpy as np

from snnc.errors import SnncError

#: The dt the exporter writes with: snnTorch's importer assumes it (snntorch/import_nir.py).
EXPORT_DT = 1e-4


class DiscretisationError(SnncError):
    """Continuous parameters with no exact per-step form for this dt."""


def decay_from_tau(tau: np.ndarray, dt: float, what: str) -> np.ndarray:
    """1 - dt/tau, which must lie in [0, 1]: tau >= dt (a smaller tau is unstable under
    forward Euler) and finite and positive."""
    tau = np.asarray(tau, dtype=np.float64)
    if not np.all(np.isfinite(tau)) or np.any(tau <= 0):
        raise DiscretisationError(f"{what}: expected finite positive time constants, got "
                                  f"{_show(tau)}")
    if np.any(tau < dt):
        raise DiscretisationError(f"{what}: tau {_show(tau)} is below dt = {dt:g}; forward "
                                  f"Euler needs tau >= dt (decay 1 - dt/tau in [0, 1])")
    return 1.0 - dt / tau


def input_scale(tau: np.ndarray | None, r: np.ndarray, dt: float) -> np.ndarray:
    """The factor on the input per step: dt * r / tau, or dt * r without a time constant."""
    r = np.asarray(r, dtype=np.float64)
    return dt * r if tau is None else dt * r / np.asarray(tau, dtype=np.float64)


def to_steps(tau: np.ndarray | None, r: np.ndarray, dt: float, what: str
             ) -> tuple[np.ndarray, np.ndarray]:
    """(decay, input scale) per neuron for NIR's tau and r (tau None: IF/I, decay 1)."""
    if not isinstance(dt, float | int) or not np.isfinite(dt) or dt <= 0:
        raise DiscretisationError(f"dt = {dt!r}: expected a positive number of seconds")
    decay = np.ones_like(np.asarray(r, dtype=np.float64)) if tau is None else \
        decay_from_tau(tau, dt, what)
    return decay, input_scale(tau, r, dt)


def to_continuous(decay: float, gain: float | np.ndarray, dt: float = EXPORT_DT
                  ) -> tuple[float | None, np.ndarray | float]:
    """(tau, r) that `to_steps` maps back to (decay, gain): tau = dt / (1 - decay) and
    r = gain * tau / dt; for decay = 1 (no leak) tau is None and r = gain / dt."""
    if decay == 1.0:
        return None, np.asarray(gain, dtype=np.float64) / dt
    tau = dt / (1.0 - decay)
    return tau, np.asarray(gain, dtype=np.float64) * tau / dt


def uniform(values: np.ndarray) -> float | None:
    """The one value of an array whose entries are all equal, else None."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    return float(flat[0]) if flat.size and np.all(flat == flat[0]) else None


def _show(a: np.ndarray) -> str:
    u = uniform(a)
    return f"{u:g}" if u is not None else f"[{a.min():g} .. {a.max():g}]"
