# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: how much of a cell is orchestration, per cell type, for both quick profiles.

Runs ``playbooks/baremetal_offload.yml`` and ``playbooks/vm_offload.yml`` with
``-e profile=quick`` (or ``--profile default``) in a checkout (this one by
default, ``--checkout DIR`` for another, e.g. a clone of an older commit to
measure a baseline the same day on the same machine) and prints, per cell type:

* the measurement window (the cell's ``duration_s``),
* orchestration = ``wall_s - duration_s`` of each record (everything the cell
  spends outside its measurement window: deploying, reading counters, starting
  and stopping samplers, writing the record), mean / min / max,

and per playbook the wall time split into provisioning (start to the first
cell's start), cells (first start to last end, from the records' own
timestamps) and summary (last end to the end: teardown, summary, figures).

Prints numbers only; asserts only that they were measured. The lab lock makes
a concurrent run fail at once, so run it alone. Root:

    .venv/bin/python tests/benchmarks/bench_orchestration.py [--checkout DIR] [--profile quick|default]
        [--playbook baremetal|vm|both] [--keep-results]
    .venv/bin/python -m pytest tests/benchmarks/bench_orchestration.py -m benchmark -s
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import datetime
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PLAYBOOKS = {"baremetal": "playbooks/baremetal_offload.yml", "vm": "playbooks/vm_offload.yml"}
GUEST_LOCATIONS = ("vm_driver", "vm_generic", "vm_afxdp")


def cell_type(record):
    """The rows of the orchestration table: what a cell costs depends on where it runs."""
    experiment, location = record.get("experiment"), record.get("location")
    if experiment == "neighbour":
        return "neighbour, %s" % location
    if experiment == "dns_latency":
        return "dns_latency, bare metal"
    if location in GUEST_LOCATIONS:
        return "guest cell, %s" % location
    if location in ("host_driver", "host_generic", "nic"):
        return "host cell, %s" % location
    return "bare metal, %s" % location


def _ts(value):
    return datetime.datetime.fromisoformat(value).timestamp()


def timed_run(checkout, playbook, profile, keep=False):
    run_id = "xl-obench-%s" % uuid.uuid4().hex[:8]
    command = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), PLAYBOOKS[playbook],
               "-e", "profile=%s" % profile, "-e", "run_id=%s" % run_id]
    start = time.time()
    proc = subprocess.run(command, cwd=checkout, capture_output=True, text=True, timeout=7200, check=False)
    end = time.time()
    if proc.returncode != 0:
        raise RuntimeError("%s failed (rc %d):\n%s\n%s"
                           % (" ".join(command), proc.returncode, proc.stdout[-6000:], proc.stderr[-2000:]))
    run_dir = os.path.join(checkout, "results", run_id)
    records = []
    for path in sorted(glob.glob(os.path.join(run_dir, "records", "*.json"))):
        with open(path) as handle:
            records.append(json.load(handle))
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return {"playbook": playbook, "run_id": run_id, "start": start, "end": end, "records": records}


def split(run):
    records = run["records"]
    if not records:
        return {"wall_s": run["end"] - run["start"], "provisioning_s": None, "cells_s": None, "summary_s": None}
    first = min(_ts(r["started_at"]) for r in records)
    last = max(_ts(r["finished_at"]) for r in records)
    return {"wall_s": run["end"] - run["start"], "provisioning_s": first - run["start"],
            "cells_s": last - first, "summary_s": run["end"] - last}


def orchestration_table(records):
    rows = {}
    for record in records:
        # A zero-loss cell's duration is an upper bound (trial_duration x max_trials), not its window.
        if record.get("status") != "ok" or record.get("experiment") == "zero_loss" or "zero_loss_pps" in record:
            continue
        rows.setdefault(cell_type(record), []).append(
            (float(record["wall_s"]) - float(record["duration_s"]), float(record["duration_s"])))
    return {kind: {"cells": len(values), "window_s": values[0][1],
                   "mean_s": statistics.mean(v[0] for v in values),
                   "min_s": min(v[0] for v in values), "max_s": max(v[0] for v in values)}
            for kind, values in sorted(rows.items())}


def report(run):
    print("\n%s (%s): %d records, statuses %s" % (
        PLAYBOOKS[run["playbook"]], run["run_id"], len(run["records"]),
        ", ".join("%s %d" % (s, sum(1 for r in run["records"] if r["status"] == s))
                  for s in sorted({r["status"] for r in run["records"]}))))
    print("  %-34s %5s %8s %16s %8s %8s" % ("cell type", "cells", "window", "orchestration", "min", "max"))
    for kind, row in orchestration_table(run["records"]).items():
        print("  %-34s %5d %6.1f s %14.2f s %6.2f s %6.2f s"
              % (kind, row["cells"], row["window_s"], row["mean_s"], row["min_s"], row["max_s"]))
    parts = split(run)
    print("  wall %.1f s = provisioning %s + cells %s + summary/teardown %s" % (
        parts["wall_s"], *("%.1f s" % parts[k] if parts[k] is not None else "-"
                           for k in ("provisioning_s", "cells_s", "summary_s"))))


def run(checkout=ROOT, profile="quick", playbooks=("baremetal", "vm"), keep=False):
    runs = []
    for playbook in playbooks:
        runs.append(timed_run(checkout, playbook, profile, keep))
        report(runs[-1])
    return runs


@pytest.mark.benchmark
@pytest.mark.root
@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for namespaces, XDP, libvirt and Open vSwitch")
def test_bench_orchestration_quick():
    runs = run()
    for one in runs:
        assert one["records"], "%s wrote no record" % one["playbook"]
        assert orchestration_table(one["records"]), "%s has no ok cell to measure" % one["playbook"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--checkout", default=ROOT, help="the checkout whose playbooks run (default: this one)")
    parser.add_argument("--profile", default="quick", choices=("quick", "default"))
    parser.add_argument("--playbook", default="both", choices=("baremetal", "vm", "both"))
    parser.add_argument("--keep-results", action="store_true")
    args = parser.parse_args(argv)
    playbooks = ("baremetal", "vm") if args.playbook == "both" else (args.playbook,)
    run(os.path.abspath(args.checkout), args.profile, playbooks, args.keep_results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
