"""The torch frontend: trace trained PyTorch / spikingjelly SNNs into snnc IR graphs."""

from snnc.frontends.torch.context import ConversionError, ConvertContext
from snnc.frontends.torch.registry import CONVERTERS, converter

__all__ = ["CONVERTERS", "ConversionError", "ConvertContext", "converter"]
