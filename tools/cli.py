"""The `snnc` command line. Errors on bad input print one line and exit non-zero."""

from __future__ import annotations

import logging
import math
import os
import sys
import traceback
from pathlib import Path
from typing import NoReturn

import click
import numpy as np

from snnc import __version__
from snnc.backends import backends, get_backend
from snnc.datasets import SPLITS
from snnc.errors import SnncError
from snnc.inputs import MAX_TIMESTEPS
from snnc.ir.printer import escape, format_name
from snnc.tools.check import BATCH as CHECK_BATCH
from snnc.tools.export import FORMATS
from snnc.tools.pass_runner import PASS_NAMES


def _backend_help(reference: str, others: str) -> str:
    """`--backend`'s help: each registered backend and what it runs, followed by `reference`
    for the reference simulator and `others` for the rest."""
    return "; ".join(f"{name}: {kind.description}{reference if kind.is_reference else others}"
                     for name, kind in backends().items()) + "."


def _batch_help() -> str:
    """`check --batch-size`'s default: the check's, and each backend's own where it has one."""
    own = "".join(f"; on {name}, {kind.check_batch_size}" for name, kind in backends().items()
                  if kind.check_batch_size)
    return f"default: {CHECK_BATCH}{own}"

EXIT_ERROR = 1  # bad input, a damaged file, a failed run: one line on stderr
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, what a shell reports for an interrupted program
#: Set in the environment of a compile rerun in the legacy spikingjelly environment.
LEGACY_RERUN = "SNNC_LEGACY_RERUN"


class FiniteFloat(click.FloatRange):
    """The type of every float option: a finite number within the range. NaN and infinity
    are refused (every comparison with NaN is false, so a NaN limit would pass anything)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def backend_options(command):
    """Decorator: `--NAME-OPTION` for every per-run option of every registered backend
    (`--lava-python`, `--lava-timeout`), typed by the option's kind and checked by its own
    check before the command does any work. The command takes them as keyword arguments."""
    types = {"text": lambda: click.STRING, "file": lambda: click.Path(path_type=Path),
             "seconds": lambda: FiniteFloat(min=0, min_open=True)}

    def checked(option):
        def callback(ctx: click.Context, param: click.Parameter, value):
            return value if value is None or option.check is None else option.check(value)
        return callback

    for kind in reversed(list(backends().values())):
        for option in reversed(kind.options):
            command = click.option(
                f"--{kind.name}-{option.name}", f"{kind.name}_{option.name}",
                type=types[option.kind](), default=option.default,
                show_default=option.default is not None, callback=checked(option),
                help=f"[--backend {kind.name}] {option.help}")(command)
    return command


def backend_files(params: dict) -> dict[str, Path]:
    """The files the command's backend options name (`--lava-python`): inputs of the
    command, which no output may replace."""
    return {f"--{kind.name}-{o.name}": params.get(f"{kind.name}_{o.name}")
            for kind in backends().values() for o in kind.options if o.kind == "file"}


class OutputPath(click.Path):
    """The type of every output option: click.Path, but an empty value is refused (click.Path
    reads '' as the current folder). Inputs and outputs are then compared by
    `snnc.fileio.check_outputs`, which every verb calls before it does any work."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value:
            self.fail("'' is an empty path; give a file name", param, ctx)
        return super().convert(value, param, ctx)


#: --data / --check-data / --cost-data values that name no file: the built-in data sets.
_DATA_NAMES = ("golden", "random", *SPLITS)


def _data_file(source: str | None) -> str | None:
    """The file a --data / --check-data / --cost-data value names, if it names one."""
    return None if source is None or source in _DATA_NAMES else source


def _model_file(spec: str) -> str | None:
    """The file of MODEL when it is 'path/to/file.py:factory' (the frontend's rule)."""
    target = spec.rpartition(":")[0]
    return target if target.endswith(".py") or "/" in target else None


class _Group(click.Group):
    """Turns snnc errors and usage errors into one readable line; `--debug` shows the
    traceback instead."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as err:
            if err.ctx is not None and not (args or sys.argv[1:]):  # bare `snnc`: the help
                click.echo(err.ctx.get_help())
                sys.exit(0)
            where = err.ctx.command_path if err.ctx is not None else "snnc"
            click.echo(f"{where}: error: {err.format_message()} (see {where} --help)",
                       err=True)
            sys.exit(err.exit_code)
        except click.ClickException as err:
            err.show()
            sys.exit(err.exit_code)
        except click.Abort as err:
            if isinstance(err.__context__, KeyboardInterrupt):  # Ctrl-C while parsing
                click.echo("snnc: interrupted", err=True)
                sys.exit(EXIT_INTERRUPTED)
            click.echo("Aborted.", err=True)
            sys.exit(EXIT_ERROR)
        sys.exit(code if isinstance(code, int) else 0)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["snnc.argv"] = list(args)  # the command line, for a rerun elsewhere
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:  # output piped into `head` and closed: not an error
            sys.stderr.close()
            ctx.exit(0)
        except KeyboardInterrupt:  # Ctrl-C: what was running has cleaned up on the way here
            if ctx.params.get("debug"):
                traceback.print_exc()
            click.echo("snnc: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except SystemExit as err:  # sys.exit() in code we call; the user's is caught earlier
            _fail(ctx, f"snnc: internal error: a library called sys.exit({err.code!r}) "
                  "(run with --debug for the traceback)")
        except Exception as err:  # noqa: BLE001 - the CLI boundary: every error becomes a line
            if isinstance(err, SnncError):
                line = f"snnc: error: {err}"
            elif isinstance(err, OSError):
                line = f"snnc: error: {err.strerror or err}: {err.filename or ''}"
            else:
                line = (f"snnc: internal error: {type(err).__name__}: {err} "
                        "(run with --debug for the traceback)")
            _fail(ctx, line)


def _fail(ctx: click.Context, line: str) -> None:
    """The end of every failed command: the traceback under --debug, else `line` on stderr as
    one line (a newline or escape sequence in a name or path is shown escaped); exit 1."""
    if ctx.params.get("debug"):
        traceback.print_exc()
    else:
        click.echo(escape(line), err=True)
    ctx.exit(EXIT_ERROR)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="snnc")
@click.option("--debug", is_flag=True, help="Show full tracebacks and debug logging.")
def cli(debug: bool) -> None:
    """Compile trained spiking neural networks for Loihi-style chips, simulate them, and
    check that they behave."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not debug:  # importing spikingjelly on a CPU-only machine warns that Triton is absent
        logging.getLogger("torch._library.triton").setLevel(logging.ERROR)


@cli.command()
@click.option("-o", "--output", type=OutputPath(dir_okay=False, path_type=Path),
              default=Path("build/tiny.snnc"), show_default=True,
              help="Where to write the compiled artifact.")
@click.option("--timesteps", "-T", type=click.IntRange(min=1, max=MAX_TIMESTEPS), default=4,
              show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True,
              help="How many random 8x8 inputs to simulate.")
def demo(output: Path, timesteps: int, batch: int) -> None:
    """Compile the tiny built-in network to an artifact, reload it, and simulate it."""
    from snnc.artifact import Artifact, graph_digest, read_artifact, write_artifact
    from snnc.backends.refsim import simulate
    from snnc.fileio import check_outputs
    from snnc.tools.demo import sample_inputs, tiny_network

    check_outputs({"-o/--output": output}, {})
    graph = tiny_network()
    from snnc.inputs import check_allocation

    values = sum(int(np.prod(n.type.shape)) for n in graph)  # every value the run records
    check_allocation(values * batch * timesteps, f"--batch {batch} with -T {timesteps}")
    write_artifact(Artifact(graph, source_hash=graph_digest(graph),
                            meta={"source": "snnc.tools.demo:tiny_network",
                                  "timesteps": timesteps}), output, parents=True)
    loaded = read_artifact(output)
    click.echo(f"wrote {output} ({output.stat().st_size} bytes), reloaded and verified\n")
    click.echo(loaded.graph.text() + "\n")
    result = simulate(loaded.graph, sample_inputs(batch), timesteps)
    _print_result(result)


def _shape(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    try:
        dims = tuple(int(v) for v in value.replace("x", ",").split(","))
    except ValueError:
        dims = ()
    if not dims or any(d <= 0 for d in dims):
        raise click.BadParameter(f"{value!r}: expected positive integers like 1,8,8")
    return dims


@cli.command("compile")
@click.argument("model")
@click.option("--weights", type=click.Path(path_type=Path),
              help="Checkpoint: a state_dict, or a dict holding one under net/state_dict/model "
                   "(required for a torch MODEL; a .nir MODEL holds its own).")
@click.option("--timesteps", "-T", required=True,
              type=click.IntRange(min=1, max=MAX_TIMESTEPS),
              help=f"Time steps the model runs per sample (at most {MAX_TIMESTEPS:,}; with the "
                   "input's size and the samples, the trace check's records must fit in half "
                   "of this machine's memory).")
@click.option("--input-shape", callback=_shape,
              help="Per-sample input shape, e.g. 1,8,8; at most one chip's neurons in all "
                   "(1,048,576 values for loihi2: 8192 per core x 128 cores). Required for a "
                   "torch MODEL; for a .nir MODEL only when its Input node has no shape.")
@click.option("--dt", type=click.FloatRange(min=0, min_open=True),
              help="Seconds per time step, for a .nir MODEL (required there, refused "
                   "otherwise): NIR stores continuous time constants; forward Euler with this "
                   "step gives the IR's decays (snnTorch's exporter writes with dt = 1e-4).")
@click.option("-o", "--output", required=True,
              type=OutputPath(dir_okay=False, path_type=Path),
              help="The .snnc artifact to write (only if everything succeeds).")
@click.option("--model-kwargs", default=None, help="JSON object of keyword arguments for MODEL.")
@click.option("--step-mode", type=click.Choice(["single", "multi"]), default=None,
              help="single: called once per step; multi: neurons loop over T. Default: detect.")
@click.option("--input-layout", type=click.Choice(["frame", "TN", "NT"]), default="frame",
              show_default=True,
              help="How MODEL takes its input: frame [N, *input_shape] per call; TN a sequence "
                   "[T, N, *input_shape]; NT a time-last sequence [N, *input_shape, T] (followed "
                   "through modules with user converters, reshapes of the features, "
                   "permutes and per-step loops; see README).")
@click.option("--decode", type=click.Choice(["auto", "count", "potential"]), default="auto",
              show_default=True,
              help="Which model outputs are the answer: count (spiking outputs, by spike "
                   "count; ties go to the first class, as torch.argmax), potential "
                   "(non-spiking outputs, by value), auto (count when the model returns "
                   "spikes).")
@click.option("--check-data", default="random", show_default=True,
              help="Inputs for the trace check: random, digits, digits32 (the digits at "
                   "3x32x32), or a .npy file.")
@click.option("--check-samples", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--allow-mismatch", is_flag=True,
              help="Write the artifact even if the graph spikes differently from torch.")
@click.option("--target", type=click.Choice(["loihi2", "float"]), default="loihi2",
              show_default=True, help="loihi2: fixed point as Lava's bit-accurate models; "
              "float: folded float graph, no quantization.")
@click.option("--fold-thresholds", is_flag=True,
              help="Fold batch-norm scales into LIF thresholds (per channel) instead of "
                   "weights where possible; never for CLIF.")
@click.option("--debug-passes", is_flag=True,
              help="Re-simulate a seeded batch after every float pass; fail on any change.")
@click.option("--dump-ir", "dump_ir", type=click.Choice(["trace", *PASS_NAMES]),
              default=None, help="Print the IR after this pass.")
@click.option("--calibrate", type=click.IntRange(min=0), default=0, show_default=True,
              help="Calibrate the input range on this many --check-data samples "
                   "(default: inputs in [0, 1]).")
def compile_(model: str, weights: Path | None, timesteps: int,
             input_shape: tuple[int, ...] | None, dt: float | None,
             output: Path, model_kwargs: str | None, step_mode: str | None, check_data: str,
             check_samples: int, allow_mismatch: bool, target: str, fold_thresholds: bool,
             debug_passes: bool, dump_ir: str | None, calibrate: int,
             input_layout: str, decode: str) -> None:
    """Trace MODEL with trained weights into an artifact, and check the trace against torch.

    MODEL is 'pkg.module:factory' or 'path/to/file.py:factory', a function returning the
    torch.nn.Module. The traced graph and the torch model run on the same inputs; any spike
    that differs, at any layer and step, is an error unless --allow-mismatch is given.
    MODEL may instead be a NIR graph file (FILE.nir, with --dt): its IR is checked against
    the file's own equations, run directly.
    """
    if model.endswith(".nir"):
        _compile_nir(model, timesteps, input_shape, dt, output, weights=weights,
                     model_kwargs=model_kwargs, step_mode=step_mode, input_layout=input_layout,
                     check_data=check_data, check_samples=check_samples,
                     allow_mismatch=allow_mismatch, target=target,
                     fold_thresholds=fold_thresholds, debug_passes=debug_passes,
                     dump_ir=dump_ir, calibrate=calibrate, decode=decode)
        return
    ctx = click.get_current_context()
    for name, value in (("weights", weights), ("input_shape", input_shape)):
        if value is None:
            raise click.MissingParameter(ctx=ctx, param=next(p for p in ctx.command.params
                                                             if p.name == name))
    if dt is not None:
        raise click.UsageError("--dt applies to a NIR graph MODEL (FILE.nir) only; a torch "
                               "model steps as it was trained", ctx=ctx)
    try:
        import torch  # noqa: F401 - compiling runs the user's torch model
    except ImportError:
        raise SnncError(f"snnc compile needs torch, which this environment ({sys.prefix}) "
                        "lacks: run it from the compile environment, .venv/bin/snnc compile "
                        "(the Lava environment .venv-lava holds no torch)") from None
    from snnc.fileio import check_outputs
    from snnc.inputs import check_compile_sizes
    from snnc.targets import get_target
    from snnc.tools.pipeline import compile_checkpoint

    check_outputs({"-o/--output": output}, {"MODEL": _model_file(model), "--weights": weights,
                                            "--check-data": _data_file(check_data)})
    check_compile_sizes(input_shape, timesteps, max(check_samples, calibrate),
                        get_target(target), "--calibrate" if calibrate > check_samples
                        else "--check-samples")
    from snnc.frontends.torch.checkpoint import LegacyAPIError

    try:
        result = compile_checkpoint(model, weights, timesteps, input_shape,
                                    model_kwargs=model_kwargs, step_mode=step_mode,
                                    check_data=check_data, check_samples=check_samples,
                                    allow_mismatch=allow_mismatch, target=target,
                                    threshold_folding=fold_thresholds,
                                    debug_passes=debug_passes, calibrate=calibrate,
                                    input_layout=input_layout, decode=decode)
    except LegacyAPIError as err:  # raised while importing the model, before any work
        _rerun_in_legacy_env(err)
    art = result.artifact
    spiking = [n for n in art.graph if getattr(n, "spiking", False)]
    click.echo(f"traced {model}: {len(spiking)} spiking layers, {result.step_mode}-step")
    click.echo(f"trace check on {result.check.samples} {check_data} inputs, T={timesteps}:")
    _report_compile(result, output, dump_ir, target)


def _report_compile(result, output: Path, dump_ir: str | None, target: str) -> None:
    """What `snnc compile` prints after its check, and the artifact written (both frontends)."""
    from snnc.artifact import write_artifact

    art = result.artifact
    click.echo(result.check.table())
    if dump_ir == "trace":
        click.echo(f"\n-- IR after trace --\n{result.trace_text}")
    for record in result.passes:
        changes = "; ".join(record.notes) if record.notes else "no change"
        click.echo(f"pass {record.name:<22} {escape(changes[:200])}")
        if dump_ir == record.name:
            click.echo(f"\n-- IR after {record.name} --\n{record.text}\n")
    if dump_ir and dump_ir not in ("trace", *(r.name for r in result.passes)):
        click.echo(f"(pass {dump_ir} did not run for target {target})")
    if art.target != "float":
        from snnc.tools.report import format_rows, layer_rows

        click.echo(f"\nquantized for {art.target}:")
        click.echo(format_rows(layer_rows(art)))
    write_artifact(result.artifact, output, parents=True)
    click.echo(f"wrote {output}")


def _compile_nir(model: str, timesteps: int, input_shape: tuple[int, ...] | None,
                 dt: float | None, output: Path, *, weights: Path | None, model_kwargs,
                 step_mode, input_layout: str, check_data: str, check_samples: int,
                 allow_mismatch: bool, target: str, fold_thresholds: bool,
                 debug_passes: bool, dump_ir: str | None, calibrate: int, decode: str) -> None:
    """`snnc compile FILE.nir --dt DT`: the NIR frontend (snnc.frontends.nir), then the same
    passes, artifact and printout as a torch model."""
    from snnc.fileio import check_outputs
    from snnc.inputs import check_compile_sizes
    from snnc.targets import get_target
    from snnc.tools.pipeline import compile_nir

    ctx = click.get_current_context()
    if dt is None:
        raise click.MissingParameter(ctx=ctx, param=next(p for p in ctx.command.params
                                                         if p.name == "dt"))
    for option, given in (("--weights", weights is not None),
                          ("--model-kwargs", model_kwargs is not None),
                          ("--step-mode", step_mode is not None),
                          ("--input-layout", input_layout != "frame")):
        if given:
            raise click.UsageError(f"{option} does not apply to a NIR graph MODEL ({model}): "
                                   "the file holds its weights, shapes and time steps",
                                   ctx=ctx)
    check_outputs({"-o/--output": output}, {"MODEL": model,
                                            "--check-data": _data_file(check_data)})
    if input_shape is not None:
        check_compile_sizes(input_shape, timesteps, max(check_samples, calibrate),
                            get_target(target))
    result = compile_nir(model, timesteps, dt, input_shape=input_shape, check_data=check_data,
                         check_samples=check_samples, allow_mismatch=allow_mismatch,
                         target=target, threshold_folding=fold_thresholds,
                         debug_passes=debug_passes, calibrate=calibrate, decode=decode,
                         check_sizes=lambda shape: check_compile_sizes(
                             shape, timesteps, max(check_samples, calibrate),
                             get_target(target)))
    spiking = [n for n in result.artifact.graph if getattr(n, "spiking", False)]
    click.echo(f"read {model}: {len(spiking)} spiking layers, dt = {dt:g} s")
    click.echo(f"check against the file's equations (forward Euler) on "
               f"{result.check.samples} {check_data} inputs, T={timesteps}:")
    _report_compile(result, output, dump_ir, target)


def _rerun_in_legacy_env(err) -> NoReturn:
    """The model imports spikingjelly.clock_driven: run this same command line in the legacy
    environment (README, "Legacy spikingjelly"); its output and exit status are snnc's.
    Only once: a rerun that fails the same way reports the error.
    `err` is the frontend's LegacyAPIError."""
    from snnc.environments import legacy_python

    python = legacy_python()
    argv = click.get_current_context().meta.get("snnc.argv")
    if os.environ.get(LEGACY_RERUN) or argv is None:
        raise err
    if not (python.is_file() and os.access(python, os.X_OK)):
        raise SnncError(f"{err.reason}; snnc compiles such models with {python}, which is not "
                        "an executable interpreter: create the legacy environment with `make "
                        "envs`, or set SNNC_LEGACY_PYTHON to one with spikingjelly 0.0.0.0.12")
    click.echo(f"snnc: the model imports spikingjelly.clock_driven (spikingjelly "
               f"0.0.0.0.12-0.0.0.0.14); compiling with {python}", err=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # A child rather than exec: snnc's CLI may run inside another Python process (a test, a
    # notebook), which must survive it. Ctrl-C reaches both; the child's status is ours.
    import subprocess

    done = subprocess.run([str(python), "-m", "snnc.tools.cli", *argv], check=False,
                          env={**os.environ, LEGACY_RERUN: "1"})
    click.get_current_context().exit(done.returncode)


@cli.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--cost-data", default=None,
              help="Estimate cycles, latency and energy on inputs: random, digits, digits32 or "
                   "a .npy "
                   "file (quantized artifacts).")
@click.option("--cost-samples", type=click.IntRange(min=1), default=16, show_default=True)
def inspect(artifact: Path, cost_data: str | None, cost_samples: int) -> None:
    """Print an artifact's metadata, per-layer fixed-point table, core map and IR."""
    from snnc.artifact import read_artifact

    art = read_artifact(artifact)
    click.echo(f"artifact      {artifact}")
    click.echo(f"format        {art.format_version} (written by snnc {art.snnc_version})")
    click.echo(f"target        {art.target}")
    click.echo(f"source hash   {art.source_hash or '-'}")
    for key, value in art.meta.items():
        if key not in ("passes", "quantization"):
            click.echo(escape(f"meta.{key:<8} {value}"))
    for name, value in art.golden.items():
        click.echo(f"golden.{format_name(name):<6} {value.dtype}{list(value.shape)}")
    if art.target != "float":
        from snnc.tools.report import cost, format_rows, layer_rows, resources

        click.echo("")
        click.echo(format_rows(layer_rows(art)))
        click.echo("")
        click.echo(resources(art))
        if cost_data:
            from snnc.tools.pipeline import check_inputs

            steps = int(art.meta.get("timesteps", 1))
            x = check_inputs(cost_data, art.graph[art.graph.inputs[0]].shape, cost_samples,
                             option="--cost-data", timesteps=steps)
            click.echo("")
            click.echo(cost(art, x, steps))
    click.echo("")
    click.echo(art.graph.text())


@cli.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--input", "input_path", required=True, type=click.Path(path_type=Path),
              help=".npy array shaped [batch, *input_shape] or [T, batch, *input_shape].")
@click.option("--timesteps", "-T", type=click.IntRange(min=1, max=MAX_TIMESTEPS), default=None,
              help="Steps to run (default: the artifact's meta.timesteps).")
@click.option("--output", "-o", type=OutputPath(dir_okay=False, path_type=Path), default=None,
              help="Write spikes and readouts to this .npz file.")
@click.option("--timing", type=click.Choice(["zero", "hardware"]), default="zero",
              show_default=True, help="zero: the trained model's timing; hardware: one step "
              "per synaptic hop (spikes are still reported in each layer's window).")
@click.option("--engine", type=click.Choice(["numpy", "torch", "int"]), default=None,
              help="The reference simulator's engine (default: --refsim-engine, numpy). "
              "torch: torch's CPU convolution, checked exact; int: fixed-point graphs on torch "
              "integer tensors, on --refsim-device (cpu or cuda).")
@click.option("--reference", is_flag=True,
              help="Run the artifact's float reference graph instead of its target graph.")
@click.option("--backend", type=click.Choice(list(backends())), default="refsim",
              show_default=True, help=_backend_help("", " (hardware timing: fixed_pt, or "
                                                    "floating_pt with --reference or a float "
                                                    "target)"))
@backend_options
def simulate(artifact: Path, input_path: Path, timesteps: int | None,
             output: Path | None, timing: str, engine: str | None, reference: bool, backend: str,
             **backend_settings) -> None:
    """Run an artifact on the reference simulator (bit-accurate for a quantized target), or
    on Lava with --backend lava, and print spike counts per layer."""
    from snnc.artifact import read_artifact
    from snnc.backends.refsim import simulate as run
    from snnc.fileio import check_outputs

    check_outputs({"-o/--output": output}, {"ARTIFACT": artifact, "--input": input_path,
                                            **backend_files(backend_settings)})
    art = read_artifact(artifact)
    steps = timesteps or art.meta.get("timesteps")
    if not steps:
        raise SnncError(f"{artifact} records no timesteps; pass --timesteps")
    graph = art.graph
    if reference:
        if art.reference is None:
            raise SnncError(f"{artifact} holds no float reference graph (target "
                            f"{art.target!r})")
        graph = art.reference
    x = _load_array(input_path)
    if len(graph.inputs) == 1:
        from snnc.inputs import sample_layout

        name = graph.inputs[0]
        sample_layout(x, graph[name].type.shape, f"--input {input_path}: input {name!r}",
                      int(steps))
    kind = get_backend(backend)
    if not kind.is_reference:  # the reference simulator runs below, with --timing, --engine
        runner = kind(art, artifact, **kind.options_from(backend_settings))
        _simulate_backend(runner, graph, x, int(steps), output,
                          "float" if reference or art.target == "float" else "fixed")
        return
    result = run(graph, x, int(steps), timing=timing,
                 engine=engine or backend_settings.get("refsim_engine") or "numpy",
                 device=backend_settings.get("refsim_device"))
    _print_result(result)
    if art.target != "float" and not reference:
        from snnc.tools.report import cost

        click.echo("")
        click.echo(cost(art, x, int(steps)))
    if output is not None:
        _save_npz(output, {**{f"spikes/{k}": v for k, v in result.spikes.items()},
                           **{f"readout/{k}": v for k, v in result.readout.items()}})
        click.echo(f"\nwrote {output}")


EXIT_CHECK_FAILED = 2


@cli.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--backend", type=click.Choice(list(backends())), default="refsim",
              show_default=True, help=_backend_help(" (checked: its hardware timing against its "
                                                    "zero-delay timing, the pipeline model)",
                                                    ""))
@click.option("--data", "data_source", default=None,
              help="golden (the inputs stored at compile time), digits (sklearn's digits test "
                   "split, 360 samples), digits32 (the same at 3x32x32), random, or FILE.npz "
                   "with x [N, *input_shape] (or [N, T, *input_shape]) and integer labels y "
                   "[N]. Default: golden.")
@click.option("--samples", type=click.IntRange(min=1), default=None,
              help="Use the first N samples of --data (default: all; random: 32).")
@click.option("--backend-samples", type=click.IntRange(min=1), default=None,
              help="Samples run on the backend for equivalence (default: all for refsim "
                   "and onnx, 32 for lava, which runs about 1 s per sample).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Samples run at a time, on the reference simulator and on the backend, "
                   "counts added up: memory holds one batch's records however many samples "
                   "are checked, and the report is the same for every batch size. A backend "
                   "with a cost per run (a process to start) has its own default "
                   f"({_batch_help()}).")
@click.option("--timesteps", "-T", type=click.IntRange(min=1, max=MAX_TIMESTEPS), default=None,
              help="Steps per sample (default: the artifact's meta.timesteps).")
@click.option("--max-mismatches", type=click.IntRange(min=0), default=0, show_default=True,
              help="Spike/state mismatches allowed between the backend and the reference "
                   "simulator.")
@click.option("--max-float-mismatches", type=click.IntRange(min=0), default=0,
              show_default=True, help="Mismatches allowed between Lava floating_pt and the "
              "float reference graph.")
@click.option("--max-accuracy-drop", type=FiniteFloat(min=0), default=1.0,
              show_default=True, help="Accuracy points fixed point may lose against float.")
@click.option("--max-chips", type=click.IntRange(min=1), default=1, show_default=True,
              help="Chips the mapped model may use.")
@click.option("--allow-overflow", is_flag=True,
              help="Pass the range rung even when range analysis finds a possible overflow.")
@click.option("--json", "json_path", type=OutputPath(dir_okay=False, allow_dash=True),
              default=None,
              help="Write the report as JSON (schema snnc.check/1) to FILE, or '-' for stdout "
                   "(then nothing else is printed there).")
@click.option("--report", "report_dir", type=OutputPath(file_okay=False, path_type=Path),
              default=None, help="Write an HTML report with PNG plots into this directory.")
@click.option("--ray", "use_ray", is_flag=True,
              help="Shard the samples over Ray: the cluster at RAY_ADDRESS, else a local one "
                   "started for the check; the report is the one a single process gives "
                   "(needs the ray extra: pip install 'snnc[ray]').")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="[--ray] Shards run at once (default: the cluster's CPUs; a local cluster "
                   "gets this many).")
@backend_options
@click.pass_context
def check(ctx: click.Context, artifact: Path, backend: str, data_source: str | None,
          samples: int | None, backend_samples: int | None, batch_size: int | None,
          timesteps: int | None, max_mismatches: int, max_float_mismatches: int,
          max_accuracy_drop: float, max_chips: int, allow_overflow: bool, json_path: str | None,
          report_dir: Path | None, use_ray: bool, workers: int | None,
          **backend_settings) -> None:
    """Check a compiled artifact rung by rung before it goes on a chip: trace, resources,
    ranges, accuracy (float vs fixed vs backend), spike equivalence (backend vs reference
    simulator, every layer, step and sample), Lava floating_pt, golden vectors, cost estimates.

    Exit status: 0 when every rung passes its threshold, 2 when a rung fails, 1 on an error.
    """
    import json

    from rich.console import Console

    from snnc.artifact import read_artifact
    from snnc.fileio import Folder, check_outputs
    from snnc.tools.check import Thresholds, load_data, progress_total, run_check
    from snnc.tools.check_text import print_report
    from snnc.tools.html_report import FILES

    if workers is not None and not use_ray:
        raise click.UsageError("--workers needs --ray (it is the number of Ray workers)")
    check_outputs({"--json": None if json_path == "-" else json_path,
                   "--report": None if report_dir is None else Folder(report_dir, FILES)},
                  {"ARTIFACT": artifact, "--data": _data_file(data_source),
                   **backend_files(backend_settings)})
    art = read_artifact(artifact)
    steps = int(timesteps or art.meta.get("timesteps") or 0)
    if not steps:
        raise SnncError(f"{artifact} records no timesteps; pass --timesteps")
    source = data_source or "golden"
    data = load_data(source, art, samples, steps)
    kind = get_backend(backend)
    runner = kind(art, artifact, **kind.options_from(backend_settings))
    thresholds = Thresholds(max_mismatches, max_float_mismatches, max_accuracy_drop,
                            max_chips, allow_overflow)
    quiet = json_path == "-"
    console = Console(stderr=quiet, width=None if sys.stdout.isatty() else 120)
    progress = _progress(not quiet and sys.stderr.isatty())
    with progress as bar:
        task = bar.add_task("checking", total=progress_total(kind, data.samples,
                                                             backend_samples))

        def tick(what: str, n: int) -> None:
            bar.update(task, advance=n, description=what)

        settings = {"backend": runner, "timesteps": steps, "thresholds": thresholds,
                    "backend_samples": backend_samples, "progress": tick, "batch": batch_size}
        if use_ray:
            from snnc.tools.shard import run_sharded

            report, sharded = run_sharded(art, str(artifact), data, workers=workers,
                                          **settings)
        else:
            report = run_check(art, str(artifact), data, **settings)
    doc = report.to_json()
    if json_path == "-":
        click.echo(json.dumps(doc, indent=2))
    else:
        print_report(report, console)
        if json_path:
            _write_text(Path(json_path), json.dumps(doc, indent=2) + "\n")
            click.echo(f"wrote {json_path}")
    if use_ray:  # how the shards ran (retries): not in the JSON, which is one process's
        console.print(sharded.summary(), highlight=False, soft_wrap=True)
    if report_dir is not None:
        from snnc.tools.html_report import write_html_report

        index = write_html_report(doc, report.raster, report_dir)
        click.echo(f"wrote {index}", err=quiet)
    if not report.passed:
        ctx.exit(EXIT_CHECK_FAILED)


@cli.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--format", "fmt", required=True,
              type=click.Choice(list(FORMATS)),
              help="; ".join(f"{f.name}: {f.description}" for f in FORMATS.values()) + ".")
@click.option("-o", "--output", required=True, type=OutputPath(dir_okay=False, path_type=Path),
              help="The file to write (only if the whole graph can be expressed).")
def export(artifact: Path, fmt: str, output: Path) -> None:
    """Write a compiled artifact in another project's format: NIR or ONNX. What the format
    cannot express exactly is refused, naming the layer and the reason."""
    from snnc.artifact import read_artifact
    from snnc.fileio import check_outputs
    from snnc.tools.export import export as write

    check_outputs({"-o/--output": output}, {"ARTIFACT": artifact})
    write(read_artifact(artifact), fmt, output)
    click.echo(f"wrote {output}")


def _progress(enabled: bool):
    """A rich progress bar on a terminal's stderr; a do-nothing stand-in otherwise."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True,
                    disable=not enabled)


def _write_text(path: Path, text: str) -> None:
    from snnc.fileio import write_atomic

    write_atomic(path, text.encode(), parents=True)


def _simulate_backend(runner, graph, x: np.ndarray, steps: int, output: Path | None,
                      precision: str) -> None:
    """A registered backend's run (fixed point for the quantized graph, float for a float
    one); spikes reported in each layer's window, like the reference simulator's; its raw
    records saved under `<backend>/<layer>`."""
    from snnc.tools.check import windows

    records = runner.run(precision, x, steps)
    _print_result(windows(graph, records, steps, runner.timing))
    if output is not None:
        _save_npz(output, {**{f"{runner.name}/{k}": v for k, v in records.items()}})
        click.echo(f"\nwrote {output}")


def _load_array(path: Path) -> np.ndarray:
    from snnc.inputs import read_array

    return read_array(path, "--input")


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    from snnc.fileio import write_atomic

    write_atomic(path, lambda f: np.savez(f, **arrays), parents=True)


def _print_result(result) -> None:
    click.echo(f"{'layer':<12} {'shape':<16} {'spikes':>8} {'rate':>7}")
    for name, s in result.spikes.items():
        shape = "x".join(map(str, s.shape[2:]))
        click.echo(f"{format_name(name):<12} {shape:<16} {int(s.sum()):>8} {s.mean():>7.3f}")
    for name, v in result.readout.items():
        pred = np.argmax(v.reshape(v.shape[0], -1), axis=1)
        click.echo(f"{format_name(name):<12} readout argmax per sample: "
                   f"{' '.join(map(str, pred))}")


def main() -> None:
    cli(prog_name="snnc")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
