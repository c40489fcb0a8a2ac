"""The `snnc` command line. Errors on bad input print one line and exit non-zero."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path

import click
import numpy as np

from snnc import __version__
from snnc.errors import SnncError

EXIT_ERROR = 1


class _Group(click.Group):
    """Turns snnc errors into one readable line; `--debug` shows the traceback instead."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:  # output piped into `head` and closed: not an error
            sys.stderr.close()
            ctx.exit(0)
        except Exception as err:  # noqa: BLE001 - the CLI boundary: every error becomes a line
            if ctx.params.get("debug"):
                traceback.print_exc()
            elif isinstance(err, SnncError):
                click.echo(f"snnc: error: {err}", err=True)
            elif isinstance(err, OSError):
                click.echo(f"snnc: error: {err.strerror or err}: {err.filename or ''}", err=True)
            else:
                click.echo(f"snnc: internal error: {type(err).__name__}: {err} "
                           "(run with --debug for the traceback)", err=True)
            ctx.exit(EXIT_ERROR)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="snnc")
@click.option("--debug", is_flag=True, help="Show full tracebacks and debug logging.")
def cli(debug: bool) -> None:
    """Compile trained spiking neural networks for Loihi-style chips, simulate them, and
    check that they behave."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


@cli.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("build/tiny.snnc"), show_default=True,
              help="Where to write the compiled artifact.")
@click.option("--timesteps", "-T", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True,
              help="How many random 8x8 inputs to simulate.")
def demo(output: Path, timesteps: int, batch: int) -> None:
    """Compile the tiny built-in network to an artifact, reload it, and simulate it."""
    from snnc.artifact import Artifact, graph_digest, read_artifact
    from snnc.backends.refsim import simulate
    from snnc.demo import sample_inputs, tiny_network

    graph = tiny_network()
    output.parent.mkdir(parents=True, exist_ok=True)
    Artifact(graph, source_hash=graph_digest(graph),
             meta={"source": "snnc.demo:tiny_network", "timesteps": timesteps}).save(output)
    loaded = read_artifact(output)
    click.echo(f"wrote {output} ({output.stat().st_size} bytes), reloaded and verified\n")
    click.echo(loaded.graph.text() + "\n")
    result = simulate(loaded.graph, sample_inputs(batch), timesteps)
    _print_result(result)


@cli.command()
@click.argument("artifact", type=click.Path(path_type=Path))
def inspect(artifact: Path) -> None:
    """Print an artifact's metadata and its IR."""
    from snnc.artifact import read_artifact

    art = read_artifact(artifact)
    click.echo(f"artifact      {artifact}")
    click.echo(f"format        {art.format_version} (written by snnc {art.snnc_version})")
    click.echo(f"target        {art.target}")
    click.echo(f"source hash   {art.source_hash or '-'}")
    for key, value in art.meta.items():
        click.echo(f"meta.{key:<8} {value}")
    for name, value in art.golden.items():
        click.echo(f"golden.{name:<6} {value.dtype}{list(value.shape)}")
    click.echo("")
    click.echo(art.graph.text())


@cli.command()
@click.argument("artifact", type=click.Path(path_type=Path))
@click.option("--input", "input_path", required=True, type=click.Path(path_type=Path),
              help=".npy array shaped [batch, *input_shape] or [T, batch, *input_shape].")
@click.option("--timesteps", "-T", type=click.IntRange(min=1), default=None,
              help="Steps to run (default: the artifact's meta.timesteps).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write spikes and readouts to this .npz file.")
def simulate(artifact: Path, input_path: Path, timesteps: int | None,
             output: Path | None) -> None:
    """Run an artifact on the float reference simulator and print spike counts per layer."""
    from snnc.artifact import read_artifact
    from snnc.backends.refsim import simulate as run

    art = read_artifact(artifact)
    steps = timesteps or art.meta.get("timesteps")
    if not steps:
        raise SnncError(f"{artifact} records no timesteps; pass --timesteps")
    x = _load_array(input_path)
    result = run(art.graph, x, int(steps))
    _print_result(result)
    if output is not None:
        _save_npz(output, {**{f"spikes/{k}": v for k, v in result.spikes.items()},
                           **{f"readout/{k}": v for k, v in result.readout.items()}})
        click.echo(f"\nwrote {output}")


def _load_array(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise SnncError(f"{path}: no such file") from None
    except ValueError as err:
        raise SnncError(f"{path}: not a plain .npy array ({err})") from None


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an .npz atomically (temporary file, then rename)."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _print_result(result) -> None:
    click.echo(f"{'layer':<12} {'shape':<16} {'spikes':>8} {'rate':>7}")
    for name, s in result.spikes.items():
        shape = "x".join(map(str, s.shape[2:]))
        click.echo(f"{name:<12} {shape:<16} {int(s.sum()):>8} {s.mean():>7.3f}")
    for name, v in result.readout.items():
        pred = np.argmax(v.reshape(v.shape[0], -1), axis=1)
        click.echo(f"{name:<12} readout argmax per sample: {' '.join(map(str, pred))}")


def main() -> None:
    cli(prog_name="snnc")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
