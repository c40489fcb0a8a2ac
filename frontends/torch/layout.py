"""Leading-axis layouts of traced tensors, and the reshapes that move between them.

Every tensor the tracer follows has some leading axes that are not per-sample features:

    ("N",)       one time step of a batch             [N, *features]
    ("T", "N")   a whole sequence (multi-step models) [T, N, *features]
    ("TN",)      time and batch merged by hand        [T*N, *features]  (flatten(0, 1))
    ("1", "N")   a frame unsqueezed for repetition    [1, N, *features]
    ("N", "T")   a time-last sequence (--input-layout NT) [N, *features, T]: the tracer
                 follows it through converters the user wrote for time-last modules, reshapes
                 of the features (x.view(N, -1, T)), a permute/movedim that brings time to
                 the front, per-step loops (x[..., t], unbind(-1)) and back out of them
                 (stack(dim=-1)), and sum/mean(-1) at the output
    ("N", "1")   a frame unsqueezed at the end [N, *features, 1], about to be repeated or
                 expanded over time: x.unsqueeze(-1).repeat(1, ..., 1, T)

Layout operations (view, reshape, flatten, unsqueeze, repeat, expand, ...) are understood
from the concrete shapes before and after: the tracer runs with a batch size N that differs
from T and from 1, so the leading axes of a result identify its layout. A result whose
features are the input's features is a pure relayout; one whose features are their product is
a Flatten. Anything else is refused.
"""

from __future__ import annotations

import math

from snnc.frontends.torch.context import ConversionError

Lead = tuple[str, ...]

SEQ: Lead = ("T", "N")
STEP: Lead = ("N",)
MERGED: Lead = ("TN",)
UNSQUEEZED: Lead = ("1", "N")
TIME_LAST: Lead = ("N", "T")
UNSQUEEZED_LAST: Lead = ("N", "1")
_LAST = {TIME_LAST: "T", UNSQUEEZED_LAST: "1"}  # leads whose time axis is the last one

#: `--input-layout` / `trace(input_layout=)`: how the example input holds time and batch.
INPUT_LAYOUTS = {"frame": STEP, "TN": SEQ, "NT": TIME_LAST}

#: Layout changes a reshape may make. Broadcasting a frame over time (N -> T,N or N -> TN)
#: is what direct-encoding models do with `x.unsqueeze(0).repeat(T, 1, ...)`.
ALLOWED = {
    (SEQ, MERGED), (MERGED, SEQ),
    (STEP, UNSQUEEZED), (UNSQUEEZED, STEP), (UNSQUEEZED, SEQ),
    (STEP, SEQ), (STEP, MERGED),
    (STEP, UNSQUEEZED_LAST), (UNSQUEEZED_LAST, STEP), (UNSQUEEZED_LAST, TIME_LAST),
}


def time_last(lead: Lead) -> bool:
    """Whether `lead` keeps time in the last axis: [N, *features, T] (or T = 1)."""
    return lead in _LAST


def lead_dims(lead: Lead, timesteps: int, batch: int) -> tuple[int, ...]:
    sizes = {"T": timesteps, "N": batch, "TN": timesteps * batch, "1": 1}
    return tuple(sizes[axis] for axis in lead)


def split(shape: tuple[int, ...], lead: Lead, timesteps: int,
          batch: int) -> tuple[int, ...] | None:
    """The per-sample features of `shape` under `lead`, or None if the leading axes differ."""
    if lead in _LAST:
        last = timesteps if lead == TIME_LAST else 1
        if len(shape) < 2 or shape[0] != batch or shape[-1] != last:
            return None
        return tuple(shape[1:-1])
    dims = lead_dims(lead, timesteps, batch)
    if tuple(shape[: len(dims)]) != dims:
        return None
    return tuple(shape[len(dims):])


def infer_relayout(lead: Lead, features: tuple[int, ...], out_shape: tuple[int, ...],
                   timesteps: int, batch: int) -> list[tuple[Lead, bool]]:
    """Every reading of `out_shape` as (new lead, is_flatten) reachable from `lead`."""
    readings = []
    for new in (STEP, SEQ, MERGED, UNSQUEEZED, TIME_LAST, UNSQUEEZED_LAST):
        if new in (UNSQUEEZED, UNSQUEEZED_LAST) and timesteps == 1:
            continue  # with T = 1 the unsqueezed frame is the sequence itself
        out_features = split(out_shape, new, timesteps, batch)
        if out_features is None or (new != lead and (lead, new) not in ALLOWED):
            continue
        if out_features == features:
            readings.append((new, False))
        elif out_features == (math.prod(features),) and len(features) > 1:
            readings.append((new, True))
    return readings


def tracing_batch(timesteps: int) -> int:
    """A batch size that cannot be confused with T, 1 or T*N-style products of small T."""
    for n in (5, 7, 11, 13):
        if n != timesteps:
            return n
    raise AssertionError("unreachable")


def input_layout(shape: tuple[int, ...], timesteps: int, step_mode: str | None,
                 input_shape: tuple[int, ...] | None, declared: str | None = None) -> Lead:
    """Whether an example input is one frame per sample `[N, ...]`, a sequence `[T, N, ...]`
    or a time-last sequence `[N, ..., T]`: as `declared` (a key of INPUT_LAYOUTS) says, else
    from its shape, the per-sample shape if known, and the step mode."""
    if declared is not None:
        return _declared_layout(shape, timesteps, input_shape, declared)
    if input_shape is not None:
        if shape[-len(input_shape):] != tuple(input_shape):
            raise ConversionError(f"example input of shape {list(shape)} does not end with the "
                                  f"input shape {list(input_shape)}")
        extra = len(shape) - len(input_shape)
        if extra == 1:
            return STEP
        if extra == 2 and shape[0] == timesteps:
            return SEQ
        dims = ", ".join(map(str, input_shape))
        raise ConversionError(f"example input of shape {list(shape)}: expected [N, {dims}] "
                              f"or [T={timesteps}, N, {dims}]; a time-last [N, {dims}, "
                              f"T={timesteps}] needs input_layout='NT' (--input-layout NT)")
    if step_mode == "single" or shape[0] != timesteps:
        return STEP
    raise ConversionError(
        f"cannot tell whether the example input of shape {list(shape)} is [T={timesteps}, N, ...]"
        " (a sequence) or [N, ...] (one frame); pass input_layout='TN' or 'frame' "
        "(--input-layout TN|frame), or input_shape")


def _declared_layout(shape: tuple[int, ...], timesteps: int,
                     input_shape: tuple[int, ...] | None, declared: str) -> Lead:
    if declared not in INPUT_LAYOUTS:
        raise ConversionError(f"input_layout (--input-layout) = {declared!r}; expected one of "
                              f"{', '.join(INPUT_LAYOUTS)}")
    lead = INPUT_LAYOUTS[declared]
    template = {"frame": "[N, *input_shape]", "TN": f"[T={timesteps}, N, *input_shape]",
                "NT": f"[N, *input_shape, T={timesteps}]"}[declared]
    features = split(shape, lead, timesteps, shape[lead.index("N")] if len(shape) > 1 else 0)
    if features is None or (input_shape is not None and features != tuple(input_shape)) \
            or (lead != STEP and len(shape) < 3):
        raise ConversionError(f"input_layout (--input-layout) {declared!r} takes an example "
                              f"input {template}, got shape {list(shape)}"
                              + (f" with input_shape {list(input_shape)}"
                                 if input_shape is not None else ""))
    return lead
