# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report page of a run: ``report.md`` and a self-contained ``report.html``.

``build_report(path)`` loads ``<path>/records``, aggregates them
(:mod:`results`), draws the figures (:mod:`figures`) into ``<path>/figures/``
as PNG and SVG, and writes two renderings of the same document:

* ``report.md``   - Markdown, figures linked as ``figures/<name>.png``;
* ``report.html`` - one file with the figures embedded as base64 PNG and no
  external resource (styles inline), to mail or attach to a ticket.

The page says what ran (experiments, programs, N, locations, sizes, rates,
repetitions, cell counts by status), on which machines (the records'
provenance: kernel, CPU, NIC driver and firmware, hypervisor, ...), shows per
experiment its figure and a table (median and 95 % interval per group), lists
every ``unsupported`` and ``failed`` cell with its reason and every record
file that could not be read, and, with ``compare_to``, compares the run with a
reference run (ratio of medians, whether the difference exceeds the spread).
Its ``Findings`` section judges each conclusion of the paper on the run's
numbers (:mod:`findings`).

Nothing in the page depends on the time it is generated: a re-run over the
same records produces the same bytes, and files are only replaced when their
content changes (write then rename).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import html
import os

from ansible_collections.xdplab.offload.plugins.module_utils import results as res
from ansible_collections.xdplab.offload.plugins.module_utils import figures as fg
from ansible_collections.xdplab.offload.plugins.module_utils import findings as fd

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
FIGURES_DIR = "figures"
# Every figure name build_figures() can produce (stale ones are removed).
FIGURE_NAMES = ("drop_throughput", "complexity", "dns_latency", "vm_drop_throughput", "vm_cpu_share",
                "neighbour_latency", "zero_loss_throughput")
# Experiments in the paper's order, with the heading of their section.
EXPERIMENTS = (
    ("drop", "Throughput baseline: drop all"),
    ("complexity", "Processing complexity"),
    ("dns_latency", "Reducing latency: DNS responder"),
    ("vm_drop", "Offloading from virtual machines"),
    ("vm_cpu_share", "Influence on the VM host"),
    ("neighbour", "Influence on neighbouring VMs"),
    ("zero_loss", "Zero-loss throughput (RFC 2544)"),
    ("distribution", "Traffic distribution: flows and RX queues"),
)
EXPERIMENT_FIGURES = {"drop": "drop_throughput", "complexity": "complexity", "dns_latency": "dns_latency",
                      "vm_drop": "vm_drop_throughput", "vm_cpu_share": "vm_cpu_share",
                      "neighbour": "neighbour_latency", "zero_loss": "zero_loss_throughput"}
# The quantities tabled (and compared) per experiment, when the run has them.
EXPERIMENT_QUANTITIES = {
    "drop": ("processed_pps", "rate_pps", "ns_per_packet"),
    "vm_drop": ("processed_pps", "rate_pps", "cpu_host_share", "cpu_vm_share"),
    "complexity": ("processed_pps", "ns_per_packet", "ns_per_run"),
    "dns_latency": ("rtt_us_p50", "rtt_us_p99", "rtt_us_p999", "loss", "rate_pps"),
    "vm_cpu_share": ("cpu_host_share", "cpu_vm_share", "processed_pps"),
    "neighbour": ("rtt_us_p50", "rtt_us_p99", "rtt_us_p999", "loss"),
    "zero_loss": ("zero_loss_pps", "processed_pps"),
    "distribution": ("processed_pps", "rate_pps", "cpu_host_share"),
}
# Column heading and factor per quantity (value shown = value * factor).
QUANTITY_UNITS = {
    "processed_pps": ("throughput [Mpps]", 1e-6),
    "zero_loss_pps": ("zero-loss [Mpps]", 1e-6),
    "rate_pps": ("sent [Mpps]", 1e-6),
    "sent_packets": ("sent [packets]", 1.0),
    "processed_packets": ("processed [packets]", 1.0),
    "lost_packets": ("lost [packets]", 1.0),
    "ns_per_run": ("program alone [ns]", 1.0),
    "ns_per_packet": ("per packet [ns]", 1.0),
    "rtt_us_p50": ("RTT p50 [µs]", 1.0),
    "rtt_us_p90": ("RTT p90 [µs]", 1.0),
    "rtt_us_p99": ("RTT p99 [µs]", 1.0),
    "rtt_us_p999": ("RTT p99.9 [µs]", 1.0),
    "rtt_us_mean": ("RTT mean [µs]", 1.0),
    "loss": ("loss [%]", 100.0),
    "cpu_host_share": ("host CPU [%]", 1.0),
    "cpu_vm_share": ("VM CPU [%]", 1.0),
}
KEY_HEADINGS = {"program": "program", "n": "N", "location": "location", "size": "size [B]",
                "rate": "offered rate"}
STYLE = (
    "body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}"
    "table{border-collapse:collapse;margin:0.5em 0 1.2em;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:left;vertical-align:top}"
    "th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "figure{margin:1em 0}figure img{max-width:100%;height:auto;border:1px solid #eee}"
    "figcaption{font-size:0.85em;color:#444;white-space:pre-wrap}"
    ".unsupported{color:#8a6d00}.failed{color:#b00020}.note{color:#555;font-size:0.9em}"
    ".reproduced{color:#1a7f37}.not-reproduced{color:#b00020}.not-measurable-here{color:#8a6d00}"
    "code{background:#f5f5f5;padding:0 0.2em}"
)


class ReportError(Exception):
    pass


# ---------------------------------------------------------------------------
# Value formatting
# ---------------------------------------------------------------------------

sig = fd.sig


def quantity_heading(quantity):
    return QUANTITY_UNITS.get(quantity, (quantity, 1.0))[0]


def format_stat(row, quantity):
    """``median [ci low, ci high]`` of ``quantity`` in the row, scaled to its unit; ``-`` without a value."""
    factor = QUANTITY_UNITS.get(quantity, (quantity, 1.0))[1]
    median = res._num(row.get(quantity + "_median"))
    if median is None:
        return "-"
    text = sig(median * factor)
    low, high = res._num(row.get(quantity + "_ci95_low")), res._num(row.get(quantity + "_ci95_high"))
    if low is not None and high is not None:
        text += " [%s, %s]" % (sig(low * factor), sig(high * factor))
    return text


def format_key(key, value):
    if key == "rate":
        return "max" if not value else fg._fmt_rate(value)
    if value is None:
        return "-"
    if key == "location":
        return str(value)
    return str(value)


# ---------------------------------------------------------------------------
# The document (rendered to Markdown and to HTML)
# ---------------------------------------------------------------------------

class Table(object):
    def __init__(self, headers, rows, numeric=(), row_classes=None):
        self.headers = list(headers)
        self.rows = [[str(c) for c in row] for row in rows]
        self.numeric = set(numeric)
        self.row_classes = row_classes or [None] * len(self.rows)


def _md_cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks):
    out = []
    for kind, *args in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append("%s %s\n" % ("#" * int(kind[1]), args[0]))
        elif kind == "p":
            out.append(args[0] + "\n")
        elif kind == "note":
            out.append("_%s_\n" % args[0])
        elif kind == "list":
            out.append("\n".join("* " + _md_cell(item) for item in args[0]) + "\n")
        elif kind == "table":
            table = args[0]
            lines = ["| " + " | ".join(_md_cell(h) for h in table.headers) + " |",
                     "|" + "|".join("---:" if i in table.numeric else "---" for i in range(len(table.headers))) + "|"]
            for row in table.rows:
                lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
            out.append("\n".join(lines) + "\n")
        elif kind == "figure":
            name, _png, caption = args
            out.append("![%s](%s/%s.png)\n\n[SVG](%s/%s.svg)\n\n%s\n" % (
                name, FIGURES_DIR, name, FIGURES_DIR, name,
                "\n".join("> " + line for line in caption.splitlines())))
        else:  # pragma: no cover - programming error
            raise ReportError("unknown block %s" % kind)
    return "\n".join(out)


def to_html(blocks, title):
    esc = html.escape
    out = ["<!DOCTYPE html>", "<html lang=\"en\">", "<head>", "<meta charset=\"utf-8\">",
           "<title>%s</title>" % esc(title), "<style>%s</style>" % STYLE, "</head>", "<body>"]
    for kind, *args in blocks:
        if kind in ("h1", "h2", "h3"):
            anchor = "-".join("".join(c if c.isalnum() else " " for c in args[0].lower()).split())
            out.append("<%s id=\"%s\">%s</%s>" % (kind, esc(anchor), _inline_code(esc(args[0])), kind))
        elif kind == "p":
            out.append("<p>%s</p>" % _inline_code(esc(args[0])))
        elif kind == "note":
            out.append("<p class=\"note\">%s</p>" % _inline_code(esc(args[0])))
        elif kind == "list":
            out.append("<ul>" + "".join("<li>%s</li>" % _inline_code(esc(i)) for i in args[0]) + "</ul>")
        elif kind == "table":
            table = args[0]
            lines = ["<table>", "<tr>" + "".join("<th>%s</th>" % esc(h) for h in table.headers) + "</tr>"]
            for row, cls in zip(table.rows, table.row_classes):
                cells = "".join("<td%s>%s</td>" % (" class=\"num\"" if i in table.numeric else "", esc(c))
                                for i, c in enumerate(row))
                lines.append("<tr%s>%s</tr>" % (" class=\"%s\"" % cls if cls else "", cells))
            lines.append("</table>")
            out.append("\n".join(lines))
        elif kind == "figure":
            name, png, caption = args
            out.append("<figure id=\"figure-%s\"><img alt=\"%s\" src=\"data:image/png;base64,%s\">"
                       "<figcaption>%s</figcaption></figure>"
                       % (esc(name), esc(name), base64.b64encode(png).decode("ascii"), esc(caption)))
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _inline_code(text):
    """`x` -> <code>x</code> in already escaped text."""
    parts = text.split("`")
    if len(parts) % 2 == 0:
        return text
    return "".join(p if i % 2 == 0 else "<code>%s</code>" % p for i, p in enumerate(parts))


# ---------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------

def _experiment_order(records):
    names = list(dict.fromkeys(r["experiment"] for r in records))
    known = [pair[0] for pair in EXPERIMENTS if pair[0] in names]
    return known + sorted(e for e in names if e not in known)


def _values(records, key):
    values = list(dict.fromkeys(r.get(key) for r in records))
    numbers = sorted(v for v in values if res._is_number(v))
    others = sorted(str(v) for v in values if v is not None and not res._is_number(v))
    return numbers + others + (["-"] if None in values else [])


def what_ran(records):
    rows = []
    for experiment in _experiment_order(records):
        recs = [r for r in records if r["experiment"] == experiment]
        counts = dict((s, sum(1 for r in recs if r["status"] == s)) for s in res.STATUSES)
        reps = sorted(set(r.get("repetition") for r in recs if r.get("repetition") is not None))
        locations = fg._order([r["location"] for r in recs], fg.LOCATION_ORDER)
        rows.append([
            experiment,
            ", ".join(str(v) for v in _values(recs, "program")),
            ", ".join(str(v) for v in _values(recs, "n")),
            ", ".join(locations),
            ", ".join(str(v) for v in _values(recs, "size")),
            ", ".join(format_key("rate", v) if v != "-" else "-" for v in _values(recs, "rate")),
            str(len(reps)) if reps else "-",
            "%d / %d / %d" % (counts["ok"], counts["unsupported"], counts["failed"]),
        ])
    return Table(["experiment", "programs", "N", "locations", "sizes [B]", "rates", "repetitions",
                  "records ok / unsupported / failed"], rows, numeric=(6,))


def machines_table(records):
    hosts = res.machines(records)
    keys = []
    for host in hosts:
        for key in host:
            if key not in keys and any(h.get(key) for h in hosts):
                keys.append(key)
    order = [k for k in res.PROVENANCE_ORDER if k in keys] + [k for k in keys if k not in res.PROVENANCE_ORDER]
    order = ["hostname"] + [k for k in order if k != "hostname"]
    rows = [[host.get(k) or "-" for k in order] for host in hosts]
    return Table([res.PROVENANCE_LABELS.get(k, k) for k in order], rows)


def _key_columns(rows):
    columns = ["program", "n", "location", "size", "rate"]
    return [k for k in columns if k == "location" or any(r.get(k) is not None for r in rows)]


def results_table(rows, experiment, quantities):
    rows = [r for r in rows if r["experiment"] == experiment]
    wanted = EXPERIMENT_QUANTITIES.get(experiment, res.TABLE_QUANTITIES)
    shown = [q for q in wanted if q in quantities and any(res._num(r.get(q + "_median")) is not None for r in rows)]
    keys = _key_columns(rows)
    order = dict((loc, i) for i, loc in enumerate(fg.LOCATION_ORDER))
    rows = sorted(rows, key=lambda r: (str(r.get("program")), r.get("n") if r.get("n") is not None else -1,
                                       r.get("size") or 0, r.get("rate") or 0,
                                       order.get(r["location"], 99), r["location"]))
    body, classes = [], []
    for row in rows:
        line = [format_key(k, row.get(k)) for k in keys]
        status = row["status"]
        line.append(status if status == "ok" else "%s: %s" % (status, row.get("reason") or "no reason"))
        line.append("%s/%s" % (row["repetitions"], row["repetitions_total"]))
        line += [format_stat(row, q) for q in shown]
        body.append(line)
        classes.append(None if status == "ok" else status)
    headers = [KEY_HEADINGS[k] for k in keys] + ["status", "ok reps"] + [quantity_heading(q) for q in shown]
    numeric = [len(keys) + 1] + list(range(len(keys) + 2, len(headers)))
    return Table(headers, body, numeric=numeric, row_classes=classes)


def not_ok_table(records):
    rows, classes = [], []
    for status in ("failed", "unsupported"):
        for cell in res.cell_list(records, status):
            rows.append([cell["cell_id"], cell["experiment"], cell["location"], status, cell["reason"]])
            classes.append(status)
    return Table(["cell", "experiment", "location", "status", "reason"], rows, row_classes=classes)


def comparison_blocks(rows, ref_rows, quantities, ref_quantities, ref_id, group_by=res.GROUP_KEYS):
    compared, common = res.compare(rows, ref_rows, quantities, ref_quantities, group_by)
    blocks = [("h2", "Comparison with run %s" % ref_id),
              ("p", "Ratio = median of this run / median of run %s, per cell group. \"beyond spread\": the two "
                    "95 %% intervals of the mean do not overlap; \"spread unknown\": a side has fewer than two ok "
                    "repetitions. The full comparison of every quantity is in `compare-%s.csv`."
                    % (ref_id, ref_id))]
    table_rows, classes = [], []
    only = []
    for row in compared:
        label = res.format_keys(row, group_by)
        if "absent" in (row["status"], row["status_ref"]):
            only.append("%s: only in %s" % (label, "this run" if row["status_ref"] == "absent" else
                                            "run %s" % ref_id))
            continue
        wanted = EXPERIMENT_QUANTITIES.get(row["experiment"], res.TABLE_QUANTITIES)
        for quantity in (q for q in wanted if q in common):
            median, median_ref = row.get(quantity + "_median"), row.get(quantity + "_median_ref")
            if median is None and median_ref is None:
                continue
            factor = QUANTITY_UNITS.get(quantity, (quantity, 1.0))[1]
            ratio = row.get(quantity + "_ratio")
            word = res.verdict(ratio, row.get(quantity + "_exceeds_spread"))
            table_rows.append([label, quantity_heading(quantity),
                               sig(None if median is None else median * factor),
                               sig(None if median_ref is None else median_ref * factor),
                               "-" if ratio is None else "%.3f" % ratio, word])
            classes.append("failed" if "beyond" in word else None)
    blocks.append(("table", Table(["cell group", "quantity", "this run", "run %s" % ref_id, "ratio", "verdict"],
                                  table_rows, numeric=(2, 3, 4), row_classes=classes)))
    if only:
        blocks.append(("list", only))
    flagged = sum(1 for r in table_rows if "beyond" in r[5])
    return blocks, {"groups": len(compared), "only": len(only), "beyond_spread": flagged,
                    "quantities": len(table_rows)}


def verdict_text(finding):
    """``reproduced (firm)``, ``not reproduced (tentative)``, ``not measurable here``."""
    if finding["strength"]:
        return "%s (%s)" % (finding["verdict"], finding["strength"])
    return finding["verdict"]


def findings_blocks(findings):
    """The ``Findings`` section: a verdict table, then per finding its statement, numbers and test."""
    blocks = [("h2", "Findings"),
              ("p", "Each conclusion of the paper's slides, judged on this run's numbers: `reproduced`, "
                    "`not reproduced` or `not measurable here` (with the reason). A verdict is firm when every "
                    "comparison that decided it had at least two ok repetitions per side (interquartile ranges "
                    "compared), tentative when a side had a single repetition (single values compared)."),
              ("table", Table(["#", "finding", "slide", "verdict"],
                              [[str(i), f["statement"].split(": ", 1)[0], f["slide"], verdict_text(f)]
                               for i, f in enumerate(findings, 1)],
                              numeric=(0,), row_classes=[f["verdict"].replace(" ", "-") for f in findings]))]
    for i, finding in enumerate(findings, 1):
        blocks.append(("h3", "%d. %s" % (i, finding["statement"].split(": ", 1)[0])))
        blocks.append(("p", finding["statement"]))
        verdict = "Verdict: %s" % verdict_text(finding)
        if finding["reason"]:
            verdict += ". Why: %s" % finding["reason"]
        blocks.append(("p", verdict + "."))
        if finding["numbers"]:
            blocks.append(("list", finding["numbers"]))
        if finding["not_judged"] and finding["verdict"] != fd.NOT_MEASURABLE:
            blocks.append(("note", "Not judged (left out of the verdict): %s." % "; ".join(finding["not_judged"])))
        blocks.append(("note", "Test: %s" % finding["test"]))
    return blocks


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------

def missing_libraries():
    """``(name, import error)`` of each library :func:`build_report` needs that is missing (pandas, matplotlib)."""
    missing = res.missing_libraries()
    if not fg.HAS_MATPLOTLIB:
        missing.append(("matplotlib", fg.MATPLOTLIB_IMPORT_ERROR))
    return missing


def build_report(path, compare_to=None, formats=fg.FORMATS, write=True, group_by=res.GROUP_KEYS):
    """Draw the figures and write ``report.md`` and ``report.html`` for the run in ``path``.

    ``compare_to`` is the directory of a reference run (adds the comparison
    section). Writes nothing when ``write`` is false (check mode). Returns a
    dict with ``changed``, ``files`` (relative paths that were - or would be -
    written), ``removed`` (stale figure files), ``report_md``/``report_html``
    (absolute paths), ``figures`` (name, panels with series labels, notes),
    ``markdown`` (the new Markdown text), ``before_markdown``, ``records``,
    ``groups``, ``unsupported_cells``/``failed_cells``, ``skipped``,
    ``comparison`` (counts, or None), ``findings`` (id, verdict, strength and
    reason of each of the paper's findings) and ``warnings``.
    """
    for fmt in formats:
        if fmt not in fg.FORMATS:
            raise ReportError("unknown figure format %s; use %s" % (fmt, " or ".join(fg.FORMATS)))
    if not fg.HAS_MATPLOTLIB:
        raise ReportError("matplotlib is not importable: %s" % fg.MATPLOTLIB_IMPORT_ERROR)
    run = res.load_run(path, group_by)
    records, rows, quantities, group_by = run["records"], run["rows"], run["quantities"], run["group_by"]
    run_id = run["run_id"]
    provenance = res.provenance_line(records, run_id)
    specs = dict((s["name"], s) for s in fg.build_figures(rows, records))
    files = {}
    pngs = {}
    captions = {}
    for name, spec in specs.items():
        captions[name] = fg.caption_text(spec, provenance)
        for fmt in set(formats) | {"png"}:
            data = fg.render(spec, captions[name], fmt)
            if fmt == "png":
                pngs[name] = data
            if fmt in formats:
                files[os.path.join(FIGURES_DIR, "%s.%s" % (name, fmt))] = data

    start, end = res.run_span(records)
    counts = dict((s, sum(1 for r in records if r["status"] == s)) for s in res.STATUSES)
    title = "Run %s" % run_id
    blocks = [("h1", "xdplab.offload report: run %s" % run_id)]
    intro = ("%d records in %d cell groups: %d ok, %d unsupported, %d failed."
             % (len(records), len(rows), counts["ok"], counts["unsupported"], counts["failed"]))
    if start:
        intro += " Measured from %s to %s (UTC)." % (start[:19].replace("T", " "), (end or "?")[:19].replace("T", " "))
    if run["skipped"]:
        intro += " %d record files could not be read (listed below)." % len(run["skipped"])
    blocks.append(("p", intro))
    blocks.append(("note", "Tables: median over the ok repetitions of a cell group, with the 95 % Student-t "
                           "interval of the mean in brackets (none with a single repetition). Quartiles, means, "
                           "minima and maxima of every quantity are in `summary.csv`."))
    blocks += [("h2", "What ran"), ("table", what_ran(records)),
               ("h2", "Machines"), ("table", machines_table(records))]
    programs = res._distinct(((r.get("provenance") or {}).get("program_hash") and "%s=%s" % (
        r["program"], (r.get("provenance") or {}).get("program_hash"))) for r in records)
    if programs:
        blocks.append(("note", "Program hashes: " + ", ".join(sorted(programs)) + "."))
    findings = fd.judge_all(rows)
    blocks += findings_blocks(findings)

    headings = dict(EXPERIMENTS)
    for experiment in _experiment_order(records):
        blocks.append(("h2", "%s (`%s`)" % (headings.get(experiment, experiment), experiment)))
        name = EXPERIMENT_FIGURES.get(experiment)
        if name in specs:
            blocks.append(("figure", name, pngs[name], captions[name]))
        elif experiment not in EXPERIMENT_FIGURES:
            blocks.append(("note", "No figure is defined for this experiment; its numbers are in the table."))
        else:
            blocks.append(("note", "No figure: the experiment has no group with data to draw."))
        blocks.append(("table", results_table(rows, experiment, quantities)))

    bad = not_ok_table(records)
    blocks.append(("h2", "Unsupported and failed cells"))
    if bad.rows:
        blocks.append(("table", bad))
    else:
        blocks.append(("p", "None: every cell ran."))
    if run["skipped"]:
        blocks += [("h2", "Record files that could not be read"),
                   ("table", Table(["file", "reason"], [[s["file"], s["reason"]] for s in run["skipped"]]))]
    if run["warnings"]:
        blocks += [("h2", "Warnings"), ("list", run["warnings"])]

    comparison = None
    if compare_to:
        if not os.path.isdir(os.path.join(compare_to, "records")):
            raise ReportError("reference run %s has no records/ directory" % compare_to)
        ref = res.load_run(compare_to, group_by)
        cblocks, comparison = comparison_blocks(rows, ref["rows"], quantities, ref["quantities"],
                                                os.path.basename(os.path.normpath(compare_to)), group_by)
        comparison["ref_run_id"] = ref["run_id"]
        blocks += cblocks

    blocks.append(("h2", "Files"))
    listing = ["`records/`: %d record files" % (len(records) + len(run["skipped"])), "`summary.csv`"]
    listing += ["`%s`" % f for f in sorted(files)]
    blocks.append(("list", listing))

    markdown = to_markdown(blocks)
    files[REPORT_MD] = markdown.encode("utf-8")
    files[REPORT_HTML] = to_html(blocks, title).encode("utf-8")

    changed_files = []
    for rel in sorted(files):
        if res.read_bytes(os.path.join(path, rel)) != files[rel]:
            changed_files.append(rel)
    stale = []
    for name in FIGURE_NAMES:
        for fmt in fg.FORMATS:
            rel = os.path.join(FIGURES_DIR, "%s.%s" % (name, fmt))
            if rel not in files and os.path.exists(os.path.join(path, rel)):
                stale.append(rel)
    before = res.read_bytes(os.path.join(path, REPORT_MD))
    if write:
        if any(rel.startswith(FIGURES_DIR + os.sep) for rel in changed_files):
            os.makedirs(os.path.join(path, FIGURES_DIR), exist_ok=True)
        for rel in changed_files:
            res.write_atomic(os.path.join(path, rel), files[rel])
        for rel in stale:
            os.unlink(os.path.join(path, rel))

    return {
        "changed": bool(changed_files or stale),
        "files": changed_files,
        "removed": stale,
        "report_md": os.path.join(path, REPORT_MD),
        "report_html": os.path.join(path, REPORT_HTML),
        "figures": [{"name": s["name"], "title": s["title"],
                     "files": [os.path.join(path, FIGURES_DIR, "%s.%s" % (s["name"], f)) for f in formats],
                     "panels": [{"title": p.get("title"), "series": [x["label"] for x in p["series"]]}
                                for p in s["panels"]],
                     "not_drawn": s["notes"]} for s in specs.values()],
        "markdown": markdown,
        "before_markdown": before.decode("utf-8") if before is not None else None,
        "records": len(records),
        "groups": len(rows),
        "run_id": run_id,
        "unsupported_cells": res.cell_list(records, "unsupported"),
        "failed_cells": res.cell_list(records, "failed"),
        "skipped": run["skipped"],
        "comparison": comparison,
        "findings": [dict((k, f[k]) for k in ("id", "verdict", "strength", "reason")) for f in findings],
        "warnings": run["warnings"],
    }
