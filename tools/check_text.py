"""`snnc check`'s terminal output: the rungs, then one row per neuron layer (rich tables)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape as markup_escape
from rich.table import Table

from snnc.ir.printer import escape, format_name
from snnc.tools.check import CheckReport

_LINE = {"highlight": False, "soft_wrap": True}  # plain lines: no colouring, no wrapping
_STYLE = {"pass": "green", "FAIL": "bold red", "skipped": "dim", "info": "cyan"}


def _text(value: object) -> str:
    """Text from the artifact or the data (a path, a rung's detail) shown as itself: one line,
    no rich markup."""
    return markup_escape(escape(str(value)))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def print_report(report: CheckReport, console: Console) -> None:
    console.print(f"[bold]snnc check[/bold] {_text(report.artifact)}: target "
                  f"{_text(report.target)}, backend {report.backend}, T={report.timesteps}, "
                  f"data {_text(report.data['source'])} ({report.data['samples']} samples, "
                  f"{report.data['backend_samples']} on the backend)", **_LINE)
    rungs = Table(title="rungs", title_justify="left", show_lines=False)
    rungs.add_column("rung")
    rungs.add_column("result")
    rungs.add_column("detail", overflow="fold")
    for r in report.rungs:
        rungs.add_row(r.name, f"[{_STYLE[r.status]}]{r.status}[/]", _text(r.detail))
    console.print(rungs)

    layers = Table(title="layers", title_justify="left")
    for col in ("layer", "op", "shape", "neurons", "cores", "rate float", "rate fixed",
                "agreement", "mismatches"):
        left = col in ("layer", "op", "shape")
        layers.add_column(col, justify="left" if left else "right",
                          overflow="fold" if left else "ellipsis")  # names wrap, never cut
    for row in report.layers:
        def rate(v):
            return "-" if v is None else f"{v:.3f}"

        mism = row["mismatches"]
        layers.add_row(markup_escape(format_name(row["layer"])), row["op"],
                       "x".join(map(str, row["shape"])),
                       f"{row['neurons']:,}", "-" if row["cores"] is None else str(row["cores"]),
                       rate(row["rate_float"]), rate(row["rate_fixed"]), _pct(row["agreement"]),
                       "-" if mism is None else (f"[bold red]{mism}[/]" if mism else "0"))
    console.print(layers)
    if report.accuracy:
        acc = report.accuracy
        console.print(f"accuracy: float {_pct(acc.get('float'))}, fixed "
                      f"{_pct(acc.get('fixed'))} ({acc['samples']} samples); backend "
                      f"{report.backend} {_pct(acc.get('backend'))} on the first "
                      f"{acc.get('backend_samples', '-')} (fixed point on those: "
                      f"{_pct(acc.get('fixed_on_backend_samples'))})", **_LINE)
    verdict = "[bold green]PASSED[/]" if report.passed else "[bold red]FAILED[/]"
    failed = [r.name for r in report.rungs if r.passed is False]
    console.print(f"{verdict}" + (f": {', '.join(failed)}" if failed else ""))
