"""A self-contained HTML page for one `snnc check` report (schema "snnc.check/1").

`write_html_report` writes `index.html` plus the three plots as PNG files beside it; the
PNGs are also embedded in the page as data URIs, so the page alone can be mailed or attached
to a CI run. Every plot is rendered in memory before anything is written, and the four files
are written all or nothing through `snnc.fileio.write_folder`: a failed plot, a full disk or
an unwritable folder leaves the folder as it was, and an index.html on disk always belongs
to a complete set of plots.

Report fields may be null or missing when a rung did not run; the page says "not run" there.
Every string taken from the report is escaped (layer names are chosen by users). Matplotlib
is imported only when a report is written, through its object API (no pyplot state).
"""

from __future__ import annotations

import base64
import html
import io
import numbers
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from snnc.errors import SnncError
from snnc.fileio import write_folder

PLOTS = ("firing_rates.png", "agreement.png", "raster.png")
FILES = (*PLOTS, "index.html")  # every file a report writes, index.html last
MAX_RASTER_NEURONS = 512  # neurons drawn per raster panel; larger layers are subsampled

_MISSING = '<span class="na">not run</span>'
_DASH = '<span class="na">&mdash;</span>'  # a table cell with no value


def write_html_report(report: dict, raster: dict[str, np.ndarray], directory: Path) -> Path:
    """Write `directory/index.html` and the plots beside it; return the index path.

    `raster` maps layer name -> bool array [steps, neurons] of one sample (neurons
    flattened); an empty dict gives a raster image that says so.

    The report is built in a hidden temporary folder and moved into place only once every
    file is written (`snnc.fileio.write_folder`). A `directory` that does not exist is made
    (parents too) in one rename. In an existing `directory` the report's four files (FILES)
    replace those of an earlier report and any other file is left alone. On any failure
    nothing at `directory` changes; an OSError becomes `snnc.fileio.OutputError`, naming the
    path.
    """
    directory = Path(directory)
    pngs = {
        "firing_rates.png": _plot_firing_rates(report.get("firing_rates")),
        "agreement.png": _plot_agreement(report.get("agreement"), report.get("equivalence")),
        "raster.png": _plot_raster(raster),
    }
    page = render_html(report, pngs)
    write_folder(directory, {**pngs, "index.html": page.encode("utf-8")})
    return directory / "index.html"


# ---------------------------------------------------------------------------------- plots


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _label(name: object) -> str:
    """A layer name as literal plot text: `$` would otherwise start matplotlib mathtext."""
    return str(name).replace("$", r"\$")


def _ordered(*series: Mapping | None) -> list[str]:
    """Keys of all series, in order of first appearance."""
    return list(dict.fromkeys(k for s in series if s for k in s))


def _is_number(v: object) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool | np.bool_)


def _value(series: Mapping, key: str) -> float:
    v = series.get(key)
    return float(v) if _is_number(v) else np.nan


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _bars(ax, layers: list[str], series: dict[str, list[float]]) -> None:
    """Grouped bars, one group per layer in order, one bar per series."""
    x = np.arange(len(layers))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, [_label(n) for n in layers], rotation=45 if len(layers) > 6 else 0,
                  ha="right" if len(layers) > 6 else "center")


def _plot_firing_rates(rates: Mapping | None) -> bytes:
    """Per-layer firing rate, float vs fixed; a missing series is left out."""
    rates = rates or {}
    series = {k: rates[k] for k in ("float", "fixed") if rates.get(k)}
    layers = _ordered(*series.values())
    fig = _new_figure(max(6.0, 0.6 * len(layers) + 2), 3.5)
    ax = fig.add_subplot()
    ax.set_title("Firing rate per layer (spikes per neuron per step)")
    if not layers:
        _no_data(ax, "no firing rates in the report")
        return _png(fig)
    _bars(ax, layers, {k: [_value(s, n) for n in layers] for k, s in series.items()})
    ax.set_ylabel("firing rate")
    ax.legend()
    return _png(fig)


def _plot_agreement(agreement: Mapping | None, equivalence: Mapping | None) -> bytes:
    """Spike agreement float vs fixed per layer; beside it, if measured, the backend's
    mismatch count per layer against the reference simulator."""
    mismatches = (equivalence or {}).get("layers") or {}
    panels = 2 if mismatches else 1
    layers = _ordered(agreement)
    fig = _new_figure(max(6.0, 0.6 * max(len(layers), len(mismatches)) + 2) * panels, 3.5)
    axes = fig.subplots(1, panels, squeeze=False)[0]
    ax = axes[0]
    ax.set_title("Spike agreement, float vs fixed")
    if layers:
        values = [_value(agreement, n) for n in layers]
        _bars(ax, layers, {"agreement": values})
        for x, v in enumerate(values):
            if np.isfinite(v):
                ax.annotate(f"{v:.1%}", (x, v), ha="center", va="bottom", fontsize=8)
        ax.set_ylim(0, 1.1)
        ax.set_ylabel("fraction of spikes equal")
    else:
        _no_data(ax, "no agreement in the report")
    if mismatches:
        ax = axes[1]
        names = _ordered(mismatches)
        counts = [_value(mismatches, n) for n in names]
        ax.set_title("Backend vs reference simulator: mismatches")  # the page names which
        _bars(ax, names, {"mismatches": counts})
        ax.bar_label(ax.containers[0], fmt="%g", fontsize=8)
        if not np.nansum(counts):
            ax.set_ylim(0, 1)
            ax.text(0.5, 0.5, "no mismatches", ha="center", va="center",
                    transform=ax.transAxes, color="0.4")
        ax.set_ylabel("mismatch count")
    return _png(fig)


def _plot_raster(raster: Mapping[str, np.ndarray]) -> bytes:
    """One panel per layer: x = step, y = neuron, a dot per spike."""
    from matplotlib.ticker import MaxNLocator

    arrays = {}
    for name, spikes in raster.items():
        a = np.asarray(spikes)
        if a.ndim != 2:
            raise SnncError(f"raster of layer {name!r} has shape {a.shape}; "
                            "expected [steps, neurons] with neurons flattened")
        arrays[name] = a != 0
    fig = _new_figure(8.0, max(2.0, 0.5 + 1.4 * len(arrays)))
    if not arrays:
        _no_data(fig.add_subplot(), "no spike raster recorded")
        return _png(fig)
    axes = fig.subplots(len(arrays), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (name, spikes) in zip(axes, arrays.items(), strict=True):
        steps, neurons = spikes.shape
        keep = np.arange(neurons)
        title = f"{name}: {neurons} neurons"
        if neurons > MAX_RASTER_NEURONS:
            keep = np.linspace(0, neurons - 1, MAX_RASTER_NEURONS).round().astype(int)
            title = f"{name}: {MAX_RASTER_NEURONS} of {neurons} neurons, evenly spaced"
        t, n = np.nonzero(spikes[:, keep])
        if t.size == 0:
            title += " (no spikes)"
        ax.scatter(t, keep[n], s=4, marker="s", linewidths=0, color="k")
        ax.set_title(_label(title), fontsize=9, loc="left")
        ax.set_xlim(-0.5, max(steps, 1) - 0.5)
        ax.set_ylim(-0.5, max(neurons, 1) - 0.5)
        ax.set_ylabel("neuron", fontsize=8)
    axes[-1].set_xlabel("step")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    return _png(fig)


# ----------------------------------------------------------------------------------- page

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.4em; margin-bottom: 0.2em; }
h2 { font-size: 1.1em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.7em; text-align: left;
         vertical-align: top; }
th { background: #f4f4f4; }
.badge { display: inline-block; padding: 0.15em 0.7em; border-radius: 0.3em;
         color: #fff; font-weight: bold; }
.pass { background: #2e7d32; } .fail { background: #c62828; } .unknown { background: #777; }
.ok { color: #2e7d32; font-weight: bold; } .bad { color: #c62828; font-weight: bold; }
.na { color: #888; font-style: italic; }
.meta { color: #555; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _num(value: object, fmt: str = "{:g}", missing: str = _MISSING) -> str:
    """A number formatted for a table cell; null says `missing`, anything else is escaped."""
    if value is None:
        return missing
    if _is_number(value):
        return _e(fmt.format(value))
    return _e(value)


def _pct(value: object, missing: str = _MISSING) -> str:
    return _num(value, "{:.2%}", missing)


def _flag(value: object, yes: str = "yes", no: str = "no", none: str = _MISSING) -> str:
    if value is True:
        return f'<span class="ok">{yes}</span>'
    if value is False:
        return f'<span class="bad">{no}</span>'
    return none if value is None else _e(value)


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """Cells are HTML already (escaped by the caller); header cells are escaped here."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _header(report: Mapping) -> str:
    passed = report.get("passed")
    badge = {True: ("pass", "PASSED"), False: ("fail", "FAILED")}.get(passed,
                                                                      ("unknown", "UNKNOWN"))
    parts = [f"target <b>{_e(report.get('target') or '?')}</b>",
             f"backend <b>{_e(report.get('backend') or 'none')}</b>"]
    if report.get("timesteps") is not None:
        parts.append(f"{_num(report['timesteps'])} steps")
    data = report.get("data") or {}
    if data:
        parts.append(f"data {_e(data.get('source', '?'))}: {_num(data.get('samples'))} samples, "
                     f"{_num(data.get('backend_samples'))} on the backend")
    parts.append(f"schema {_e(report.get('schema', '?'))}")
    return (f"<h1>snnc check: {_e(report.get('artifact') or '?')} "
            f'<span class="badge {badge[0]}">{badge[1]}</span></h1>\n'
            f'<p class="meta">{" &middot; ".join(parts)}</p>\n')


def _rungs(report: Mapping) -> str | None:
    rungs = report.get("rungs")
    if not rungs:
        return None
    skipped = '<span class="na">skipped</span>'
    rows = [(_e(r.get("name", "?")), _flag(r.get("passed"), "passed", "FAILED", skipped),
             _e(r.get("detail") or "")) for r in rungs]
    return _table(("rung", "result", "detail"), rows)


def _layers(report: Mapping) -> str | None:
    rows = report.get("layers")
    if not rows:
        return None
    def count(v):
        return _num(v, "{:g}", _DASH)

    def rate(v):
        return _num(v, "{:.3f}", _DASH)

    columns = {"layer": ("layer", _e), "op": ("op", _e), "neurons": ("neurons", count),
               "cores": ("cores", count), "rate_float": ("rate float", rate),
               "rate_fixed": ("rate fixed", rate),
               "agreement": ("agreement", lambda v: _pct(v, _DASH)),
               "mismatches": ("mismatches", count)}
    keys = [k for k in columns if any(k in r for r in rows)]
    return _table([columns[k][0] for k in keys],
                  [[columns[k][1](r.get(k)) for k in keys] for r in rows])


def _accuracy(report: Mapping) -> str | None:
    acc = report.get("accuracy")
    if not acc:
        return None
    body = _table(("model", "accuracy"),
                  [(_e(k), _pct(acc.get(k))) for k in ("float", "fixed", "backend")])
    if acc.get("samples") is not None:
        body += f"<p>On {_num(acc['samples'])} labelled samples"
        if acc.get("backend_samples") is not None:
            body += f" ({_num(acc['backend_samples'])} on the backend)"
        body += ".</p>"
    return body


def _resources(report: Mapping) -> str | None:
    res = report.get("resources")
    if not res:
        return None
    body = _table(("cores", "chips", "fits"),
                  [(_num(res.get("cores")), _num(res.get("chips")), _flag(res.get("fits")))])
    if res.get("error"):
        body += f'<p class="bad">{_e(res["error"])}</p>'
    layers = res.get("layers") or {}
    if layers:
        body += _table(("layer", "cores"), [(_e(k), _num(v)) for k, v in layers.items()])
    return body


def _overflows(report: Mapping) -> str | None:
    ranges = report.get("ranges")
    if ranges is None:
        return None
    overflows = ranges.get("overflows") or []
    if not overflows:
        return '<p class="ok">none predicted</p>'
    return _table(("layer", "where", "what"),
                  [(_e(o.get("layer", "?")), _e(o.get("where", "")), _e(o.get("what", "")))
                   for o in overflows])


def _comparison(result: Mapping | None) -> str | None:
    """One `golden.Comparison` as JSON: totals, per-layer counts, the first mismatch."""
    if not result:
        return None
    body = (f"<p>Compared with <b>{_e(result.get('reference') or '?')}</b> on "
            f"{_num(result.get('samples'))} samples: <b>{_num(result.get('total_mismatches'))}"
            "</b> mismatched values.</p>")
    layers = result.get("layers") or {}
    compared = result.get("compared") or {}
    if layers:
        body += _table(("layer", "mismatches", "values compared"),
                       [(_e(k), _num(v), _num(compared.get(k))) for k, v in layers.items()])
    first = result.get("first_mismatch")
    if first and "sample" in first:
        neuron = first.get("neuron")
        if isinstance(neuron, list | tuple):
            neuron = "[" + ", ".join(str(i) for i in neuron) + "]"
        body += "<p>First mismatch:</p>" + _table(
            ("layer", "sample", "step", "neuron", "backend", "reference"),
            [(_e(first.get("layer", "?")), _num(first.get("sample")), _num(first.get("step")),
              _num(neuron), _num(first.get("backend")), _num(first.get("reference")))])
    elif first:
        body += (f"<p>First mismatch: layer <b>{_e(first.get('layer', '?'))}</b>: "
                 f"{_e(first.get('detail', ''))}</p>")
    return body


def _estimates(report: Mapping) -> str | None:
    est = report.get("estimates")
    if not est:
        return None
    names = {"cycles_per_step": ("cycles per step", "{:,.0f}"),
             "latency_us": ("latency per inference (µs)", "{:,.1f}"),
             "energy_uj": ("energy per inference (µJ)", "{:,.2f}"),
             "samples": ("samples simulated for the estimate", "{:g}")}
    rows = []
    for key, value in est.items():
        label, fmt = names.get(key, (key, "{:g}"))
        rows.append((_e(label), _num(value, fmt)))
    return _table(("estimate", "value"), rows) + "<p>From the cost model, not measured.</p>"


def _thresholds(report: Mapping) -> str | None:
    th = report.get("thresholds")
    if not th:
        return None
    notes = {"max_accuracy_drop": "percentage points, fixed point vs float"}
    return _table(("threshold", "value", ""),
                  [(_e(k), _num(v), _e(notes.get(k, ""))) for k, v in th.items()])


# (title, renderer, shown as "not run" when the renderer has nothing, else left out)
_SECTIONS: tuple[tuple[str, Callable[[Mapping], str | None], bool], ...] = (
    ("Rungs", _rungs, True),
    ("Layers", _layers, False),
    ("Accuracy", _accuracy, True),
    ("Resources", _resources, True),
    ("Predicted overflows", _overflows, True),
    ("Equivalence: backend vs reference simulator",
     lambda r: _comparison(r.get("equivalence")), True),
    ("Lava floating_pt vs float reference",
     lambda r: _comparison(r.get("lava_floating_pt")), False),
    ("Golden vectors", lambda r: _comparison(r.get("golden")), True),
    ("Estimates", _estimates, True),
    ("Thresholds", _thresholds, False),
)

_CAPTIONS = {
    "firing_rates.png": "Firing rate per layer, float vs fixed-point model.",
    "agreement.png": "Spike agreement float vs fixed; backend mismatches per layer.",
    "raster.png": "Spike raster of one sample.",
}


def render_html(report: Mapping[str, Any], pngs: Mapping[str, bytes]) -> str:
    """The page as text, with each PNG (file name -> bytes) embedded as a data URI."""
    body = _header(report)
    for title, render, always in _SECTIONS:
        section = render(report)
        if section is None and not always:
            continue
        body += f"<h2>{_e(title)}</h2>\n{section or f'<p>{_MISSING}</p>'}\n"
    body += "<h2>Plots</h2>\n"
    for name, data in pngs.items():
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        body += (f'<figure><img src="{uri}" alt="{_e(name)}">'
                 f"<figcaption>{_e(_CAPTIONS.get(name, ''))} ({_e(name)})</figcaption>"
                 "</figure>\n")
    title = f"snnc check: {report.get('artifact') or '?'}"
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
            f"<body>\n{body}</body>\n</html>\n")
