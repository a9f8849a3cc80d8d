# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Aggregate the experiment's per-cell JSON records into ``summary.csv``, compare runs.

Pure Python + pandas, importable without Ansible (the ``results_summary`` and
``results_compare`` modules are thin wrappers around :func:`summarize` and
:func:`compare_runs`; figures and the report page are in ``figures.py`` and
``report.py``).

Layout of a run directory::

    <run dir>/records/<cell_id>.json   one record per cell and repetition
    <run dir>/summary.csv              written by summarize()
    <run dir>/compare-<ref>.csv        written by compare_runs()
    <run dir>/figures/*.png|*.svg      written by report.build_report()
    <run dir>/report.md, report.html   written by report.build_report()

Record format (schema 1)
========================

One JSON object per cell and repetition, written by the ``experiment`` role.
Only the first block is required; everything else is optional, and a field
that a record does not have is simply absent from its statistics.

Required::

    schema        1
    run_id        str     the run's id (the directory name under results/)
    cell_id       str     stable id from the matrix lookup, unique in the run
    experiment    str     drop | complexity | dns_latency | vm_drop | vm_cpu_share
                          | neighbour (others are aggregated and tabled, not drawn)
    program       str     drop | loop | checksum | dns_nxdomain | ...
    n             int|null compile-time iterations (loop, checksum), else null
    location      str     offload | driver | generic | afxdp | afxdp_generic |
                          vm_afxdp | vm_driver | host_driver | nic, and for the
                          neighbour experiment ``baseline`` (see below)
    size          int     frame size in bytes
    rate          number  offered packet rate in packets/s; 0 = as fast as possible
    status        str     ok | unsupported | failed
    reason        str|null why the cell is not ok (required in spirit when not ok)

Cell description (not aggregated): ``repetition`` (1-based), ``duration_s``,
``mode`` (the XDP mode actually used, e.g. generic where a vNIC has no native
XDP), ``loader``, ``started_at``/``finished_at`` (ISO 8601, UTC), ``wall_s``,
``interfaces`` (dict), ``teardown_error``.

Measured quantities: every top-level number that is not a cell parameter is
aggregated. The names used by the figures and tables (units in the name where
not obvious):

* throughput: ``sent_packets``, ``rate_pps`` (achieved offered rate),
  ``processed_packets``, ``processed_pps`` (packets/s the program saw),
  ``dropped_packets``, ``tx_packets``, ``lost_packets``;
* zero-loss throughput (``measure: zero_loss``, RFC 2544 26.1): ``zero_loss_pps``
  (the highest offered rate whose trial lost at most the tolerance), with
  ``processed_pps`` from its overload trial beside it, and the search's
  bounds ``zero_loss_low_pps``/``zero_loss_high_pps``; its trials
  (``zero_loss_trials``, a list) are kept in the record, not aggregated;
* cost: ``ns_per_run`` (BPF_PROG_TEST_RUN, the program alone),
  ``ns_per_packet`` (at the location; when absent the figures derive it as
  1e9 / processed_pps and say so);
* latency (``dns_latency``, ``neighbour``): ``rtt_us_p50``, ``rtt_us_p90``,
  ``rtt_us_p99``, ``rtt_us_p999``, ``rtt_us_mean`` in microseconds, ``loss``
  as a **fraction** 0..1 of the queries sent that got no valid reply;
* CPU (``vm_cpu_share`` and any cell that samples it): ``cpu_host_share`` and
  ``cpu_vm_share`` in **percent of one CPU** (two busy CPUs = 200), host share
  = everything outside the guests (softirq, vhost/OVS, QEMU I/O threads),
  VM share = the guests' vCPU time; the figure stacks them.

Latency distributions (for the neighbour CDF; optional, any experiment may
carry them, they are not numbers and are therefore not in summary.csv):

* ``rtt_us_samples``: list of RTTs in microseconds, in any order; may be a
  uniform random subsample (keep it below ~100 000 values per record);
* ``rtt_us_hist``: ``{"edges": [e0, e1, ..., ek], "counts": [c0, ..., c(k-1)]}``
  with ascending bin edges in microseconds and ``ci`` the number of RTTs in
  ``[e(i), e(i+1))``; RTTs beyond the last edge go into the last bin.

Per group the CDF pools the ok repetitions (samples, else histograms, else
the percentile fields as points). A neighbour cell with ``location:
baseline`` ran no workload and is the no-load baseline drawn in every panel of
its experiment (its ``program`` and ``n`` are free, e.g. ``none`` and null).

Provenance (dict ``provenance``, shown in captions and the report): ``lab``
(emulated | testbed), ``hostname``, ``kernel``, ``cpu_model``, ``nic_driver``,
``nic_firmware``, ``hypervisor`` (e.g. ``xen 4.9.2``, ``qemu-tcg 7.2``),
``guest_kernel``, ``vnic_model``, ``program_hash``, ``prog_tag``,
``collection_version``; other keys are listed as they are.

Aggregation
===========

Grouping: records are grouped by the cell-group keys ``experiment, program,
n, location, size, rate`` (:data:`GROUP_KEYS`; ``None`` is a value of its own,
so ``n: null`` groups fine). Each group is one row of the summary.

Statistics, over the repetitions whose ``status`` is ``ok`` only, for every
top-level numeric field of the records that is not a cell parameter
(:data:`PARAMETER_FIELDS`) - so fields added later (``rtt_us_p50``,
``cpu_host_share``, ...) are aggregated without code changes:

* ``<q>_median``, ``<q>_q1``, ``<q>_q3``: the median and the quartiles, with
  linear interpolation between order statistics (numpy/pandas default,
  Hyndman & Fan type 7);
* ``<q>_mean`` and ``<q>_ci95_low``/``<q>_ci95_high``: the two-sided 95 %
  Student-t confidence interval **of the mean**, ``mean +- t(0.975, k-1) *
  s / sqrt(k)`` with ``s`` the sample standard deviation of the ``k``
  repetitions. With one repetition the interval is undefined and left empty
  (NaN), never a zero-width interval. The interval is not clipped (a count's
  lower bound can come out negative with few, spread repetitions: that is the
  honest statement of the uncertainty). A t-interval was chosen over the
  distribution-free order-statistic interval of the median because the
  latter needs at least 6 repetitions to reach 95 % coverage at all;
* ``<q>_min``, ``<q>_max``.

A quantity with no numeric value in any ok repetition of a group has empty
cells in that row; a quantity that is never numeric in the whole run gets no
columns at all.

Comparison of two runs
======================

:func:`compare_runs` matches the groups of a run with those of a reference run
by the group keys and, per quantity measured in both, gives the ratio of the
medians ``this / reference`` and whether the difference exceeds the spread:
``exceeds_spread`` is true when the two 95 % intervals of the mean do not
overlap, false when they do, and empty when either side has fewer than two ok
repetitions (no interval, so no statement). Non-overlapping 95 % intervals is a
conservative criterion (it flags differences at roughly the 0.5 % level), so a
flag is worth a look and an unflagged ratio of 0.9 with wide intervals is not
a regression. The ratio of two zero medians is 1; a zero reference median with
a non-zero one gives no ratio.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import math
import os

from ansible_collections.xdplab.offload.plugins.module_utils import record
from ansible_collections.xdplab.offload.plugins.module_utils.atomic import write_atomic  # noqa: F401 (results API)

try:
    import pandas as pd
    HAS_PANDAS = True
    PANDAS_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - exercised on hosts without pandas
    pd = None
    HAS_PANDAS = False
    PANDAS_IMPORT_ERROR = _exc

SUPPORTED_SCHEMAS = record.SUPPORTED_SCHEMAS
GROUP_KEYS = ("experiment", "program", "n", "location", "size", "rate")
# Traffic distribution (flows, RX queues): group keys of a run only when some record of it has them.
DISTRIBUTION_KEYS = ("flows", "queues")
# Group keys that are numbers (or null); the others are strings.
NUMERIC_KEYS = ("n", "size", "rate", "duration_s", "repetition") + DISTRIBUTION_KEYS
STATUSES = record.STATUSES
# Worse statuses win when a group mixes them.
STATUS_RANK = {"ok": 0, "unsupported": 1, "failed": 2}
# Numeric record fields that describe the cell instead of measuring it.
PARAMETER_FIELDS = record.PARAMETER_FIELDS
# Descriptive string fields carried into the summary (distinct values joined by "|").
CARRIED_FIELDS = ("mode", "loader")
# Column order of the well-known quantities; others follow alphabetically.
QUANTITY_ORDER = ("sent_packets", "rate_pps", "processed_packets", "processed_pps",
                  "zero_loss_pps", "zero_loss_low_pps", "zero_loss_high_pps",
                  "dropped_packets", "tx_packets", "passed_packets", "lost_packets",
                  "ns_per_run", "ns_per_packet")
STATISTICS = ("median", "q1", "q3", "mean", "ci95_low", "ci95_high", "min", "max")
# Quantities shown by default in the printed table (those present in a row).
TABLE_QUANTITIES = ("processed_pps", "zero_loss_pps", "rate_pps", "ns_per_run", "ns_per_packet",
                    "rtt_us_p50", "rtt_us_p99", "cpu_host_share", "cpu_vm_share")
CSV_FLOAT_FORMAT = "%.12g"


class ResultsError(Exception):
    """A problem the caller can act on (missing directory, unwritable output)."""


# ---------------------------------------------------------------------------
# Student-t quantile without scipy
# ---------------------------------------------------------------------------

def _t_two_sided_coverage(t, df):
    """P(|T| <= t) for Student's t with integer ``df`` >= 1.

    Closed form for integer degrees of freedom (Abramowitz & Stegun 26.7.3/4),
    with theta = atan(t / sqrt(df)).
    """
    theta = math.atan(t / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 1:
        total, term = 0.0, 0.0
        if df > 1:
            term = math.cos(theta)
            total = term
            for k in range(1, (df - 3) // 2 + 1):
                term *= c2 * (2.0 * k) / (2.0 * k + 1.0)
                total += term
        return 2.0 / math.pi * (theta + s * total)
    term, total = 1.0, 1.0
    for k in range(1, (df - 2) // 2 + 1):
        term *= c2 * (2.0 * k - 1.0) / (2.0 * k)
        total += term
    return s * total


def t_quantile(p, df):
    """The ``p`` quantile (p > 0.5) of Student's t with integer ``df`` >= 1."""
    if df < 1 or int(df) != df:
        raise ValueError("degrees of freedom must be a positive integer, got %r" % (df,))
    if not 0.5 < p < 1.0:
        raise ValueError("p must be in (0.5, 1), got %r" % (p,))
    df = int(df)
    coverage = 2.0 * p - 1.0
    low, high = 0.0, 1.0
    while _t_two_sided_coverage(high, df) < coverage:
        high *= 2.0
    for dummy in range(200):
        mid = (low + high) / 2.0
        if _t_two_sided_coverage(mid, df) < coverage:
            low = mid
        else:
            high = mid
        if high - low <= 1e-13 * high:
            break
    return (low + high) / 2.0


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# The record's format and its checks live in record.py (one place); loading uses the same check.
validate_record = record.validate


def load_records(records_dir):
    """Load the ``*.json`` records of ``records_dir``.

    Returns ``(records, skipped)``: the valid records, sorted by file name, and
    a list of ``{"file": name, "reason": text}`` for ``*.json`` files that are
    not valid records (unreadable, not JSON, wrong schema, missing fields,
    duplicate cell id). Hidden files and files not ending in ``.json`` (such as
    the temporary files of an interrupted write-then-rename) are ignored.
    """
    if not os.path.isdir(records_dir):
        raise ResultsError("records directory %s does not exist" % records_dir)
    records, skipped, seen = [], [], {}
    for name in sorted(os.listdir(records_dir)):
        path = os.path.join(records_dir, name)
        if name.startswith(".") or not name.endswith(".json") or not os.path.isfile(path):
            continue
        try:
            with open(path, "r", encoding="utf-8") as handle:
                record = json.load(handle)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            skipped.append({"file": name, "reason": "not valid JSON: %s" % exc})
            continue
        reason = validate_record(record)
        if reason is None and record["cell_id"] in seen:
            reason = "duplicate cell_id %s (already in %s)" % (record["cell_id"], seen[record["cell_id"]])
        if reason is not None:
            skipped.append({"file": name, "reason": reason})
            continue
        seen[record["cell_id"]] = name
        record = dict(record)
        record["_file"] = name
        records.append(record)
    return records, skipped


# ---------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------

def measured_quantities(records, group_by=GROUP_KEYS):
    """Names of the top-level numeric measured fields of ``records``, in column order.

    Only ``ok`` records count (the others contribute no values): a field is a
    quantity when at least one of them has a number (not a bool) in it and
    none has a non-null value of another type in it.
    """
    numeric, other = set(), set()
    excluded = PARAMETER_FIELDS | set(group_by) | set(CARRIED_FIELDS)
    for record in records:
        if record.get("status") != "ok":
            continue
        for key, value in record.items():
            if key in excluded or key.startswith("_") or value is None:
                continue
            if _is_number(value):
                numeric.add(key)
            else:
                other.add(key)
    names = numeric - other
    ordered = [q for q in QUANTITY_ORDER if q in names]
    return ordered + sorted(names - set(ordered))


def _group_sort_key(key):
    """Sort key for a group tuple: None first, numbers numerically, strings as text."""
    out = []
    for value in key:
        if value is None:
            out.append((0, 0, ""))
        elif _is_number(value):
            out.append((1, value, ""))
        else:
            out.append((2, 0, str(value)))
    return tuple(out)


def _norm(value):
    """Canonical form of a group-key value: 64.0 and 64 are the same group."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def group_status(records):
    """(status, reason) of a group: ok if every repetition is ok, else the worst, reasons joined."""
    worst = max((r["status"] for r in records), key=lambda s: STATUS_RANK[s])
    if worst == "ok":
        return "ok", None
    reasons = []
    for record in records:
        if record["status"] == "ok":
            continue
        reason = record.get("reason") or "%s without a reason" % record["status"]
        if reason not in reasons:
            reasons.append(reason)
    return worst, "; ".join(reasons)


def describe(values):
    """Statistics (see module doc) of a list of numbers; NaN where undefined."""
    series = pd.Series([float(v) for v in values], dtype="float64").dropna()
    nan = float("nan")
    if series.empty:
        return dict((stat, nan) for stat in STATISTICS)
    count = len(series)
    mean = float(series.mean())
    low = high = nan
    if count >= 2:
        half = t_quantile(0.975, count - 1) * float(series.std(ddof=1)) / math.sqrt(count)
        low, high = mean - half, mean + half
    return {
        "median": float(series.median()),
        "q1": float(series.quantile(0.25, interpolation="linear")),
        "q3": float(series.quantile(0.75, interpolation="linear")),
        "mean": mean,
        "ci95_low": low,
        "ci95_high": high,
        "min": float(series.min()),
        "max": float(series.max()),
    }


def aggregate(records, group_by=GROUP_KEYS):
    """Group ``records`` and compute one summary row (a dict) per group.

    Returns ``(rows, quantities, warnings)``; rows are sorted by the group keys
    (stable; null before numbers).
    """
    group_by = tuple(group_by)
    quantities = measured_quantities(records, group_by)
    groups = {}
    for record in records:
        key = tuple(_norm(record.get(k)) for k in group_by)
        groups.setdefault(key, []).append(record)
    warnings = []
    rows = []
    for key in sorted(groups, key=_group_sort_key):
        members = groups[key]
        row = dict(zip(group_by, key))
        status, reason = group_status(members)
        ok = [r for r in members if r["status"] == "ok"]
        row.update(status=status, reason=reason, repetitions=len(ok), repetitions_total=len(members))
        for field in _carried(group_by):
            values = sorted(set(str(r[field]) for r in members if r.get(field) is not None))
            row[field] = "|".join(values) if values else None
        reps = [r.get("repetition") for r in members if r.get("repetition") is not None]
        dup = sorted(set(x for x in reps if reps.count(x) > 1))
        if dup:
            warnings.append("group %s has repetition %s more than once (cells %s): the records differ "
                            "in a parameter that is not a group key (%s)"
                            % (_label(row, group_by), ", ".join(str(d) for d in dup),
                               ", ".join(sorted(r["cell_id"] for r in members)), ", ".join(group_by)))
        for quantity in quantities:
            values = [r[quantity] for r in ok if _is_number(r.get(quantity))]
            for stat, value in describe(values).items():
                row["%s_%s" % (quantity, stat)] = value
        rows.append(row)
    return rows, quantities, warnings


def _carried(group_by):
    return tuple(f for f in CARRIED_FIELDS if f not in group_by)


def _label(row, group_by=GROUP_KEYS):
    return "/".join("%s=%s" % (k, "null" if row.get(k) is None else row.get(k)) for k in group_by)


def summary_columns(quantities, group_by=GROUP_KEYS):
    columns = list(group_by) + ["status", "reason", "repetitions", "repetitions_total"]
    columns += list(_carried(group_by))
    for quantity in quantities:
        columns += ["%s_%s" % (quantity, stat) for stat in STATISTICS]
    return columns


def summary_frame(rows, quantities, group_by=GROUP_KEYS):
    """The summary as a DataFrame with a fixed column order and integer columns as Int64."""
    frame = pd.DataFrame(rows, columns=summary_columns(quantities, group_by))
    return _whole_number_columns(frame, list(group_by) + ["repetitions", "repetitions_total"])


def _isnan(value):
    return isinstance(value, float) and math.isnan(value)


def _whole_number_columns(frame, columns):
    """Make each of ``columns`` whose values are all whole numbers (or null) Int64, so the CSV says 64, not 64.0."""
    for column in columns:
        values = [v for v in frame[column].tolist() if v is not None and not _isnan(v)]
        if values and all(_is_number(v) and float(v).is_integer() for v in values):
            frame[column] = pd.array([None if (v is None or _isnan(v)) else int(v)
                                      for v in frame[column].tolist()], dtype="Int64")
    return frame


def render_csv(frame):
    """CSV text of the summary: empty cells for null/NaN, floats with 12 significant digits."""
    return frame.to_csv(index=False, lineterminator="\n", float_format=CSV_FLOAT_FORMAT, na_rep="")


def update_file(path, text, write=True):
    """Replace ``path`` with ``text`` (atomically) when its content differs, and only if ``write``.

    ``write`` false is check mode. Returns the start of a result dict:
    ``changed`` (the content differs), ``output`` (``path``), ``before`` (the
    old content, None when the file does not exist) and ``after`` (``text``).
    """
    before = read_text(path)
    changed = before != text
    if changed and write:
        if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise ResultsError("output directory %s does not exist" % os.path.dirname(os.path.abspath(path)))
        write_atomic(path, text)
    return {"changed": changed, "output": path, "before": before, "after": text}


def read_text(path):
    """Current content of ``path``, or None when it does not exist."""
    try:
        with open(path, "r", encoding="utf-8", newline="") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def read_bytes(path):
    """Current content of ``path`` as bytes, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


# ---------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------

def _clean(value):
    """JSON-safe scalar: NaN -> None, integral floats stay floats."""
    if _isnan(value):
        return None
    return value


def compact_rows(rows, quantities, group_by=GROUP_KEYS, table_quantities=TABLE_QUANTITIES):
    """Short dict rows for printing: keys, status, repetitions, and median/CI of the headline quantities."""
    shown = [q for q in table_quantities if q in quantities]
    out = []
    for row in rows:
        item = dict((k, row.get(k)) for k in group_by)
        item.update(status=row["status"], repetitions=row["repetitions"],
                    repetitions_total=row["repetitions_total"])
        if row.get("reason"):
            item["reason"] = row["reason"]
        for quantity in shown:
            median = _clean(row.get(quantity + "_median"))
            if median is None:
                continue
            item[quantity] = median
            low, high = _clean(row.get(quantity + "_ci95_low")), _clean(row.get(quantity + "_ci95_high"))
            item[quantity + "_ci95"] = None if low is None else [low, high]
        out.append(item)
    return out


def _si(value):
    if value is None:
        return "-"
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return "%.3g%s" % (value / factor, suffix)
    return "%.3g" % value


def format_keys(item, group_by=GROUP_KEYS):
    """The group keys of ``item`` as short words (``drop drop n=- driver 64B rate=max``)."""
    parts = []
    for key in group_by:
        value = item.get(key)
        if key == "n":
            parts.append("n=%s" % ("-" if value is None else value))
        elif key == "size":
            parts.append("%sB" % ("-" if value is None else value))
        elif key == "rate":
            parts.append("rate=%s" % ("max" if value in (0, None) else _si(value)))
        else:
            parts.append("-" if value is None else str(value))
    return " ".join(parts)


def format_table(compact, group_by=GROUP_KEYS):
    """One human-readable line per row of :func:`compact_rows`."""
    lines = []
    for item in compact:
        parts = [format_keys(item, group_by)]
        parts.append("%s %s/%s" % (item["status"], item["repetitions"], item["repetitions_total"]))
        for key, value in item.items():
            if key in group_by or key in ("status", "repetitions", "repetitions_total", "reason") \
                    or key.endswith("_ci95"):
                continue
            text = "%s=%s" % (key, _si(value))
            ci = item.get(key + "_ci95")
            if ci:
                text += " [%s, %s]" % (_si(ci[0]), _si(ci[1]))
            parts.append(text)
        if item.get("reason"):
            parts.append("(%s)" % item["reason"])
        lines.append(" ".join(parts))
    return lines


def cell_list(records, status):
    """Cells with ``status``, each with its id, parameters and reason."""
    out = []
    for record in records:
        if record["status"] != status:
            continue
        out.append({
            "cell_id": record["cell_id"],
            "experiment": record["experiment"],
            "program": record["program"],
            "n": record.get("n"),
            "location": record["location"],
            "repetition": record.get("repetition"),
            "reason": record.get("reason") or "%s without a reason" % status,
        })
    return out


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------

def available_runs(results_dir):
    """Run ids under ``results_dir`` (sub-directories holding a ``records/`` directory)."""
    if not os.path.isdir(results_dir):
        return []
    return sorted(name for name in os.listdir(results_dir)
                  if os.path.isdir(os.path.join(results_dir, name, "records")))


def run_group_keys(records, group_by=GROUP_KEYS):
    """The default group keys, plus flows and queues when a record of the run has them (distribution)."""
    group_by = tuple(group_by)
    if group_by != GROUP_KEYS:
        return group_by
    return group_by + tuple(k for k in DISTRIBUTION_KEYS if any(r.get(k) is not None for r in records))


def load_run(path, group_by=GROUP_KEYS):
    """Load and aggregate ``<path>/records``.

    Returns a dict with ``records``, ``skipped``, ``rows`` (full summary rows),
    ``quantities``, ``warnings``, ``run_ids`` (the distinct run ids of the
    records), ``run_id`` (the records' run id, else the directory name),
    ``path`` and ``group_by`` (with flows and queues when the run has them).
    """
    if not HAS_PANDAS:
        raise ResultsError("pandas is not importable: %s" % PANDAS_IMPORT_ERROR)
    records, skipped = load_records(os.path.join(path, "records"))
    group_by = run_group_keys(records, group_by)
    rows, quantities, warnings = aggregate(records, group_by)
    run_ids = sorted(set(str(r.get("run_id")) for r in records if r.get("run_id") is not None))
    if len(run_ids) > 1:
        warnings.append("records of several runs are mixed in %s: %s" % (path, ", ".join(run_ids)))
    run_id = run_ids[0] if len(run_ids) == 1 else os.path.basename(os.path.normpath(path))
    return {"records": records, "skipped": skipped, "rows": rows, "quantities": quantities,
            "warnings": warnings, "run_ids": run_ids, "run_id": run_id, "path": path, "group_by": group_by}


def summarize(path, output=None, group_by=GROUP_KEYS, table_quantities=TABLE_QUANTITIES, write=True):
    """Aggregate ``<path>/records`` into ``output`` (default ``<path>/summary.csv``).

    The file is replaced (atomically) only when its content changes, and never
    when ``write`` is false (check mode). Returns a dict with ``changed``,
    ``output``, ``before``/``after`` (CSV text), ``rows`` (compact), ``table``
    (printable lines), ``groups``, ``records``, ``quantities``, ``skipped``,
    ``failed_cells``, ``unsupported_cells``, ``run_ids`` and ``warnings``.
    """
    group_by = tuple(group_by)
    output = output or os.path.join(path, "summary.csv")
    run = load_run(path, group_by)
    records, rows, quantities, warnings = run["records"], run["rows"], run["quantities"], run["warnings"]
    group_by = run["group_by"]
    if not records:
        warnings.append("no valid record in %s" % os.path.join(path, "records"))
    result = update_file(output, render_csv(summary_frame(rows, quantities, group_by)), write)
    compact = compact_rows(rows, quantities, group_by, table_quantities)
    result.update(
        rows=compact,
        table=format_table(compact, group_by),
        groups=len(rows),
        records=len(records),
        quantities=quantities,
        skipped=run["skipped"],
        failed_cells=cell_list(records, "failed"),
        unsupported_cells=cell_list(records, "unsupported"),
        run_ids=run["run_ids"],
        warnings=warnings,
    )
    return result


# ---------------------------------------------------------------------------
# Provenance
# ---------------------------------------------------------------------------

# Provenance keys shown per machine, in this order; others follow alphabetically.
PROVENANCE_ORDER = ("lab", "hostname", "kernel", "cpu_model", "nic_driver", "nic_firmware",
                    "hypervisor", "guest_kernel", "vnic_model", "collection_version")
# Per-program provenance: not a property of the machine.
PROVENANCE_PER_PROGRAM = ("program_hash", "prog_tag")
PROVENANCE_LABELS = {
    "lab": "lab", "hostname": "host", "kernel": "kernel", "cpu_model": "CPU",
    "nic_driver": "NIC driver", "nic_firmware": "NIC firmware", "hypervisor": "hypervisor",
    "guest_kernel": "guest kernel", "vnic_model": "vNIC", "collection_version": "xdplab.offload",
}


def _distinct(values):
    out = []
    for value in values:
        if value is None or value == "":
            continue
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        if text not in out:
            out.append(text)
    return out


def machines(records):
    """The machines the records were measured on, one dict per host.

    Keys of :data:`PROVENANCE_ORDER` first, then any other provenance key
    (per-program keys excluded); each value is the distinct values seen on that
    host joined by ``", "`` (so a kernel upgrade mid-run shows), None when absent.
    """
    hosts = {}
    for record in records:
        prov = record.get("provenance") if isinstance(record.get("provenance"), dict) else {}
        host = str(prov.get("hostname") or "(unknown host)")
        hosts.setdefault(host, []).append(prov)
    out = []
    for host in sorted(hosts):
        provs = hosts[host]
        keys = set()
        for prov in provs:
            keys.update(k for k in prov if k not in PROVENANCE_PER_PROGRAM)
        ordered = [k for k in PROVENANCE_ORDER if k in keys or k == "hostname"]
        ordered += sorted(keys - set(ordered))
        item = {}
        for key in ordered:
            values = _distinct(p.get(key) for p in provs)
            item[key] = ", ".join(values) if values else None
        item["hostname"] = host
        out.append(item)
    return out


def run_span(records):
    """(first started_at, last finished_at) of the records as ISO strings, None when unknown."""
    starts = sorted(str(r["started_at"]) for r in records if r.get("started_at"))
    ends = sorted(str(r["finished_at"]) for r in records if r.get("finished_at"))
    return (starts[0] if starts else None, ends[-1] if ends else None)


def provenance_line(records, run_id=None):
    """One line naming the run, its lab, machines and time span (for captions)."""
    parts = []
    run_ids = _distinct(r.get("run_id") for r in records)
    run_id = run_id or (", ".join(run_ids) if run_ids else None)
    if run_id:
        parts.append("run %s" % run_id)
    hosts = machines(records)
    labs = _distinct(h.get("lab") for h in hosts)
    if labs:
        parts.append("%s lab" % "/".join(labs))
    for host in hosts:
        bits = []
        if host.get("kernel"):
            bits.append("Linux %s" % host["kernel"])
        if host.get("cpu_model"):
            bits.append(host["cpu_model"])
        nic = " ".join(x for x in (host.get("nic_driver"), host.get("nic_firmware") and
                                   "fw %s" % host["nic_firmware"]) if x)
        if nic:
            bits.append("NIC %s" % nic)
        if host.get("hypervisor"):
            bits.append(host["hypervisor"])
        parts.append("%s: %s" % (host["hostname"], ", ".join(bits) if bits else "no provenance recorded"))
    versions = _distinct(h.get("collection_version") for h in hosts)
    if versions:
        parts.append("xdplab.offload %s" % ", ".join(versions))
    start, end = run_span(records)
    if start:
        parts.append("%s .. %s" % (start[:19].replace("T", " "), (end or "?")[:19].replace("T", " ")))
    return " | ".join(parts)


# ---------------------------------------------------------------------------
# Comparison of two runs
# ---------------------------------------------------------------------------

COMPARE_FIELDS = ("median", "median_ref", "ratio", "exceeds_spread")


def _num(value):
    """A finite float, or None."""
    if value is None or not _is_number(value):
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def median_ratio(value, ref):
    """``value / ref``; 1 when both are 0, None when undefined."""
    value, ref = _num(value), _num(ref)
    if value is None or ref is None:
        return None
    if ref == 0:
        return 1.0 if value == 0 else None
    return value / ref


def exceeds_spread(row, ref_row, quantity):
    """True when the two 95 % intervals of ``quantity`` do not overlap, False when they do, None when unknown."""
    low, high = _num(row.get(quantity + "_ci95_low")), _num(row.get(quantity + "_ci95_high"))
    rlow, rhigh = _num(ref_row.get(quantity + "_ci95_low")), _num(ref_row.get(quantity + "_ci95_high"))
    if None in (low, high, rlow, rhigh):
        return None
    return low > rhigh or high < rlow


def compare(rows, ref_rows, quantities, ref_quantities, group_by=GROUP_KEYS):
    """Match groups by key and compare the medians of the common quantities.

    Returns ``(rows, common_quantities)``; one row per group of either run,
    sorted by key, with ``status``/``status_ref`` (``absent`` for a group the
    other run does not have), ``repetitions``/``repetitions_ref`` and, per
    quantity, ``<q>_median``, ``<q>_median_ref``, ``<q>_ratio`` and
    ``<q>_exceeds_spread`` (see the module doc).
    """
    group_by = tuple(group_by)
    common = [q for q in quantities if q in set(ref_quantities)]
    here = dict((tuple(_norm(r.get(k)) for k in group_by), r) for r in rows)
    there = dict((tuple(_norm(r.get(k)) for k in group_by), r) for r in ref_rows)
    out = []
    for key in sorted(set(here) | set(there), key=_group_sort_key):
        row, ref = here.get(key, {}), there.get(key, {})
        item = dict(zip(group_by, key))
        item.update(status=row.get("status", "absent"), status_ref=ref.get("status", "absent"),
                    repetitions=row.get("repetitions", 0), repetitions_ref=ref.get("repetitions", 0))
        for quantity in common:
            median, median_ref = _num(row.get(quantity + "_median")), _num(ref.get(quantity + "_median"))
            item[quantity + "_median"] = median
            item[quantity + "_median_ref"] = median_ref
            item[quantity + "_ratio"] = median_ratio(median, median_ref)
            item[quantity + "_exceeds_spread"] = exceeds_spread(row, ref, quantity) \
                if (median is not None and median_ref is not None) else None
        out.append(item)
    return out, common


def compare_columns(quantities, group_by=GROUP_KEYS):
    columns = list(group_by) + ["status", "status_ref", "repetitions", "repetitions_ref"]
    for quantity in quantities:
        columns += ["%s_%s" % (quantity, field) for field in COMPARE_FIELDS]
    return columns


def render_compare_csv(rows, quantities, group_by=GROUP_KEYS):
    """CSV text of a comparison: booleans as true/false, unknown as an empty cell."""
    columns = compare_columns(quantities, group_by)
    table = []
    for row in rows:
        item = {}
        for column in columns:
            value = row.get(column)
            if isinstance(value, bool):
                value = "true" if value else "false"
            item[column] = value
        table.append(item)
    frame = pd.DataFrame(table, columns=columns)
    return render_csv(_whole_number_columns(frame, list(group_by) + ["repetitions", "repetitions_ref"]))


def verdict(ratio, flag):
    """Human word for a compared quantity."""
    if ratio is None:
        return "no ratio"
    if flag is None:
        return "spread unknown"
    if not flag:
        return "within spread"
    return "higher, beyond spread" if ratio > 1 else "lower, beyond spread"


def compare_lines(rows, quantities, group_by=GROUP_KEYS):
    """One readable line per compared group."""
    lines = []
    for row in rows:
        label = format_keys(row, group_by)
        if "absent" in (row["status"], row["status_ref"]):
            lines.append("%s: only in %s" % (label, "this run" if row["status_ref"] == "absent" else "the reference"))
            continue
        parts = []
        for quantity in quantities:
            ratio = row.get(quantity + "_ratio")
            if row.get(quantity + "_median") is None and row.get(quantity + "_median_ref") is None:
                continue
            parts.append("%s x%s (%s vs %s, %s)" % (
                quantity, "-" if ratio is None else "%.3f" % ratio, _si(row.get(quantity + "_median")),
                _si(row.get(quantity + "_median_ref")), verdict(ratio, row.get(quantity + "_exceeds_spread"))))
        status = "" if row["status"] == row["status_ref"] == "ok" else \
            " [%s vs %s]" % (row["status"], row["status_ref"])
        lines.append("%s%s: %s" % (label, status, "; ".join(parts) if parts else "nothing to compare"))
    return lines


def compare_runs(path, ref_path, output=None, group_by=GROUP_KEYS, table_quantities=TABLE_QUANTITIES,
                 write=True):
    """Compare run ``path`` with the reference run ``ref_path``; write ``compare-<ref>.csv`` in ``path``.

    Written like :func:`summarize` (atomically, only on change, not when
    ``write`` is false). Returns ``changed``, ``output``, ``before``/``after``,
    ``rows`` (compact: keys, statuses and the headline quantities), ``table``
    (one line per group), ``quantities`` (compared), ``matched``,
    ``only_here``, ``only_ref``, ``beyond_spread`` (lines of flagged
    quantities), ``run_id``, ``ref_run_id`` and ``warnings``.
    """
    group_by = tuple(group_by)
    this = load_run(path, group_by)
    ref = load_run(ref_path, group_by)
    rows, common = compare(this["rows"], ref["rows"], this["quantities"], ref["quantities"], group_by)
    output = output or os.path.join(path, "compare-%s.csv" % os.path.basename(os.path.normpath(ref_path)))
    result = update_file(output, render_compare_csv(rows, common, group_by), write)
    shown = [q for q in table_quantities if q in common]
    compact = []
    beyond = []
    for row in rows:
        item = dict((k, row[k]) for k in group_by + ("status", "status_ref", "repetitions", "repetitions_ref"))
        for quantity in shown:
            if row.get(quantity + "_median") is None and row.get(quantity + "_median_ref") is None:
                continue
            item[quantity] = row[quantity + "_median"]
            item[quantity + "_ref"] = row[quantity + "_median_ref"]
            item[quantity + "_ratio"] = row[quantity + "_ratio"]
            item[quantity + "_exceeds_spread"] = row[quantity + "_exceeds_spread"]
        compact.append(item)
        for quantity in common:
            if row.get(quantity + "_exceeds_spread"):
                beyond.append("%s: %s x%.3f" % (_label(row, group_by), quantity, row[quantity + "_ratio"])
                              if row.get(quantity + "_ratio") is not None else
                              "%s: %s" % (_label(row, group_by), quantity))
    result.update(
        rows=compact,
        full_rows=rows,
        table=compare_lines(rows, shown, group_by),
        quantities=common,
        matched=sum(1 for r in rows if "absent" not in (r["status"], r["status_ref"])),
        only_here=sum(1 for r in rows if r["status_ref"] == "absent"),
        only_ref=sum(1 for r in rows if r["status"] == "absent"),
        beyond_spread=beyond,
        run_id=this["run_id"],
        ref_run_id=ref["run_id"],
        warnings=this["warnings"] + ["reference: %s" % w for w in ref["warnings"]],
    )
    return result


# ---------------------------------------------------------------------------
# What the results modules share (results_summary, results_compare, results_report)
# ---------------------------------------------------------------------------

# Appended by the results modules to missing_required_lib()'s message.
CONTROLLER_PYTHON_HINT = (" Run this module with the controller's Python "
                          "(ansible_python_interpreter: '{{ ansible_playbook_python }}').")


def missing_libraries():
    """``(name, import error)`` of each library :func:`summarize` and :func:`compare_runs` need that is missing."""
    return [] if HAS_PANDAS else [("pandas", PANDAS_IMPORT_ERROR)]


def parameter_problem(group_by, runs):
    """What is wrong with a results module's parameters, as ``fail_json`` arguments; None when nothing is.

    ``runs`` holds ``(label, run directory)`` pairs, checked in order (a None
    directory is an option not given). A directory without ``records/`` is
    named with the run ids available beside it, so a mistyped run id is
    easy to correct.
    """
    if not group_by:
        return {"msg": "group_by is empty; give at least one record field to group by."}
    for label, run in runs:
        if run is None or os.path.isdir(os.path.join(run, "records")):
            continue
        parent = os.path.dirname(os.path.normpath(run))
        available = available_runs(parent)
        return {"msg": "%s directory %s has no records/ directory; available runs in %s: %s."
                       % (label, run, parent, ", ".join(available) if available else "none"),
                "path": run, "available_run_ids": available}
    return None


def module_return(result, diff, before="before", after="after", header="output", drop=()):
    """Split the result of :func:`summarize`, :func:`compare_runs` or ``report.build_report`` for ``exit_json``.

    Returns ``(warnings, values)``: the result's warnings (for ``module.warn``)
    and its other keys without the old and new text (keys ``before`` and
    ``after``) and the keys in ``drop``, with ``skipped`` renamed
    ``skipped_files`` (Ansible takes a task that returns ``skipped`` for a
    skipped task) and, when ``diff`` is true, a ``diff`` of the two texts
    headed by the path in ``result[header]`` (``(absent)`` before a file existed).
    """
    values = dict(result)
    warnings = values.pop("warnings")
    old, new = values.pop(before), values.pop(after)
    for key in drop:
        values.pop(key)
    if "skipped" in values:
        values["skipped_files"] = values.pop("skipped")
    if diff:
        values["diff"] = {"before": old or "", "after": new,
                          "before_header": values[header] if old is not None else "(absent)",
                          "after_header": values[header]}
    return warnings, values
