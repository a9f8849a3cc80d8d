# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Aggregate the experiment's per-cell JSON records into ``summary.csv``.

Pure Python + pandas, importable without Ansible (the ``results_summary``
module is a thin wrapper around :func:`summarize`).

Layout of a run directory::

    <run dir>/records/<cell_id>.json   one record per cell and repetition
    <run dir>/summary.csv              written here

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
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import math
import os
import tempfile

try:
    import pandas as pd
    HAS_PANDAS = True
    PANDAS_IMPORT_ERROR = None
except ImportError as _exc:  # pragma: no cover - exercised on hosts without pandas
    pd = None
    HAS_PANDAS = False
    PANDAS_IMPORT_ERROR = _exc

SUPPORTED_SCHEMAS = (1,)
GROUP_KEYS = ("experiment", "program", "n", "location", "size", "rate")
# Group keys that are numbers (or null); the others are strings.
NUMERIC_KEYS = ("n", "size", "rate", "duration_s", "repetition")
STATUSES = ("ok", "unsupported", "failed")
# Worse statuses win when a group mixes them.
STATUS_RANK = {"ok": 0, "unsupported": 1, "failed": 2}
# Numeric record fields that describe the cell instead of measuring it.
PARAMETER_FIELDS = frozenset(("schema", "n", "size", "rate", "repetition", "duration_s"))
# Descriptive string fields carried into the summary (distinct values joined by "|").
CARRIED_FIELDS = ("mode", "loader")
# Column order of the well-known quantities; others follow alphabetically.
QUANTITY_ORDER = ("sent_packets", "rate_pps", "processed_packets", "processed_pps",
                  "dropped_packets", "tx_packets", "passed_packets", "lost_packets",
                  "ns_per_run", "ns_per_packet")
STATISTICS = ("median", "q1", "q3", "mean", "ci95_low", "ci95_high", "min", "max")
# Quantities shown by default in the printed table (those present in a row).
TABLE_QUANTITIES = ("processed_pps", "rate_pps", "ns_per_run", "ns_per_packet",
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
    for _ in range(200):
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


def validate_record(record):
    """Return None when ``record`` is a usable record, else the reason it is not."""
    if not isinstance(record, dict):
        return "not a JSON object"
    if record.get("schema") not in SUPPORTED_SCHEMAS:
        return "unsupported schema %r (supported: %s)" % (
            record.get("schema"), ", ".join(str(s) for s in SUPPORTED_SCHEMAS))
    for key in ("cell_id", "experiment", "program", "location", "status"):
        if not isinstance(record.get(key), str) or not record.get(key):
            return "field %r missing or not a non-empty string" % key
    if record["status"] not in STATUSES:
        return "status %r is not one of %s" % (record["status"], ", ".join(STATUSES))
    for key in ("size", "rate"):
        if key not in record:
            return "field %r missing" % key
    for key in ("n", "size", "rate", "repetition"):
        value = record.get(key)
        if value is not None and not _is_number(value):
            return "field %r is %r, expected a number or null" % (key, value)
    return None


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
    columns = summary_columns(quantities, group_by)
    frame = pd.DataFrame(rows, columns=columns)
    for column in list(group_by) + ["repetitions", "repetitions_total"]:
        values = [v for v in frame[column].tolist() if v is not None and not _isnan(v)]
        if values and all(_is_number(v) and float(v).is_integer() for v in values):
            frame[column] = pd.array([None if (v is None or _isnan(v)) else int(v)
                                      for v in frame[column].tolist()], dtype="Int64")
    return frame


def _isnan(value):
    return isinstance(value, float) and math.isnan(value)


def render_csv(frame):
    """CSV text of the summary: empty cells for null/NaN, floats with 12 significant digits."""
    return frame.to_csv(index=False, lineterminator="\n", float_format=CSV_FLOAT_FORMAT, na_rep="")


def write_atomic(path, text):
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ResultsError("output directory %s does not exist" % directory)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_text(path):
    """Current content of ``path``, or None when it does not exist."""
    try:
        with open(path, "r", encoding="utf-8", newline="") as handle:
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


def format_table(compact, group_by=GROUP_KEYS):
    """One human-readable line per row of :func:`compact_rows`."""
    lines = []
    for item in compact:
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


def summarize(path, output=None, group_by=GROUP_KEYS, table_quantities=TABLE_QUANTITIES, write=True):
    """Aggregate ``<path>/records`` into ``output`` (default ``<path>/summary.csv``).

    The file is replaced (atomically) only when its content changes, and never
    when ``write`` is false (check mode). Returns a dict with ``changed``,
    ``output``, ``before``/``after`` (CSV text), ``rows`` (compact), ``table``
    (printable lines), ``groups``, ``records``, ``quantities``, ``skipped``,
    ``failed_cells``, ``unsupported_cells``, ``run_ids`` and ``warnings``.
    """
    if not HAS_PANDAS:
        raise ResultsError("pandas is not importable: %s" % PANDAS_IMPORT_ERROR)
    group_by = tuple(group_by)
    output = output or os.path.join(path, "summary.csv")
    records, skipped = load_records(os.path.join(path, "records"))
    rows, quantities, warnings = aggregate(records, group_by)
    if not records:
        warnings.append("no valid record in %s" % os.path.join(path, "records"))
    run_ids = sorted(set(str(r.get("run_id")) for r in records if r.get("run_id") is not None))
    if len(run_ids) > 1:
        warnings.append("records of several runs are mixed in %s: %s" % (path, ", ".join(run_ids)))
    after = render_csv(summary_frame(rows, quantities, group_by))
    before = read_text(output)
    changed = before != after
    if changed and write:
        write_atomic(output, after)
    compact = compact_rows(rows, quantities, group_by, table_quantities)
    return {
        "changed": changed,
        "output": output,
        "before": before,
        "after": after,
        "rows": compact,
        "table": format_table(compact, group_by),
        "groups": len(rows),
        "records": len(records),
        "quantities": quantities,
        "skipped": skipped,
        "failed_cells": cell_list(records, "failed"),
        "unsupported_cells": cell_list(records, "unsupported"),
        "run_ids": run_ids,
        "warnings": warnings,
    }
