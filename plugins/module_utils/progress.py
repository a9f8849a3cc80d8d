# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress of a long measurement loop: ``cell k of n, elapsed, remaining``.

Pure functions (the ``xdplab.offload.progress`` filter wraps
:func:`progress_line`). The estimate of the remaining time adds the planned
measuring time of the cells still to run (their ``duration``) to a per-cell
overhead learnt from the cells measured so far (deploy, counters, teardown:
elapsed time minus their planned measuring time). Cells skipped because they
were already recorded (resume) cost next to nothing; pass how many were
skipped so that they do not make the overhead look small.

The same file formats what the ``xdplab.offload.lab`` stdout callback prints:
one line per finished cell (:func:`cell_line`, from the ``xdplab_cell`` result
of the task that writes a cell's record) and the live rate line of a running
load generator (:func:`rate_line`, from one line of its progress file).
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re
import time

from ansible_collections.xdplab.offload.plugins.module_utils.record import number as record_number


class ProgressError(Exception):
    pass


def _number(value, name):
    if isinstance(value, bool):
        raise ProgressError("%s must be a number, got %r" % (name, value))
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ProgressError("%s must be a number, got %r" % (name, value))


def clock(seconds):
    """``h:mm:ss`` for a number of seconds (rounded, never negative)."""
    seconds = int(round(max(0.0, seconds)))
    return "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


def estimate(cells, index, started=None, now=None, skipped=0, overhead_s=None):
    """Progress numbers for cell ``index`` (1-based) of ``cells`` (a list of cells or a count).

    Returns a dict: ``index``, ``total``, ``cell_id`` (None for a count),
    ``elapsed_s`` (None without ``started``), ``remaining_s`` (None when it
    cannot be estimated yet) and ``lower_bound`` (true when the remaining time
    leaves out an overhead not yet learnt).
    """
    if isinstance(cells, (list, tuple)):
        total = len(cells)
        durations = []
        for cell in cells:
            value = cell.get("duration", cell.get("duration_s")) if isinstance(cell, dict) else None
            durations.append(None if value is None else _number(value, "duration"))
        cell_id = cells[int(index) - 1].get("id") if 0 < int(index) <= total and \
            isinstance(cells[int(index) - 1], dict) else None
    else:
        total = int(_number(cells, "total"))
        durations = [None] * total
        cell_id = None
    index = int(_number(index, "index"))
    if not 1 <= index <= max(total, 1):
        raise ProgressError("index %d is outside 1..%d" % (index, total))
    elapsed = _elapsed(started, now)
    remaining, lower = remaining_s(durations, index - 1, skipped, elapsed, overhead_s)
    return {"index": index, "total": total, "cell_id": cell_id, "elapsed_s": elapsed,
            "remaining_s": remaining, "lower_bound": lower}


def _elapsed(started, now=None):
    if started in (None, ""):
        return None
    now = time.time() if now in (None, "") else _number(now, "now")
    return max(0.0, now - _number(started, "started"))


def remaining_s(durations, done, skipped=0, elapsed=None, overhead_s=None):
    """Estimated seconds left once ``done`` of the cells are finished, and whether it is a lower bound.

    ``durations`` holds each cell's planned measuring time (None where unknown);
    ``skipped`` of the ``done`` cells were kept from an earlier run and cost
    nothing, so only the others teach the per-cell time. Returns
    ``(remaining, lower_bound)``; ``remaining`` is None when nothing teaches it yet.
    """
    done = int(done)
    skipped = int(_number(skipped or 0, "skipped"))
    measured = max(0, done - skipped)
    left = len(durations) - done
    if all(d is not None for d in durations):
        planned_left = sum(durations[done:])
        planned_done = sum(durations[:done]) * (float(measured) / done) if done else 0.0
        if elapsed is not None and measured > 0:
            return planned_left + max(0.0, (elapsed - planned_done) / measured) * left, False
        if overhead_s is not None:
            return planned_left + _number(overhead_s, "overhead_s") * left, False
        return planned_left, True
    if elapsed is not None and measured > 0:
        return elapsed / measured * left, False
    return None, False


def progress_line(cells, index, started=None, now=None, skipped=0, overhead_s=None):
    """``cell 3 of 40 (drop-drop-driver-s64-r0-rep3): elapsed 0:01:23, remaining ~0:12:40``."""
    info = estimate(cells, index, started, now, skipped, overhead_s)
    text = "cell %d of %d" % (info["index"], info["total"])
    if info["cell_id"]:
        text += " (%s)" % info["cell_id"]
    parts = []
    if info["elapsed_s"] is not None:
        parts.append("elapsed %s" % clock(info["elapsed_s"]))
    if info["remaining_s"] is None:
        parts.append("remaining unknown yet")
    else:
        parts.append("remaining %s%s" % (">=" if info["lower_bound"] else "~", clock(info["remaining_s"])))
    return text + ": " + ", ".join(parts)


# --- what the xdplab.offload.lab stdout callback prints ---------------------------------

REASON_CHARS = 100


def rate(pps):
    """``5.12 Mpps``, ``65.2 kpps``, ``950 pps``: three significant digits."""
    pps = _number(pps, "rate")
    for unit, scale in (("Mpps", 1e6), ("kpps", 1e3)):
        if abs(pps) >= scale:
            return "%.3g %s" % (pps / scale, unit)
    return "%.3g pps" % pps


def rtt(microseconds):
    """``192 µs`` or ``3.64 ms``: three significant digits."""
    value = _number(microseconds, "rtt")
    if abs(value) >= 1000:
        return "%.3g ms" % (value / 1000.0)
    return "%.3g µs" % value


def short_clock(seconds):
    """``14:02`` (minutes:seconds), ``1:14:02`` from an hour on."""
    seconds = int(round(max(0.0, seconds)))
    if seconds >= 3600:
        return clock(seconds)
    return "%d:%02d" % (seconds // 60, seconds % 60)


def time_left(seconds):
    """``~21 min left``, ``~40 s left``, ``~1 h 05 min left``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return "~%d s left" % int(round(seconds))
    minutes = int(round(seconds / 60.0))
    if minutes < 60:
        return "~%d min left" % minutes
    return "~%d h %02d min left" % (minutes // 60, minutes % 60)


def _percent(fraction):
    return "%.1f %%" % (100.0 * fraction)


def _value(record, key):
    """The number under ``key`` (numbers written as text too), or None."""
    return record_number(record.get(key))


def _present(record, key):
    return _value(record, key) is not None


def cell_name(record):
    """``vm_drop vm_driver rep 2``; the program and N when the experiment's name does not say them,
    the rate for latency cells (their varying parameter)."""
    parts = [str(record.get("experiment") or "?")]
    program = record.get("program")
    if program and str(program) not in parts[0]:
        parts.append(str(program))
    if record.get("n") not in (None, "", 0):
        parts.append("N=%s" % record["n"])
    parts.append(str(record.get("location") or "?"))
    for key, unit in (("flows", "flows"), ("queues", "queues")):
        if record.get(key) is not None:
            parts.append("%s %s" % (record[key], unit))
    if _present(record, "rtt_us_p50") and (_value(record, "rate") or 0) > 0:
        parts.append(rate(_value(record, "rate")))
    if record.get("repetition") is not None:
        parts.append("rep %s" % record["repetition"])
    return " ".join(parts)


def _reason(text):
    """The reason on one line, without the failed task's name in front (task names are capitalised,
    module messages are not), cut to REASON_CHARS."""
    text = " ".join(str(text or "no reason given").split())
    text = re.sub(r"^[A-Z][^:]{0,120}: (?=\S)", "", text)
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS - 3] + "..."


def record_summary(record):
    """What a cell measured, in one phrase: ``65.2 kpps processed, loss 0.1 %, host 60 % / VM 50 %``.

    A cell that did not measure gives its status and short reason; a latency
    cell its round-trip time p50/p99 (and the client's loss); a zero-loss cell
    its zero-loss rate.
    """
    status = record.get("status") or "unknown"
    if status != "ok":
        return "%s: %s" % (status, _reason(record.get("reason")))
    parts = []
    if _present(record, "rtt_us_p50"):
        text = "rtt p50 %s" % rtt(_value(record, "rtt_us_p50"))
        if _present(record, "rtt_us_p99"):
            text += " / p99 %s" % rtt(_value(record, "rtt_us_p99"))
        parts.append(text)
        if _present(record, "loss"):
            parts.append("loss %s" % _percent(_value(record, "loss")))
    else:
        if _present(record, "zero_loss_pps"):
            parts.append("zero-loss %s" % rate(_value(record, "zero_loss_pps")))
        elif "zero_loss_pps" in record:
            parts.append("no zero-loss rate found")
        if _present(record, "processed_pps"):
            parts.append("%s processed" % rate(_value(record, "processed_pps")))
        sent, lost = _value(record, "sent_packets"), _value(record, "lost_packets")
        if sent and lost is not None:
            parts.append("loss %s" % _percent(lost / sent))
    if _present(record, "cpu_host_share"):
        text = "host %.0f %%" % _value(record, "cpu_host_share")
        if _present(record, "cpu_vm_share"):
            text += " / VM %.0f %%" % _value(record, "cpu_vm_share")
        parts.append(text)
    return ", ".join(parts) or "ok"


def cell_line(cell, now=None, done=None):
    """The line for a finished cell, from the ``xdplab_cell`` result of the task that wrote its record.

    ``cell`` holds ``index`` (1-based), ``total``, ``run_id``, ``started`` (epoch
    seconds of the run's start), ``resumed`` (cells kept from an earlier run so
    far), ``record`` and, for a kept cell, ``kept: true``. ``done`` is how many
    cells have finished, this one included (default ``index``; the callback
    counts them, so that an index that does not follow the order the cells run
    in still gives a right estimate). The time left is learnt from the cells
    measured in this run only::

        cell 12/78 vm_drop vm_driver rep 2: 65.2 kpps processed, loss 0.1 %, host 60 % / VM 50 % · 14:02 elapsed, ~21 min left
    """
    if not isinstance(cell, dict):
        raise ProgressError("xdplab_cell must be a dict, got %r" % (cell,))
    index = int(_number(cell.get("index"), "index"))
    total = int(_number(cell.get("total"), "total"))
    if not 1 <= index <= total:
        raise ProgressError("index %d is outside 1..%d" % (index, total))
    record = cell.get("record") if isinstance(cell.get("record"), dict) else {}
    text = "cell %d/%d %s: " % (index, total, cell_name(record))
    if cell.get("kept"):
        text += "kept from an earlier run (%s)" % record_summary(record)
    else:
        text += record_summary(record)
    elapsed = _elapsed(cell.get("started"), now)
    if elapsed is None:
        return text
    text += " · %s elapsed" % short_clock(elapsed)
    done = index if done is None else min(int(_number(done, "done")), total)
    if done < total:
        remaining, _lower = remaining_s([None] * total, done, cell.get("resumed") or 0, elapsed)
        text += ", " + (time_left(remaining) if remaining is not None else "time left unknown yet")
    return text


def rate_line(progress, min_window_s=5.0):
    """``  12/30 s  5.12 Mpps offered`` from one progress line of the load generator, or None.

    ``progress`` is the decoded JSON line (``elapsed_s``, ``duration_s``, ``sent``,
    ``pps``). Windows shorter than ``min_window_s`` and lines that are not such an
    object give None.
    """
    if not isinstance(progress, dict):
        return None
    try:
        elapsed = _number(progress.get("elapsed_s"), "elapsed_s")
        duration = _number(progress.get("duration_s"), "duration_s")
        pps = _number(progress.get("pps"), "pps")
    except ProgressError:
        return None
    if duration < min_window_s or elapsed < 0 or pps < 0:
        return None
    return "  %d/%d s  %s offered" % (int(elapsed), int(round(duration)), rate(pps))
