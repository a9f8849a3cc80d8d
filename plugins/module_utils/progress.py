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
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import time


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
    skipped = int(_number(skipped or 0, "skipped"))
    done = index - 1
    measured = max(0, done - skipped)
    elapsed = None
    if started not in (None, ""):
        now = time.time() if now in (None, "") else _number(now, "now")
        elapsed = max(0.0, now - _number(started, "started"))
    known = all(d is not None for d in durations)
    remaining, lower = None, False
    left = total - done
    if known:
        planned_left = sum(durations[done:])
        planned_done = sum(durations[:done]) * (float(measured) / done) if done else 0.0
        if elapsed is not None and measured > 0:
            overhead = max(0.0, (elapsed - planned_done) / measured)
        elif overhead_s is not None:
            overhead = _number(overhead_s, "overhead_s")
        else:
            overhead, lower = 0.0, True
        remaining = planned_left + overhead * left
    elif elapsed is not None and measured > 0:
        remaining = elapsed / measured * left
    return {"index": index, "total": total, "cell_id": cell_id, "elapsed_s": elapsed,
            "remaining_s": remaining, "lower_bound": lower}


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
