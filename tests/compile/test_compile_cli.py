"""`snnc compile`: checkpoints in every accepted form, and every bad input with its message.

Each failure must exit non-zero with one line naming the key, tensor or module, and must
not leave an output file behind.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from snnc.artifact import read_artifact
from snnc.tools.cli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODEL = f"{EXAMPLES / 'stbp_custom.py'}:stbp_custom_net"
STATE = EXAMPLES / "checkpoints" / "stbp_custom.pt"


def compile_(tmp_path, weights, model=MODEL, *extra):
    out = tmp_path / "out.snnc"
    result = CliRunner().invoke(cli, ["compile", model, "--weights", str(weights), "-T", "4",
                                      "--input-shape", "1,8,8", "-o", str(out), *extra])
    return result, out


def fails(result, out, *fragments):
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snnc: error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not out.exists()
    assert list(out.parent.glob(".out.snnc*")) == []  # no temporary left behind either


def state():
    return torch.load(STATE, weights_only=True)


def save(tmp_path, obj, name="ckpt.pt"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_compile_writes_a_checked_artifact(tmp_path):
    result, out = compile_(tmp_path, STATE, MODEL, "--check-data", "digits")
    assert result.exit_code == 0, result.output
    assert "lif1" in result.output and "wrote" in result.output
    art = read_artifact(out)
    assert art.meta["timesteps"] == 4 and art.meta["step_mode"] == "multi"
    assert art.meta["trace_check"]["total_mismatches"] == 0
    assert set(art.meta["trace_check"]["layers"]) == {"lif1", "lif2"}
    assert len(art.source_hash) == 64


@pytest.mark.parametrize("wrap", [
    lambda s: {"net": s, "epoch": 3},           # the CLIF authors' format
    lambda s: {"state_dict": s, "optimizer": {"lr": 0.1}},
    lambda s: {"model": s},
    lambda s: {f"module.{k}": v for k, v in s.items()},   # saved from nn.DataParallel
])
def test_accepted_checkpoint_layouts(tmp_path, wrap):
    result, out = compile_(tmp_path, save(tmp_path, wrap(state())))
    assert result.exit_code == 0, result.output
    assert out.exists()


def test_missing_keys_are_listed(tmp_path):
    s = state()
    del s["bn1.running_var"], s["fc.bias"]
    fails(*compile_(tmp_path, save(tmp_path, s)), "missing keys: bn1.running_var, fc.bias")


def test_unexpected_keys_are_listed(tmp_path):
    s = state()
    s["head.weight"] = torch.zeros(3)
    fails(*compile_(tmp_path, save(tmp_path, s)), "unexpected keys: head.weight")


def test_shape_mismatch_names_key_and_both_shapes(tmp_path):
    s = state()
    s["fc.weight"] = torch.zeros(10, 7)
    fails(*compile_(tmp_path, save(tmp_path, s)),
          "shape mismatch: fc.weight (checkpoint (10, 7), model (10, 512))")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_name_the_tensor(tmp_path, value):
    s = state()
    s["conv2.weight"][0, 0, 0, 0] = value
    fails(*compile_(tmp_path, save(tmp_path, s)), "NaN or infinite values in conv2.weight")


def test_a_damaged_file_is_not_read(tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(STATE.read_bytes()[:1000])
    fails(*compile_(tmp_path, path), "not a readable torch checkpoint")


class Payload:
    """Any class instance: unpickling it would mean running code from the file."""


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    fails(*compile_(tmp_path, save(tmp_path, {"net": Payload()})), "refused", "weights_only")


def test_a_checkpoint_without_a_state_dict(tmp_path):
    fails(*compile_(tmp_path, save(tmp_path, {"epoch": 3, "acc": 0.9})),
          "no state_dict found; top-level keys are 'epoch', 'acc'")
    fails(*compile_(tmp_path, save(tmp_path, torch.zeros(3))), "holds a Tensor")


def test_missing_weights_file(tmp_path):
    fails(*compile_(tmp_path, tmp_path / "nope.pt"), "nope.pt: no such checkpoint file")


@pytest.mark.parametrize("model, fragment", [
    ("no_colon", "expected 'pkg.module:factory'"),
    ("missing/file.py:net", "no such file missing/file.py"),
    (f"{EXAMPLES / 'stbp_custom.py'}:nothing", "has no attribute 'nothing'"),
    ("snnc_no_such_package.models:net", "cannot import snnc_no_such_package.models"),
    (f"{EXAMPLES / 'stbp_custom.py'}:TdBatchNorm", "calling TdBatchNorm(**{}) failed"),
])
def test_bad_model_specs(tmp_path, model, fragment):
    fails(*compile_(tmp_path, STATE, model), fragment)


def test_model_kwargs_must_be_json(tmp_path):
    fails(*compile_(tmp_path, STATE, MODEL, "--model-kwargs", "{timesteps: 4}"),
          "--model-kwargs is not valid JSON")
    result, out = compile_(tmp_path, STATE, MODEL, "--model-kwargs", '{"timesteps": 4}')
    assert result.exit_code == 0, result.output


MISREAD = textwrap.dedent('''
    """A user's leaky neuron whose converter gets the decay wrong (0.25 instead of 0.5)."""
    import torch
    from torch import nn

    from snnc.frontends.torch import converter
    from snnc.ir import LIF


    class Leaky(nn.Module):
        def forward(self, x):  # x: [T, N, ...]
            u, out = torch.zeros_like(x[0]), []
            for xt in x:
                u = 0.5 * u + xt
                s = (u > 0.3).float()
                u = u * (1 - s)
                out.append(s)
            return torch.stack(out)


    @converter(Leaky)
    def convert(ctx, m, x):
        return ctx.emit(LIF(name=ctx.name, inputs=(x,), decay=0.25, threshold=0.3))


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(64, 16)
            self.sn = Leaky()

        def forward(self, x):
            x = x.flatten(1).unsqueeze(0).repeat(4, 1, 1)
            return self.sn(self.fc(x)).mean(0)


    def net():
        torch.manual_seed(0)
        return Net()
''')


def test_a_misread_module_is_caught_by_the_trace_check(tmp_path):
    (tmp_path / "leaky.py").write_text(MISREAD)
    import importlib.util
    spec = importlib.util.spec_from_file_location("leaky_for_weights", tmp_path / "leaky.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    weights = save(tmp_path, module.net().state_dict())
    model = f"{tmp_path / 'leaky.py'}:net"
    result, out = compile_(tmp_path, weights, model)
    fails(result, out, "the traced graph spikes differently from the torch model",
          "mismatches (sn:", "first in sn at sample")
    result, out = compile_(tmp_path, weights, model, "--allow-mismatch")
    assert result.exit_code == 0, result.output
    assert read_artifact(out).meta["trace_check"]["layers"]["sn"] > 0


def test_bad_input_shape_option(tmp_path):
    result = CliRunner().invoke(cli, ["compile", MODEL, "--weights", str(STATE), "-T", "4",
                                      "--input-shape", "1,x,8", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "expected positive integers" in result.output


def test_default_target_is_loihi2_with_a_float_reference(tmp_path):
    result, out = compile_(tmp_path, STATE, MODEL, "--debug-passes")
    assert result.exit_code == 0, result.output
    art = read_artifact(out)
    assert art.target == "loihi2"
    assert {n.op for n in art.graph} >= {"FxInput", "FxConv2d", "FxLIF", "FxReadout"}
    assert art.reference is not None and "BatchNorm" not in {n.op for n in art.reference}
    assert [p["name"] for p in art.meta["passes"]][-2:] == ["quantize", "split_fan_in"]
    assert art.meta["quantization"]["conv1"]["weight_bits_used"] == 8
    assert "quantized for loihi2:" in result.output and "lif1" in result.output
    shown = CliRunner().invoke(cli, ["inspect", str(out)])
    assert shown.exit_code == 0
    assert "w_exp" in shown.output and "FxLIF" in shown.output


def test_float_target_skips_quantization(tmp_path):
    result, out = compile_(tmp_path, STATE, MODEL, "--target", "float")
    assert result.exit_code == 0, result.output
    art = read_artifact(out)
    assert art.target == "float" and art.reference is None
    assert not any(n.op.startswith("Fx") for n in art.graph)


def test_dump_ir_prints_the_graph_after_a_pass(tmp_path):
    result, _ = compile_(tmp_path, STATE, MODEL, "--dump-ir", "fold_batchnorm")
    assert result.exit_code == 0, result.output
    dumped = result.output.split("-- IR after fold_batchnorm --")[1].split("\n\n")[0]
    assert "%lif1 : b1[16,8,8] = LIF(%conv1)" in dumped and "BatchNorm" not in dumped
    result, _ = compile_(tmp_path, STATE, MODEL, "--dump-ir", "trace")
    assert "%bn1 : f32[16,8,8] = BatchNorm(%conv1)" in result.output


def test_calibration_sets_the_input_range(tmp_path):
    np_path = tmp_path / "x.npy"
    import numpy as np

    np.save(np_path, np.random.default_rng(0).random((4, 1, 8, 8)) * 2.0)
    result, out = compile_(tmp_path, STATE, MODEL, "--check-data", str(np_path),
                           "--calibrate", "4")
    assert result.exit_code == 0, result.output
    art = read_artifact(out)
    assert art.meta["calibration_samples"] == 4
    assert 1.9 < 255 / art.graph["input"].scale <= 2.0


def test_inspect_and_simulate_show_resources_and_cost(tmp_path):
    import numpy as np

    result, out = compile_(tmp_path, STATE, MODEL)
    assert result.exit_code == 0, result.output
    shown = CliRunner().invoke(cli, ["inspect", str(out), "--cost-data", "random",
                                     "--cost-samples", "4"])
    assert shown.exit_code == 0, shown.output
    assert "cores on 1 chip(s)" in shown.output and "energy per inference" in shown.output
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((3, 1, 8, 8)))
    for timing in ("zero", "hardware"):
        ran = CliRunner().invoke(cli, ["simulate", str(out), "--input", str(tmp_path / "x.npy"),
                                       "--timing", timing, "--engine", "torch"])
        assert ran.exit_code == 0, ran.output
        assert "lif1" in ran.output and "latency per sample" in ran.output
