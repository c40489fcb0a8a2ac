"""The snnc intermediate representation: typed, named, immutable dataflow graphs."""

from snnc.ir.fixed import FxCLIF, FxConv2d, FxCubaLIF, FxDense, FxInput, FxLIF, FxNeuron, FxReadout
from snnc.ir.graph import Graph
from snnc.ir.io import Input
from snnc.ir.neuron import CLIF, LIF, CubaLIF, Neuron, Readout
from snnc.ir.node import NODE_TYPES, Node
from snnc.ir.norm import BatchNorm
from snnc.ir.split import FxChannelSlice, FxMerge, FxPartialSum
from snnc.ir.structure import Add, AvgPool2d, Flatten
from snnc.ir.synapse import Conv2d, Dense
from snnc.ir.types import F32, SPIKE, DType, TensorType

__all__ = [
    "NODE_TYPES",
    "Add",
    "AvgPool2d",
    "BatchNorm",
    "CLIF",
    "FxChannelSlice",
    "Conv2d",
    "CubaLIF",
    "DType",
    "Dense",
    "F32",
    "Flatten",
    "FxCLIF",
    "FxConv2d",
    "FxCubaLIF",
    "FxDense",
    "FxInput",
    "FxLIF",
    "FxMerge",
    "FxNeuron",
    "FxPartialSum",
    "FxReadout",
    "Graph",
    "Input",
    "LIF",
    "Neuron",
    "Node",
    "Readout",
    "SPIKE",
    "TensorType",
]
