"""Small spikingjelly 2.0 SNNs for scikit-learn's digits (`[N, 1, 8, 8]`, 10 classes).

Each factory returns an `nn.Module` whose output is the time-averaged class score `[N, 10]`
over `timesteps` steps of the same image (direct encoding). They cover the model families
snnc targets, at a size that trains on a CPU in seconds:

- `stbp_resnet`: STBP-tdBN ResNet (Zheng et al. 2021): spikingjelly tdBN and LIFNode, two
  residual BasicBlocks, multi-step only.
- `clif_vgg`, `clif_preact_resnet`: CLIF networks (Huang et al. 2024) with plain per-step
  BatchNorm, in multi-step (`'m'`) or the authors' single-step (`'s'`) style.
- `stbp_custom`: user-written STBP modules with their own converters (`stbp_custom.py`).
- `stbp_timelast`: STBP written time-last, `[N, C, H, W, T]`, answering by spike count
  (`stbp_timelast.py`).

Use `run(model, x, timesteps)` to evaluate either step style. Submodule names (`conv1`,
`bn1`, `sn1`, `layer1`, `fc`) are the names snnc reports.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn


def _load_sibling(name: str) -> ModuleType:
    """Import `examples/<name>.py` as top-level module `name` when examples/ is not on sys.path."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {name}.py next to {__file__}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


try:
    import stbp_custom
except ModuleNotFoundError as exc:  # loaded by path: examples/ is not on sys.path
    if exc.name != "stbp_custom":
        raise
    stbp_custom = _load_sibling("stbp_custom")
try:
    import stbp_timelast
except ModuleNotFoundError as exc:
    if exc.name != "stbp_timelast":
        raise
    stbp_timelast = _load_sibling("stbp_timelast")

#: Threshold of the STBP ResNet's LIF neurons; tdBN scales by it.
V_TH = 0.5
#: tdBN alpha for the two branches feeding a residual add (serial layers use 1).
ALPHA_BRANCH = 1.0 / math.sqrt(2.0)
STEP_MODES = ("m", "s")


def _repeat(x: torch.Tensor, timesteps: int) -> torch.Tensor:
    """Direct encoding: the same frame at every step, `[N, ...]` -> `[T, N, ...]`."""
    return x.unsqueeze(0).repeat(timesteps, *([1] * x.dim()))


def _check_step_mode(step_mode: str) -> None:
    if step_mode not in STEP_MODES:
        raise ValueError(f"step_mode must be 'm' or 's', got {step_mode!r}")


# --------------------------------------------------------------------------- STBP-tdBN ResNet


def _stbp_lif() -> neuron.LIFNode:
    """spikingjelly LIF as the STBP-tdBN ResNets use it: hard reset to 0, threshold V_TH."""
    return neuron.LIFNode(tau=2.0, decay_input=False, v_reset=0.0, v_threshold=V_TH,
                          step_mode="m")


def _tdbn(channels: int, alpha: float) -> layer.ThresholdDependentBatchNorm2d:
    return layer.ThresholdDependentBatchNorm2d(alpha=alpha, v_th=V_TH, num_features=channels)


class STBPBasicBlock(nn.Module):
    """Residual block `sn2(bn2(conv2(sn1(bn1(conv1(x))))) + shortcut(x))`, multi-step.

    `bn2` and the shortcut's BN feed the add, so both use tdBN alpha = 1/sqrt(2). The
    downsample shortcut is `SeqToANNContainer(Conv2d 1x1, BatchNorm2d)`: a BatchNorm2d over
    the merged T*N batch is exactly spikingjelly's tdBN, here with its weight initialised
    to alpha * V_TH as tdBN does.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = layer.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1,
                                  bias=False, step_mode="m")
        self.bn1 = _tdbn(out_channels, 1.0)
        self.sn1 = _stbp_lif()
        self.conv2 = layer.Conv2d(out_channels, out_channels, 3, padding=1, bias=False,
                                  step_mode="m")
        self.bn2 = _tdbn(out_channels, ALPHA_BRANCH)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            bn = nn.BatchNorm2d(out_channels)
            nn.init.constant_(bn.weight, ALPHA_BRANCH * V_TH)
            self.downsample = layer.SeqToANNContainer(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), bn)
        self.sn2 = _stbp_lif()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x` `[T, N, C, H, W]` spikes -> `[T, N, C', H', W']` spikes."""
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.sn1(self.bn1(self.conv1(x)))
        return self.sn2(self.bn2(self.conv2(y)) + shortcut)


class STBPResNet(nn.Module):
    """STBP-tdBN ResNet: stem conv-tdBN-LIF, BasicBlocks 16->16 and 16->32 (stride 2),
    average pooling, linear readout averaged over T."""

    def __init__(self, timesteps: int = 4) -> None:
        super().__init__()
        self.timesteps = timesteps
        self.step_mode = "m"
        self.conv1 = layer.Conv2d(1, 16, 3, padding=1, bias=False, step_mode="m")
        self.bn1 = _tdbn(16, 1.0)
        self.sn1 = _stbp_lif()
        self.layer1 = STBPBasicBlock(16, 16, stride=1)
        self.layer2 = STBPBasicBlock(16, 32, stride=2)
        self.pool = layer.AvgPool2d(2, 2, step_mode="m")
        self.flatten = layer.Flatten(step_mode="m")
        self.fc = layer.Linear(32 * 2 * 2, 10, step_mode="m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores `[N, 10]` for images `[N, 1, 8, 8]`."""
        x = _repeat(x, self.timesteps)
        x = self.sn1(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        out = self.fc(self.flatten(self.pool(x)))
        return out.mean(0)


def stbp_resnet(timesteps: int = 4) -> STBPResNet:
    """STBP-tdBN ResNet for digits (multi-step only: tdBN needs statistics across T)."""
    return STBPResNet(timesteps=timesteps)


# --------------------------------------------------------------------------------- CLIF models


class _StepModel(nn.Module):
    """Shared forward conventions of the CLIF models.

    `'m'`: `forward(x [N, 1, 8, 8])` repeats the image over T and returns the mean over T.
    `'s'`: `forward(x [N, 1, 8, 8])` is one time step; the caller loops T times (see `run`).
    """

    def __init__(self, timesteps: int, step_mode: str) -> None:
        super().__init__()
        _check_step_mode(step_mode)
        self.timesteps = timesteps
        self.step_mode = step_mode

    def body(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores `[N, 10]`: time-averaged (`'m'`) or of this one step (`'s'`)."""
        if self.step_mode == "m":
            return self.body(_repeat(x, self.timesteps)).mean(0)
        return self.body(x)


def _clif(step_mode: str) -> neuron.ComplementaryLIFNode:
    return neuron.ComplementaryLIFNode(tau=2.0, v_threshold=1.0, step_mode=step_mode)


class CLIFVGG(_StepModel):
    """conv-BN-CLIF x2, pool, conv-BN-CLIF, pool, linear (16, 16, 32 channels)."""

    def __init__(self, timesteps: int = 4, step_mode: str = "m") -> None:
        super().__init__(timesteps, step_mode)
        s = step_mode
        self.conv1 = layer.Conv2d(1, 16, 3, padding=1, step_mode=s)
        self.bn1 = layer.BatchNorm2d(16, step_mode=s)
        self.sn1 = _clif(s)
        self.conv2 = layer.Conv2d(16, 16, 3, padding=1, step_mode=s)
        self.bn2 = layer.BatchNorm2d(16, step_mode=s)
        self.sn2 = _clif(s)
        self.pool1 = layer.AvgPool2d(2, step_mode=s)
        self.conv3 = layer.Conv2d(16, 32, 3, padding=1, step_mode=s)
        self.bn3 = layer.BatchNorm2d(32, step_mode=s)
        self.sn3 = _clif(s)
        self.pool2 = layer.AvgPool2d(2, step_mode=s)
        self.flatten = layer.Flatten(step_mode=s)
        self.fc = layer.Linear(32 * 2 * 2, 10, step_mode=s)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        x = self.sn1(self.bn1(self.conv1(x)))
        x = self.pool1(self.sn2(self.bn2(self.conv2(x))))
        x = self.pool2(self.sn3(self.bn3(self.conv3(x))))
        return self.fc(self.flatten(x))


def clif_vgg(timesteps: int = 4, step_mode: str = "m") -> CLIFVGG:
    """CLIF VGG for digits; `step_mode` 's' is the CLIF authors' one-step-per-call style."""
    return CLIFVGG(timesteps=timesteps, step_mode=step_mode)


class PreActBlock(nn.Module):
    """Pre-activation block `x + conv2(sn2(bn2(conv1(sn1(bn1(x))))))`, identity shortcut.

    The shortcut carries the block input as is: analog currents for the first block (it
    follows the stem conv), so the add mixes real values with convolved spikes.
    """

    def __init__(self, channels: int, step_mode: str) -> None:
        super().__init__()
        s = step_mode
        self.bn1 = layer.BatchNorm2d(channels, step_mode=s)
        self.sn1 = _clif(s)
        self.conv1 = layer.Conv2d(channels, channels, 3, padding=1, step_mode=s)
        self.bn2 = layer.BatchNorm2d(channels, step_mode=s)
        self.sn2 = _clif(s)
        self.conv2 = layer.Conv2d(channels, channels, 3, padding=1, step_mode=s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(self.sn1(self.bn1(x)))
        y = self.conv2(self.sn2(self.bn2(y)))
        return y + x


class CLIFPreActResNet(_StepModel):
    """Stem conv, two pre-activation blocks (16 channels), BN-CLIF, pool, linear."""

    def __init__(self, timesteps: int = 4, step_mode: str = "m") -> None:
        super().__init__(timesteps, step_mode)
        s = step_mode
        self.conv1 = layer.Conv2d(1, 16, 3, padding=1, step_mode=s)
        self.layer1 = PreActBlock(16, s)
        self.layer2 = PreActBlock(16, s)
        self.bn = layer.BatchNorm2d(16, step_mode=s)
        self.sn = _clif(s)
        self.pool = layer.AvgPool2d(2, step_mode=s)
        self.flatten = layer.Flatten(step_mode=s)
        self.fc = layer.Linear(16 * 4 * 4, 10, step_mode=s)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer2(self.layer1(self.conv1(x)))
        x = self.pool(self.sn(self.bn(x)))
        return self.fc(self.flatten(x))


def clif_preact_resnet(timesteps: int = 4, step_mode: str = "m") -> CLIFPreActResNet:
    """CLIF pre-activation ResNet for digits, in 'm' or the authors' 's' style."""
    return CLIFPreActResNet(timesteps=timesteps, step_mode=step_mode)


# ------------------------------------------------- the seeds' deep networks, at 3x32x32


class STBPResNet19(nn.Module):
    """ResNet-19 of STBP-tdBN (Zheng et al. 2021) at a narrow width: stem conv-tdBN-LIF,
    3 stages of (3, 3, 2) `STBPBasicBlock`s of `width`, 2x and 4x channels (stride 1, 2, 2),
    average pooling to 1x1, fc-LIF, fc. The paper's widths are 128-256-512 with fc 256;
    this one, for 3x32x32 inputs, has `width` 8 and `hidden` 64. Multi-step only."""

    def __init__(self, timesteps: int = 4, width: int = 8, hidden: int = 64) -> None:
        super().__init__()
        self.timesteps = timesteps
        self.step_mode = "m"
        self.conv1 = layer.Conv2d(3, width, 3, padding=1, bias=False, step_mode="m")
        self.bn1 = _tdbn(width, 1.0)
        self.sn1 = _stbp_lif()
        blocks, channels = [], width
        for factor, count, stride in ((1, 3, 1), (2, 3, 2), (4, 2, 2)):
            for i in range(count):
                blocks.append(STBPBasicBlock(channels, factor * width, stride if i == 0 else 1))
                channels = factor * width
        self.layers = nn.Sequential(*blocks)
        self.pool = layer.AdaptiveAvgPool2d((1, 1), step_mode="m")
        self.flatten = layer.Flatten(step_mode="m")
        self.fc1 = layer.Linear(channels, hidden, step_mode="m")
        self.sn_fc = _stbp_lif()
        self.fc2 = layer.Linear(hidden, 10, step_mode="m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores `[N, 10]` for images `[N, 3, 32, 32]`."""
        x = self.sn1(self.bn1(self.conv1(_repeat(x, self.timesteps))))
        x = self.flatten(self.pool(self.layers(x)))
        return self.fc2(self.sn_fc(self.fc1(x))).mean(0)


def stbp_resnet19(timesteps: int = 4) -> STBPResNet19:
    """STBP-tdBN ResNet-19, width 8, for 3x32x32 inputs (`--data digits32`)."""
    return STBPResNet19(timesteps=timesteps)


class CLIFPreActBlock(nn.Module):
    """The CLIF authors' pre-activation block (their `models/spiking_resnet.py`):
    `x = sn1(bn1(x)); conv2(sn2(bn2(conv1(x)))) + shortcut(x)`, convolutions with bias.
    Unlike `PreActBlock` the shortcut takes the block's first spikes, not its input: the
    identity where the shape stays, a 1x1 convolution (with bias) where stride or width
    change."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, step_mode: str) -> None:
        super().__init__()
        s = step_mode
        self.bn1 = layer.BatchNorm2d(in_channels, step_mode=s)
        self.sn1 = _clif(s)
        self.conv1 = layer.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1,
                                  step_mode=s)
        self.bn2 = layer.BatchNorm2d(out_channels, step_mode=s)
        self.sn2 = _clif(s)
        self.conv2 = layer.Conv2d(out_channels, out_channels, 3, padding=1, step_mode=s)
        self.shortcut: nn.Module = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = layer.Conv2d(in_channels, out_channels, 1, stride=stride,
                                         step_mode=s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.sn1(self.bn1(x))
        out = self.conv2(self.sn2(self.bn2(self.conv1(x))))
        return out + self.shortcut(x)


class CLIFPreActResNet18(_StepModel):
    """The CLIF authors' pre-activation ResNet-18 at a narrow width: stem conv (no bias),
    4 stages of 2 `CLIFPreActBlock`s of `width`, 2x, 4x, 8x channels (stride 1, 2, 2, 2),
    BN-CLIF, 4x4 average pooling, linear. Theirs is 64-128-256-512; this one has `width` 8.
    Initialised as theirs: Kaiming normal (fan out) convolutions, BN weight 1 and bias 0."""

    def __init__(self, timesteps: int = 4, step_mode: str = "s", width: int = 8) -> None:
        super().__init__(timesteps, step_mode)
        s = step_mode
        self.conv1 = layer.Conv2d(3, width, 3, padding=1, bias=False, step_mode=s)
        blocks, channels = [], width
        for stage in range(4):
            for i in range(2):
                out = width << stage
                blocks.append(CLIFPreActBlock(channels, out, 2 if i == 0 and stage else 1, s))
                channels = out
        self.layers = nn.Sequential(*blocks)
        self.bn1 = layer.BatchNorm2d(channels, step_mode=s)
        self.sn1 = _clif(s)
        self.pool = layer.AvgPool2d(4, step_mode=s)
        self.flatten = layer.Flatten(step_mode=s)
        self.linear = layer.Linear(channels, 10, step_mode=s)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.sn1(self.bn1(self.layers(self.conv1(x)))))
        return self.linear(self.flatten(x))


def clif_resnet18(timesteps: int = 4, step_mode: str = "s") -> CLIFPreActResNet18:
    """CLIF pre-activation ResNet-18, width 8, for 3x32x32 inputs (`--data digits32`); the
    authors' single-step style by default."""
    return CLIFPreActResNet18(timesteps=timesteps, step_mode=step_mode)


# ------------------------------------------------------------------------------ running them


def run(model: nn.Module, x: torch.Tensor, timesteps: int) -> torch.Tensor:
    """Time-averaged class scores `[N, 10]` for images `x` `[N, 1, 8, 8]`, either step style.

    Multi-step models take the whole window in one call; single-step models (`step_mode`
    's') are called `timesteps` times and averaged. Neuron state is reset before and after,
    so no state leaks between batches.
    """
    functional.reset_net(model)
    try:
        if getattr(model, "step_mode", "m") == "s":
            out = torch.stack([model(x) for _ in range(timesteps)]).mean(0)
        else:
            if getattr(model, "timesteps", timesteps) != timesteps:
                raise ValueError(f"model runs {model.timesteps} steps, asked for {timesteps}")
            out = model(x)
    finally:
        functional.reset_net(model)
    return out


#: Registry: model name -> factory taking `timesteps` (and `step_mode` for the CLIF models).
MODELS: dict[str, Callable[..., nn.Module]] = {
    "stbp_resnet": stbp_resnet,
    "clif_vgg": clif_vgg,
    "clif_preact_resnet": clif_preact_resnet,
    "stbp_custom": stbp_custom.stbp_custom_net,
    "stbp_timelast": stbp_timelast.stbp_timelast_net,
    "stbp_resnet19": stbp_resnet19,
    "clif_resnet18": clif_resnet18,
}
