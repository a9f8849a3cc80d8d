# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The paper's figures, drawn from a run's aggregated rows and records.

Two steps, so that tests can check the data of a figure without parsing an image:

1. ``build_figures(rows, records)`` turns the summary rows of
   :func:`results.aggregate` (and, for latency distributions, the records)
   into figure *specs*: plain dicts naming the figure, its panels, and per
   panel the series (label, x, y, whiskers) and the cells that could not be
   drawn, with their status and reason;
2. ``render(spec, caption, fmt)`` draws a spec with matplotlib's Agg canvas
   (no pyplot, no display) and returns the PNG or SVG bytes. The output is
   byte-stable for the same input (fixed SVG hash salt, no dates), so a report
   re-run over the same records changes no file.

Figures (one file stem each, only when the run has the experiment):

* ``drop_throughput``   drop: throughput per location (bars, median, IQR whiskers)
* ``complexity``        complexity: per program, throughput vs N and time per
                        packet vs N per location, log axes, with the
                        BPF_PROG_TEST_RUN cost of the program alone
* ``dns_latency``       dns_latency: RTT percentiles vs offered rate per location
* ``vm_drop_throughput`` vm_drop: throughput per location (bars)
* ``vm_cpu_share``      vm_cpu_share: stacked bars host share / VM share per location
* ``neighbour_latency`` neighbour: RTT CDF of the neighbour per workload location
                        against the ``baseline`` location
* ``zero_loss_throughput`` every experiment with ``zero_loss_pps`` (measure
                        zero_loss): per program/N/size, the zero-loss rate beside
                        the overload throughput per location (bars)

Cells that are not drawn (``unsupported``, ``failed``, no value) are never
dropped silently: bar charts mark them at their place, and every figure's
caption lists them with the reason.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import io
import math
import textwrap

from ansible_collections.xdplab.offload.plugins.module_utils.record import number as record_number

try:
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    HAS_MATPLOTLIB = True
    MATPLOTLIB_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - exercised on hosts without matplotlib
    matplotlib = Figure = FigureCanvasAgg = FigureCanvasSVG = None
    HAS_MATPLOTLIB = False
    MATPLOTLIB_IMPORT_ERROR = _exc

FORMATS = ("png", "svg")
DPI = 150
# Locations in the order the paper reads them, with the names on the axes.
LOCATION_LABELS = (
    ("offload", "NIC offload"),
    ("driver", "driver"),
    ("generic", "generic"),
    ("afxdp", "AF_XDP"),
    ("afxdp_generic", "AF_XDP (generic)"),
    ("vm_afxdp", "VM AF_XDP"),
    ("vm_driver", "VM driver"),
    ("host_driver", "host driver"),
    ("nic", "NIC"),
    ("baseline", "baseline (no load)"),
)
LOCATION_ORDER = tuple(pair[0] for pair in LOCATION_LABELS)
BASELINE = "baseline"
# One colour per kind of location, the same in every figure (matplotlib's tab10):
# NIC blue, device driver orange, generic green, host driver purple, AF_XDP red.
_TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")
LOCATION_COLORS = {
    "offload": "#1f77b4", "nic": "#1f77b4", "driver": "#ff7f0e", "vm_driver": "#ff7f0e",
    "generic": "#2ca02c", "host_driver": "#9467bd", "afxdp": "#d62728", "vm_afxdp": "#d62728",
    "afxdp_generic": "#8c564b", "baseline": "#000000",
}
_SPARE = ("#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
BAR_COLOR = "#4c72b0"
PERCENTILES = (("p50", "p50 (median)", 0.5), ("p90", "p90", 0.9), ("p99", "p99", 0.99),
               ("p999", "p99.9", 0.999))
PROGRAM_ORDER = ("drop", "loop", "checksum", "dns_nxdomain")
# Points drawn at most per CDF series (quantiles of the pooled samples beyond that).
CDF_POINTS = 2000
RC = {
    "svg.hashsalt": "xdplab.offload",
    "svg.fonttype": "none",       # text stays text: searchable, small
    "font.size": 9,
    "axes.titlesize": 10,
    "legend.fontsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


class FiguresError(Exception):
    pass


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

def location_label(location):
    return dict(LOCATION_LABELS).get(location, str(location))


def location_color(location):
    if location in LOCATION_COLORS:
        return LOCATION_COLORS[location]
    return _SPARE[sum(ord(c) for c in str(location)) % len(_SPARE)]


def _order(values, preferred):
    values = list(dict.fromkeys(values))
    known = [v for v in preferred if v in values]
    return known + sorted((v for v in values if v not in preferred), key=lambda v: (v is None, str(v)))


def _num(value):
    return record_number(value)


def _stat(row, quantity, stat="median"):
    return _num(row.get("%s_%s" % (quantity, stat)))


def _rows(rows, experiment):
    return [r for r in rows if r.get("experiment") == experiment]


def _varying(rows, keys):
    return [k for k in keys if len(set(r.get(k) for r in rows)) > 1]


def _by_panel(rows, keys):
    """``[(values of keys, rows with them)]`` in the order the values first appear in ``rows``."""
    combos = []
    for row in rows:
        key = tuple(row.get(k) for k in keys)
        if key not in combos:
            combos.append(key)
    return [(combo, [r for r in rows if tuple(r.get(k) for k in keys) == combo]) for combo in combos]


def _fmt_rate(rate):
    rate = _num(rate)
    if not rate:
        return "max rate"
    for factor, suffix in ((1e6, "Mpps"), (1e3, "kpps")):
        if rate >= factor:
            return "%g %s" % (rate / factor, suffix)
    return "%g pps" % rate


def key_label(row, keys):
    """Words for the cell-group keys ``keys`` of ``row`` (``loop N=100, 64 B``)."""
    parts = []
    for key in keys:
        value = row.get(key)
        if key == "location":
            parts.append(location_label(value))
        elif key == "n":
            if value is not None:
                parts.append("N=%s" % value)
        elif key == "size":
            if value is not None:
                parts.append("%s B" % value)
        elif key == "rate":
            parts.append(_fmt_rate(value))
        elif value is not None:
            parts.append(str(value))
    return ", ".join(parts)


def _note(row, keys=("location", "program", "n", "size", "rate")):
    """Caption note for a group that is not (fully) drawn, or None."""
    total, ok = row.get("repetitions_total") or 0, row.get("repetitions") or 0
    if row.get("status") == "ok" and ok == total:
        return None
    label = key_label(row, keys)
    reason = row.get("reason") or "no reason recorded"
    if ok == 0:
        return "%s: %s (%s)" % (label, row.get("status"), reason)
    return "%s: %d of %d repetitions ok, others %s (%s)" % (label, ok, total, row.get("status"), reason)


def _notes(rows, keys=("location", "program", "n", "size", "rate")):
    """Caption notes for the groups not (fully) drawn; groups of one location that
    failed for the same reason share one note."""
    out = []
    absent = {}
    for row in rows:
        if (row.get("repetitions") or 0) == 0 and row.get("status") != "ok":
            key = (row.get("location"), row.get("status"), row.get("reason") or "no reason recorded")
            absent.setdefault(key, []).append(row)
    for row in rows:
        if (row.get("repetitions") or 0) == 0 and row.get("status") != "ok":
            key = (row.get("location"), row.get("status"), row.get("reason") or "no reason recorded")
            members = absent.pop(key, None)
            if members is None:
                continue
            if len(members) > 1:
                note = "%s: %s in all %d of its cell groups (%s)" % (
                    location_label(key[0]), key[1], len(members), key[2])
            else:
                note = _note(row, keys)
        else:
            note = _note(row, keys)
        if note and note not in out:
            out.append(note)
    return out


def _spread(row, quantity, factor=1.0):
    """(median, q1, q3) scaled by ``factor``; (None, None, None) without a median."""
    median = _stat(row, quantity)
    if median is None:
        return None, None, None
    low, high = _stat(row, quantity, "q1"), _stat(row, quantity, "q3")
    low = median if low is None else low
    high = median if high is None else high
    return median * factor, low * factor, high * factor


def _status_word(row):
    if row is None:
        return "not measured"
    if (row.get("repetitions") or 0) == 0:
        return row.get("status") if row.get("status") != "ok" else "no value"
    return "no value"


# ---------------------------------------------------------------------------
# Figure specs
# ---------------------------------------------------------------------------

def throughput_bars(rows, experiment, name, title):
    """Bars of ``processed_pps`` per location, one bar per program/N/size/rate variant."""
    rows = _rows(rows, experiment)
    if not rows:
        return None
    locations = _order([r["location"] for r in rows], LOCATION_ORDER)
    variant_keys = ["program", "n", "size"] + (["rate"] if _varying(rows, ["rate"]) or
                                               any(r.get("rate") for r in rows) else [])
    variants = []
    for row in rows:
        key = tuple(row.get(k) for k in variant_keys)
        if key not in variants:
            variants.append(key)
    series, marks = [], []
    for index, key in enumerate(variants):
        label = key_label(dict(zip(variant_keys, key)), variant_keys)
        ys, lows, highs = [], [], []
        for location in locations:
            match = [r for r in rows if r["location"] == location and
                     tuple(r.get(k) for k in variant_keys) == key]
            row = match[0] if match else None
            median, low, high = _spread(row, "processed_pps", 1e-6) if row else (None, None, None)
            ys.append(median)
            lows.append(low)
            highs.append(high)
            if median is None:
                marks.append({"series": index, "x": location_label(location), "text": _status_word(row)})
        series.append({"label": label, "x": [location_label(l) for l in locations], "y": ys,
                       "low": lows, "high": highs, "color": None})
    if len(series) == 1:
        series[0]["color"] = BAR_COLOR
    panel = {"kind": "bar", "title": None, "xlabel": "location", "ylabel": "throughput [Mpps]",
             "xscale": "linear", "yscale": "linear", "categories": [location_label(l) for l in locations],
             "series": series, "marks": marks}
    return {"name": name, "title": title, "experiment": experiment, "panels": [panel],
            "stat_note": "Bars: median packet rate processed by the program over the ok repetitions; "
                         "whiskers: interquartile range.",
            "notes": _notes(rows)}


def complexity(rows):
    """Per program: throughput vs N and time per packet vs N, one line per location."""
    rows = [r for r in _rows(rows, "complexity") if r.get("n") is not None]
    if not rows:
        return None
    programs = _order([r["program"] for r in rows], PROGRAM_ORDER)
    extra = _varying(rows, ["size", "rate"])
    panels = []
    derived = False
    for program in programs:
        prows = [r for r in rows if r["program"] == program]
        lines = []
        for row in prows:
            key = (row["location"],) + tuple(row.get(k) for k in extra)
            if key not in lines:
                lines.append(key)
        lines.sort(key=lambda k: (LOCATION_ORDER.index(k[0]) if k[0] in LOCATION_ORDER else 99, str(k)))
        tput, cost = [], []
        for key in lines:
            match = sorted((r for r in prows if (r["location"],) + tuple(r.get(k) for k in extra) == key),
                           key=lambda r: r["n"])
            label = key_label(dict(zip(["location"] + extra, key)), ["location"] + extra)
            color = location_color(key[0])
            t = {"label": label, "x": [], "y": [], "low": [], "high": [], "color": color}
            c = {"label": label, "x": [], "y": [], "low": [], "high": [], "color": color}
            for row in match:
                median, low, high = _spread(row, "processed_pps", 1e-6)
                if median is not None:
                    t["x"].append(row["n"])
                    t["y"].append(median)
                    t["low"].append(low)
                    t["high"].append(high)
                ns = _spread(row, "ns_per_packet")
                if ns[0] is None and median:
                    pps = _spread(row, "processed_pps")
                    # 1e9/x is decreasing: the quartiles swap.
                    ns = (1e9 / pps[0], 1e9 / pps[2] if pps[2] else None, 1e9 / pps[1] if pps[1] else None)
                    derived = True
                if ns[0] is not None:
                    c["x"].append(row["n"])
                    c["y"].append(ns[0])
                    c["low"].append(ns[1] if ns[1] is not None else ns[0])
                    c["high"].append(ns[2] if ns[2] is not None else ns[0])
            if t["x"]:
                tput.append(t)
            if c["x"]:
                cost.append(c)
        # The program alone (BPF_PROG_TEST_RUN): median over the locations that measured it.
        by_n = {}
        for row in prows:
            value = _stat(row, "ns_per_run")
            if value is not None:
                by_n.setdefault(row["n"], []).append(value)
        if by_n:
            ns_sorted = sorted(by_n)
            ys = [sorted(by_n[n])[len(by_n[n]) // 2] if len(by_n[n]) % 2 else
                  sum(sorted(by_n[n])[len(by_n[n]) // 2 - 1:len(by_n[n]) // 2 + 1]) / 2.0 for n in ns_sorted]
            cost.append({"label": "program alone (BPF_PROG_TEST_RUN)", "x": ns_sorted, "y": ys,
                         "low": [min(by_n[n]) for n in ns_sorted], "high": [max(by_n[n]) for n in ns_sorted],
                         "color": "#000000", "linestyle": "--"})
        xscale = "log" if all(r["n"] > 0 for r in prows) else "symlog"
        panels.append({"kind": "line", "title": "%s: throughput" % program, "xlabel": "N (iterations)",
                       "ylabel": "throughput [Mpps]", "xscale": xscale, "yscale": "log",
                       "series": tput, "marks": []})
        panels.append({"kind": "line", "title": "%s: time per packet" % program,
                       "xlabel": "N (iterations)", "ylabel": "time per packet [ns]",
                       "xscale": xscale, "yscale": "log", "series": cost, "marks": []})
    note = "Points: median over the ok repetitions; whiskers: interquartile range."
    if derived:
        note += " Time per packet at a location = 1e9 / throughput where no ns_per_packet was recorded."
    note += " Dashed: BPF_PROG_TEST_RUN cost of the program alone (median over locations; whiskers min..max)."
    return {"name": "complexity", "title": "Processing complexity: cost of N iterations per location",
            "experiment": "complexity", "panels": panels, "stat_note": note,
            "notes": _notes(_rows(rows, "complexity"))}


def _auto_scale(series, ratio=30.0):
    values = [y for s in series for y in s["y"] if y]
    if values and min(values) > 0 and max(values) / min(values) >= ratio:
        return "log"
    return "linear"


def _x_rate(row):
    rate = _num(row.get("rate"))
    if rate:
        return rate
    return _stat(row, "rate_pps")


def dns_latency(rows):
    """RTT percentiles vs offered packet rate, one panel per percentile, one line per location."""
    rows = _rows(rows, "dns_latency")
    if not rows:
        return None
    extra = _varying(rows, ["program", "size"])
    present = [p for p in PERCENTILES if any(_stat(r, "rtt_us_" + p[0]) is not None for r in rows)]
    if not present:
        present = [PERCENTILES[0]]
    lines = []
    for row in rows:
        key = (row["location"],) + tuple(row.get(k) for k in extra)
        if key not in lines:
            lines.append(key)
    lines.sort(key=lambda k: (LOCATION_ORDER.index(k[0]) if k[0] in LOCATION_ORDER else 99, str(k)))
    panels = []
    for pname, plabel, dummy in present:
        quantity = "rtt_us_" + pname
        series = []
        for key in lines:
            match = [r for r in rows if (r["location"],) + tuple(r.get(k) for k in extra) == key]
            points = []
            for row in match:
                x = _x_rate(row)
                median, low, high = _spread(row, quantity)
                if x is not None and median is not None:
                    points.append((x / 1e3, median, low, high))
            points.sort()
            if points:
                series.append({"label": key_label(dict(zip(["location"] + extra, key)), ["location"] + extra),
                               "x": [p[0] for p in points], "y": [p[1] for p in points],
                               "low": [p[2] for p in points], "high": [p[3] for p in points],
                               "color": location_color(key[0])})
        xs = [x for s in series for x in s["x"] if x]
        xscale = "log" if xs and min(xs) > 0 and max(xs) / min(xs) >= 20 else "linear"
        panels.append({"kind": "line", "title": "RTT %s" % plabel, "xlabel": "offered rate [kpps]",
                       "ylabel": "round-trip time [µs]", "xscale": xscale, "yscale": _auto_scale(series, 20),
                       "series": series, "marks": []})
    return {"name": "dns_latency", "title": "DNS latency versus packet rate",
            "experiment": "dns_latency", "panels": panels,
            "stat_note": "Each point: median over the ok repetitions of that repetition's RTT percentile; "
                         "whiskers: interquartile range over repetitions. The x value is the offered rate "
                         "(the achieved rate where the cell ran as fast as possible).",
            "notes": _notes(rows)}


def cpu_share(rows):
    """Stacked bars (host share below, VM share on top) per location; one panel per workload."""
    rows = _rows(rows, "vm_cpu_share")
    if not rows:
        return None
    panel_keys = ["program", "n", "size", "rate"]
    panels = []
    for combo, crows in _by_panel(rows, panel_keys):
        locations = _order([r["location"] for r in crows], LOCATION_ORDER)
        host, vm, marks = [], [], []
        host_lh, vm_lh = [], []
        for location in locations:
            row = [r for r in crows if r["location"] == location][0]
            h, v = _stat(row, "cpu_host_share"), _stat(row, "cpu_vm_share")
            if h is None and v is None:
                marks.append({"series": 0, "x": location_label(location), "text": _status_word(row)})
            host.append(h)
            vm.append(v)
            host_lh.append((_stat(row, "cpu_host_share", "q1"), _stat(row, "cpu_host_share", "q3")))
            vm_lh.append((_stat(row, "cpu_vm_share", "q1"), _stat(row, "cpu_vm_share", "q3")))
        cats = [location_label(l) for l in locations]
        series = [
            {"label": "host share", "x": cats, "y": host, "low": [p[0] for p in host_lh],
             "high": [p[1] for p in host_lh], "color": "#4c72b0"},
            {"label": "VM share", "x": cats, "y": vm, "low": [p[0] for p in vm_lh],
             "high": [p[1] for p in vm_lh], "color": "#dd8452"},
        ]
        title = key_label(dict(zip(panel_keys, combo)), panel_keys)
        panels.append({"kind": "stacked", "title": title, "xlabel": "location",
                       "ylabel": "CPU usage [% of one CPU]", "xscale": "linear", "yscale": "linear",
                       "categories": cats, "series": series, "marks": marks})
    return {"name": "vm_cpu_share", "title": "Influence on the VM host: CPU usage per location",
            "experiment": "vm_cpu_share", "panels": panels,
            "stat_note": "Stacked medians over the ok repetitions: host share (outside the guests: softirq, "
                         "virtual switch, hypervisor I/O) below, VM share (guest vCPUs) on top; 100 % = one CPU "
                         "busy. The number above a bar is the total.",
            "notes": _notes(rows)}


# --- latency distributions ----------------------------------------------------

def _pooled_samples(records):
    values = []
    for record in records:
        samples = record.get("rtt_us_samples")
        if isinstance(samples, list):
            values.extend(float(v) for v in samples if _num(v) is not None)
    return sorted(values)


def _valid_hist(hist):
    if not isinstance(hist, dict):
        return None
    edges, counts = hist.get("edges"), hist.get("counts")
    if not isinstance(edges, list) or not isinstance(counts, list) or len(edges) != len(counts) + 1 or not counts:
        return None
    edges = [_num(e) for e in edges]
    counts = [_num(c) for c in counts]
    if None in edges or None in counts or any(b <= a for a, b in zip(edges, edges[1:])) or min(counts) < 0:
        return None
    return edges, counts


def cdf_points(records, row=None):
    """CDF of the RTTs of ``records`` as ``(x, y, source, count)``; None without data.

    Pools raw samples when any record has them, else histograms (exact at the
    bin edges when all records share the edges, else each bin's mass is put at
    its upper edge), else the percentiles of the summary ``row`` as points.
    """
    samples = _pooled_samples(records)
    if samples:
        count = len(samples)
        if count <= CDF_POINTS:
            xs = samples
            ys = [(i + 1) / float(count) for i in range(count)]
        else:
            xs, ys = [], []
            for i in range(CDF_POINTS):
                p = (i + 1) / float(CDF_POINTS)
                xs.append(samples[min(count - 1, int(math.ceil(p * count)) - 1)])
                ys.append(p)
        return xs, ys, "samples", count
    hists = [h for h in (_valid_hist(r.get("rtt_us_hist")) for r in records) if h]
    if hists:
        if all(h[0] == hists[0][0] for h in hists):
            edges = hists[0][0]
            counts = [sum(h[1][i] for h in hists) for i in range(len(edges) - 1)]
            masses = list(zip(edges[1:], counts))
            start = edges[0]
        else:
            merged = {}
            for edges, counts in hists:
                for edge, count in zip(edges[1:], counts):
                    merged[edge] = merged.get(edge, 0.0) + count
            masses = sorted(merged.items())
            start = min(h[0][0] for h in hists)
        total = sum(pair[1] for pair in masses)
        if total <= 0:
            return None
        xs, ys, acc = [start], [0.0], 0.0
        for edge, count in masses:
            acc += count
            xs.append(edge)
            ys.append(acc / total)
        return xs, ys, "histogram", int(total)
    if row is not None:
        points = [(_stat(row, "rtt_us_" + p), q) for p, dummy, q in PERCENTILES]
        points = [(x, q) for x, q in points if x is not None]
        if points:
            return [p[0] for p in points], [p[1] for p in points], "percentiles", None
    return None


def _key(row_or_record, keys):
    out = []
    for k in keys:
        value = row_or_record.get(k)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        out.append(value)
    return tuple(out)


def neighbour_cdf(rows, records):
    """The neighbour's RTT CDF for each workload location, against the baseline."""
    rows = _rows(rows, "neighbour")
    if not rows:
        return None
    records = [r for r in records if r.get("experiment") == "neighbour" and r.get("status") == "ok"]
    group_keys = ["experiment", "program", "n", "location", "size", "rate"]
    panel_keys = ["program", "n", "size", "rate"]
    loaded = [r for r in rows if r["location"] != BASELINE]
    baselines = [r for r in rows if r["location"] == BASELINE]
    combos = []
    for row in loaded or baselines:
        key = tuple(row.get(k) for k in panel_keys)
        if key not in combos:
            combos.append(key)

    def series_for(row, label, color, linestyle="-"):
        recs = [r for r in records if _key(r, group_keys) == _key(row, group_keys)]
        points = cdf_points(recs, row)
        if points is None:
            return None
        xs, ys, source, count = points
        return {"label": label + ("" if source != "percentiles" else " (percentiles only)"),
                "x": xs, "y": ys, "color": color, "linestyle": linestyle, "source": source,
                "samples": count, "location": row["location"]}

    panels = []
    sources = set()
    for combo in combos:
        series = []
        crows = [r for r in loaded if tuple(r.get(k) for k in panel_keys) == combo]
        for row in sorted(crows, key=lambda r: (LOCATION_ORDER.index(r["location"])
                                                if r["location"] in LOCATION_ORDER else 99, r["location"])):
            s = series_for(row, "workload at %s" % location_label(row["location"]), location_color(row["location"]))
            if s:
                series.append(s)
        base = [b for b in baselines if (b.get("size"), b.get("rate")) == (combo[2], combo[3])] or baselines
        for row in base:
            label = location_label(BASELINE)
            if len(base) > 1:
                label += " (%s)" % key_label(row, ["program", "n", "size", "rate"])
            s = series_for(row, label, "#000000", "--")
            if s:
                series.append(s)
        sources.update(s["source"] for s in series)
        xs = [x for s in series for x in s["x"] if x and x > 0]
        xscale = "log" if xs and max(xs) / min(xs) >= 50 else "linear"
        title = key_label(dict(zip(panel_keys, combo)), panel_keys) if loaded else "baseline only"
        panels.append({"kind": "cdf", "title": "workload: %s" % title, "xlabel": "neighbour round-trip time [µs]",
                       "ylabel": "fraction of queries (CDF)", "xscale": xscale, "yscale": "linear",
                       "series": series, "marks": []})
    how = []
    if "samples" in sources:
        how.append("steps: raw samples")
    if "histogram" in sources:
        how.append("lines: histograms, exact at the bin edges")
    if "percentiles" in sources:
        how.append("'(percentiles only)': the median p50/p90/p99/p99.9 of the repetitions")
    note = ("CDF of the neighbour VM's DNS round-trip times, pooled over the ok repetitions (%s). "
            "Dashed: no workload (baseline)." % "; ".join(how))
    return {"name": "neighbour_latency", "title": "Influence on a neighbouring VM: latency distribution",
            "experiment": "neighbour", "panels": panels, "stat_note": note,
            "notes": _notes(rows) + ([] if baselines else ["no baseline cell (location baseline) in this run"])}


def _search_note(records, experiments):
    """The search's parameters in words when every record of ``experiments`` used the same ones."""
    seen = set()
    for record in records or []:
        if record.get("experiment") in experiments and isinstance(record.get("zero_loss_parameters"), dict):
            p = record["zero_loss_parameters"]
            seen.add((p.get("loss_tolerance"), p.get("resolution"), p.get("trial_duration"), p.get("max_trials")))
    if len(seen) != 1:
        return ""
    tolerance, resolution, trial, trials = seen.pop()
    return (" Search: loss tolerance %s, resolution %s, trials of %s s, at most %s trials."
            % (_num_text(tolerance), _num_text(resolution), _num_text(trial), _num_text(trials)))


def _num_text(value):
    number = _num(value)
    return "%g" % number if number is not None else str(value)


def zero_loss_bars(rows, records=None):
    """Zero-loss rate beside the overload throughput, per location; one panel per program/N/size."""
    experiments = sorted(set(r["experiment"] for r in rows if r.get("experiment") == "zero_loss"
                             or _stat(r, "zero_loss_pps") is not None))
    rows = [r for r in rows if r.get("experiment") in experiments]
    if not rows:
        return None
    largest = max([_stat(r, q) or 0.0 for r in rows for q in ("zero_loss_pps", "processed_pps")] + [0.0])
    factor, unit = (1e-6, "Mpps") if largest >= 1e6 else (1e-3, "kpps")
    panel_keys = ["experiment", "program", "n", "size"] if len(experiments) > 1 else ["program", "n", "size"]
    ordered = sorted(rows, key=lambda r: (PROGRAM_ORDER.index(r["program"]) if r["program"] in PROGRAM_ORDER
                                          else 99, str(r["program"]), r.get("n") or 0, r.get("size") or 0))
    panels = []
    for combo, crows in _by_panel(ordered, panel_keys):
        locations = _order([r["location"] for r in crows], LOCATION_ORDER)
        cats = [location_label(l) for l in locations]
        series, marks = [], []
        for index, (quantity, label, color) in enumerate((
                ("processed_pps", "overload: processed", "#4c72b0"),
                ("zero_loss_pps", "zero loss (RFC 2544)", "#dd8452"))):
            ys, lows, highs = [], [], []
            for location in locations:
                row = [r for r in crows if r["location"] == location][0]
                median, low, high = _spread(row, quantity, factor)
                ys.append(median)
                lows.append(low)
                highs.append(high)
                if median is None:
                    marks.append({"series": index, "x": location_label(location), "text": _status_word(row)})
            series.append({"label": label, "x": cats, "y": ys, "low": lows, "high": highs, "color": color})
        panels.append({"kind": "bar", "title": key_label(dict(zip(panel_keys, combo)), panel_keys),
                       "xlabel": "location", "ylabel": "throughput [%s]" % unit, "xscale": "linear",
                       "yscale": "linear", "categories": cats, "series": series, "marks": marks})
    note = ("Bars: median over the ok repetitions; whiskers: interquartile range. Zero loss: the highest offered "
            "rate whose trial lost at most the tolerated fraction of the frames (RFC 2544, 26.1, binary search). "
            "Overload: packets/s the program processed in the search's as-fast-as-possible trial. 'no value' "
            "under zero loss: the search found no rate without loss.")
    return {"name": "zero_loss_throughput", "title": "Zero-loss throughput beside the throughput under overload",
            "experiment": "zero_loss" if "zero_loss" in experiments else experiments[0],
            "panels": panels, "stat_note": note + _search_note(records, experiments),
            "notes": _notes(rows, ("location", "program", "n", "size"))}


def build_figures(rows, records):
    """The specs of every figure the run has data for, in the paper's order."""
    specs = [
        throughput_bars(rows, "drop", "drop_throughput", "Throughput baseline: drop all, per location"),
        complexity(rows),
        zero_loss_bars(rows, records),
        dns_latency(rows),
        throughput_bars(rows, "vm_drop", "vm_drop_throughput", "Offloading from virtual machines: drop all"),
        cpu_share(rows),
        neighbour_cdf(rows, records),
    ]
    return [s for s in specs if s is not None]


# ---------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------

def caption_text(spec, provenance):
    """The caption under a figure, one paragraph a line: statistics, cells not drawn with reasons, provenance."""
    parts = [spec.get("stat_note") or ""]
    if spec.get("notes"):
        parts.append("Not drawn or incomplete: " + "; ".join(spec["notes"]) + ".")
    if provenance:
        parts.append("Source: " + provenance + ".")
    return "\n".join(p for p in parts if p)


def _errors(series):
    low, high = series.get("low"), series.get("high")
    if not low or not high:
        return None
    err = [[], []]
    for y, lo, hi in zip(series["y"], low, high):
        if y is None:
            err[0].append(0.0)
            err[1].append(0.0)
        else:
            err[0].append(max(0.0, y - (lo if lo is not None else y)))
            err[1].append(max(0.0, (hi if hi is not None else y) - y))
    return err


def _draw_bars(ax, panel):
    cats = panel["categories"]
    count = max(1, len(panel["series"]))
    width = 0.8 / count
    for index, series in enumerate(panel["series"]):
        xs = [cats.index(x) - 0.4 + width * (index + 0.5) for x in series["x"]]
        ys = [y if y is not None else 0.0 for y in series["y"]]
        color = series.get("color")
        ax.bar(xs, ys, width=width * 0.92, color=color if color else _TAB10[index % len(_TAB10)],
               label=series["label"], yerr=_errors(series), capsize=3, ecolor="#333333")
    top = max([y for s in panel["series"] for y in s["y"] if y is not None] or [1.0])
    for mark in panel.get("marks", []):
        x = cats.index(mark["x"]) - 0.4 + width * (mark["series"] + 0.5)
        ax.text(x, top * 0.02, mark["text"], rotation=90, ha="center", va="bottom", fontsize=8,
                color="#555555", style="italic")
    ax.set_xticks(range(len(cats)))
    ax.set_xticklabels(cats)
    ax.set_xlim(-0.6, len(cats) - 0.4)
    ax.set_ylim(bottom=0, top=top * 1.15)


def _draw_stacked(ax, panel):
    cats = panel["categories"]
    bottoms = [0.0] * len(cats)
    for series in panel["series"]:
        ys = [y if y is not None else 0.0 for y in series["y"]]
        ax.bar(range(len(cats)), ys, width=0.6, bottom=bottoms, color=series.get("color"),
               label=series["label"], edgecolor="white")
        bottoms = [b + y for b, y in zip(bottoms, ys)]
    top = max(bottoms + [1.0])
    for i, total in enumerate(bottoms):
        if total > 0:
            ax.text(i, total + top * 0.01, "%.0f %%" % total, ha="center", va="bottom", fontsize=8)
    for mark in panel.get("marks", []):
        ax.text(cats.index(mark["x"]), top * 0.02, mark["text"], rotation=90, ha="center", va="bottom",
                fontsize=8, color="#555555", style="italic")
    ax.set_xticks(range(len(cats)))
    ax.set_xticklabels(cats)
    ax.set_ylim(bottom=0, top=top * 1.15)


def _draw_lines(ax, panel):
    for series in panel["series"]:
        ax.errorbar(series["x"], series["y"], yerr=_errors(series), label=series["label"],
                    color=series.get("color"), linestyle=series.get("linestyle", "-"), marker="o",
                    markersize=4, capsize=3, linewidth=1.4)


def _draw_cdf(ax, panel):
    for series in panel["series"]:
        style = dict(label=series["label"], color=series.get("color"),
                     linestyle=series.get("linestyle", "-"), linewidth=1.4)
        if series.get("source") == "samples":
            ax.step(series["x"], series["y"], where="post", **style)
        elif series.get("source") == "percentiles":
            ax.plot(series["x"], series["y"], marker="o", markersize=4, **style)
        else:
            ax.plot(series["x"], series["y"], **style)
    ax.set_ylim(0, 1.02)


_DRAW = {"bar": _draw_bars, "stacked": _draw_stacked, "line": _draw_lines, "cdf": _draw_cdf}


def draw(spec, caption=""):
    """A matplotlib Figure for ``spec`` (not attached to pyplot; nothing is shown)."""
    if not HAS_MATPLOTLIB:
        raise FiguresError("matplotlib is not importable: %s" % MATPLOTLIB_IMPORT_ERROR)
    panels = spec["panels"]
    ncols = 1 if len(panels) == 1 else 2
    nrows = int(math.ceil(len(panels) / float(ncols)))
    width = 7.0 if ncols == 1 else 10.0
    height = 0.6 + 3.4 * nrows
    wrapped = ""
    caption_in = 0.0
    if caption:
        # About 17 characters of 7-point text per inch; the caption gets its own strip
        # below the panels (no tight bounding box: that would lay the figure out twice).
        wrapped = "\n".join(textwrap.fill(line, width=int(width * 17)) for line in caption.splitlines())
        caption_in = (wrapped.count("\n") + 1) * 7 * 1.25 / 72.0 + 0.15
    total = height + caption_in
    fig = Figure(figsize=(width, total))
    # Fixed margins in inches (a layout engine would cost a full extra layout pass per save):
    # left for the y label and ticks, bottom for the x label, top for the title, gaps for the
    # panel titles and labels between panels.
    left, right, bottom, top, hgap, wgap = 0.8, 0.2, 0.6, 0.65, 0.85, 0.85
    axes_h = (height - bottom - top - hgap * (nrows - 1)) / nrows
    axes_w = (width - left - right - wgap * (ncols - 1)) / ncols
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=(caption_in + bottom) / total,
                        top=1 - top / total, hspace=hgap / axes_h, wspace=wgap / axes_w)
    if caption:
        fig.text(0.012, (caption_in - 0.05) / total, wrapped, ha="left", va="top", fontsize=7, color="#333333")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    labels = [tuple(s["label"] for s in p["series"]) for p in panels]
    shared_legend = len(set(labels)) == 1
    for index, panel in enumerate(panels):
        ax = axes[index // ncols][index % ncols]
        ax.set_axisbelow(True)
        _DRAW[panel["kind"]](ax, panel)
        if panel.get("title"):
            ax.set_title(panel["title"])
        ax.set_xlabel(panel["xlabel"])
        ax.set_ylabel(panel["ylabel"])
        if panel.get("xscale", "linear") != "linear":
            ax.set_xscale(panel["xscale"])
        if panel.get("yscale", "linear") != "linear":
            ax.set_yscale(panel["yscale"])
        if not panel["series"]:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="#555555")
        elif index == 0 or not shared_legend:
            ax.legend(loc="best", frameon=True)
    for index in range(len(panels), nrows * ncols):
        axes[index // ncols][index % ncols].set_visible(False)
    fig.suptitle(spec["title"], fontsize=11, y=1 - 0.12 / total)
    return fig


def render(spec, caption="", fmt="png"):
    """The figure as PNG or SVG bytes, byte-stable for the same input."""
    if fmt not in FORMATS:
        raise FiguresError("unknown figure format %r (known: %s)" % (fmt, ", ".join(FORMATS)))
    with matplotlib.rc_context(RC):
        fig = draw(spec, caption)
        buf = io.BytesIO()
        if fmt == "png":
            FigureCanvasAgg(fig)
            fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
        else:
            FigureCanvasSVG(fig)
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return buf.getvalue()
