"""The converter registry: how a torch module class becomes IR nodes.

A converter is a function `fn(ctx, module, x) -> str`: `x` is the IR name of the module's
input value, `ctx` (a `ConvertContext`) emits nodes and reads tensors, and the return value is
the IR name of the module's output. Register one for your own module classes:

    from snnc.frontends.torch import converter
    from snnc.ir import LIF

    @converter(MyLIF)
    def convert_my_lif(ctx, module, x):
        return ctx.emit(LIF(name=ctx.name, inputs=(x,), decay=module.tau,
                            threshold=module.v_th, compare=">"))

or pass `converters={MyLIF: convert_my_lif}` to `trace` for one call. Lookup follows the
class's MRO, so a converter for `nn.Conv2d` also serves its subclasses (spikingjelly's
`layer.Conv2d`); a converter registered for a subclass wins over its base's.

A class has one converter: registering a second one for it is an error, unless the
registration says it replaces the first (`@converter(nn.Conv2d, replace=True)`).
Registering the same function again for the same class changes nothing and is allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from torch import nn

from snnc.errors import SnncError

if TYPE_CHECKING:
    from snnc.frontends.torch.context import ConvertContext

ConverterFn = Callable[["ConvertContext", nn.Module, str], str]

#: Module classes snnc converts out of the box, plus any the user registers.
CONVERTERS: dict[type, ConverterFn] = {}


class ConverterRegistrationError(SnncError):
    """A second converter for a module class, without `replace=True`."""


def converter(*module_types: type, replace: bool = False
              ) -> Callable[[ConverterFn], ConverterFn]:
    """Decorator registering `fn` as the converter for `module_types` (and their subclasses).
    A class that already has another converter is refused unless `replace=True`."""
    if not module_types or not all(isinstance(t, type) for t in module_types):
        raise TypeError("converter(...) takes one or more module classes")

    def register(fn: ConverterFn) -> ConverterFn:
        if not replace:
            for t in module_types:
                old = CONVERTERS.get(t)
                if old is not None and old is not fn:
                    raise ConverterRegistrationError(
                        f"module class {_public_name(t)} already has a converter "
                        f"({_fn_name(old)}); registering {_fn_name(fn)} for it too would "
                        "silently replace it: pass replace=True to converter(...) to replace "
                        "it, or register the new one for a subclass")
        for t in module_types:
            CONVERTERS[t] = fn
        return fn

    return register


def find_converter(module: nn.Module,
                   extra: Mapping[type, ConverterFn] | None = None) -> ConverterFn | None:
    """The converter for `module`: the most specific class in its MRO that has one."""
    for cls in type(module).__mro__:
        if extra and cls in extra:
            return extra[cls]
        if cls in CONVERTERS:
            return CONVERTERS[cls]
    return None


def supported_types(extra: Mapping[type, ConverterFn] | None = None) -> list[str]:
    """Readable names of every convertible module class, for error messages. A converter
    marked `refuses = True` only explains why its classes are refused: they are not listed."""
    table = {**CONVERTERS, **(extra or {})}
    return sorted(_public_name(t) for t, fn in table.items() if not getattr(fn, "refuses", False))


def _fn_name(fn: ConverterFn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _public_name(cls: type) -> str:
    """`torch.nn.Conv2d`, `spikingjelly.activation_based.neuron.LIFNode`: the import path."""
    parts = cls.__module__.split(".")
    if parts[:3] == ["torch", "nn", "modules"]:
        parts = ["torch", "nn"]
    elif parts[:2] == ["spikingjelly", "activation_based"]:
        parts = parts[:3]
    return ".".join([*parts, cls.__qualname__])
