# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: wall time of playbooks/vm_offload.yml, from a bare and from a warm machine.

For each profile asked for (``quick`` by default, ``default`` with
``--profile default``) the playbook runs twice with names ``xl-w...`` and
addresses from 198.19.31.0/24 and 198.19.32.0/24:

* bare: no lab objects (no daemons started by the lab, no bridges, no guests);
  the guest image comes from the cache unless ``--cold-image``, which builds it
  into an empty cache directory of its own (debootstrap and all);
* warm: right after, with the lab up, with a new run id.

Per run it prints the wall time and how it splits: measuring (from the first
cell's start to the last cell's end, from the records' own timestamps) versus
the rest (provisioning, fetching and summarising), and the mean wall time per
cell. Teardown (``--tags teardown``) runs after each profile and also on
failure. Prints numbers only; asserts only that they were measured. Root:

    .venv/bin/python -m pytest tests/benchmarks/bench_vm_offload.py -m benchmark -s
    .venv/bin/python tests/benchmarks/bench_vm_offload.py [--profile quick|default|both] [--cold-image]
        [--bare-only | --warm-only] [--keep-results]
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import datetime
import glob
import json
import os
import shutil
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import pytest  # noqa: E402

from lib.modrun import run_playbook  # noqa: E402

PLAYBOOK = "playbooks/vm_offload.yml"
BRIDGE = "xl-wbr0"
COLD_CACHE = "/var/cache/xdplab/bench-vm-guest"


def _guest(name, last):
    return {"name": name, "vcpus": 1, "memory_mib": 384, "mgmt_address": "198.19.31.%d/24" % last,
            "data": [{"bridge": BRIDGE, "address": "198.19.32.%d/24" % last, "model": "virtio",
                      "checksum_offload": False}]}


def bench_vars(profile, cold_image):
    extra = {
        "profile": profile,
        "results_report_enabled": False,
        # The warm run finds the lab the bare run left up; the finally clause tears it down.
        "keep_lab": True,
        "hypervisor_state_file": "/run/xdplab/bench-vm-hypervisor.json",
        "ovs_state_file": "/run/xdplab/bench-vm-ovs.json",
        "ovs_bridges": [{"name": BRIDGE, "datapath_type": "auto",
                         "uplinks": [{"name": "xl-wup0", "peer": "xl-wlg0", "peer_netns": "xl-wlg",
                                      "peer_address": "198.19.32.1/24", "tx_checksum_offload": False}]}],
        "vm_guests_all": [_guest("xl-wg1", 10), _guest("xl-wg2", 11)],
        "guests_mgmt_bridge": "xl-wmgmt",
        "guests_mgmt_host_address": "198.19.31.1/24",
        "guests_dir": "/var/lib/xdplab/bench-vm-guests",
        "experiment_ship_build_dir": "/var/cache/xdplab/bench-vm-objects",
        "experiment_ship_stage_dir": os.path.join(tempfile.gettempdir(), "xl-wbench-stage"),
    }
    if cold_image:
        extra["guest_image_cache"] = COLD_CACHE
    return extra


def _ts(value):
    return datetime.datetime.fromisoformat(value).timestamp()


def timed_run(extra, keep=False):
    run_id = "xl-wbench-%s" % uuid.uuid4().hex[:8]
    t0 = time.monotonic()
    proc = run_playbook(PLAYBOOK, dict(extra, run_id=run_id), timeout=7200)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError("%s failed:\n%s\n%s" % (PLAYBOOK, proc.stdout[-5000:], proc.stderr[-2000:]))
    records = []
    for path in glob.glob(os.path.join(ROOT, "results", run_id, "records", "*.json")):
        with open(path) as handle:
            records.append(json.load(handle))
    measure = (max(_ts(r["finished_at"]) for r in records) - min(_ts(r["started_at"]) for r in records)
               if records else 0.0)
    statuses = {}
    for record in records:
        statuses[record["status"]] = statuses.get(record["status"], 0) + 1
    if keep:
        print("records and summary kept in %s" % os.path.join(ROOT, "results", run_id))
    else:
        for base in (os.path.join(ROOT, "results"), "/opt/xdplab/results"):
            shutil.rmtree(os.path.join(base, run_id), ignore_errors=True)
    return {"run_id": run_id, "wall_s": wall, "measure_s": measure, "other_s": wall - measure, "cells": len(records),
            "statuses": statuses}


def report(profile, start, r):
    share = 100.0 * r["measure_s"] / r["wall_s"] if r["wall_s"] else 0.0
    print("%-8s %-5s wall %7.1f s  measuring %7.1f s (%4.1f %%)  provisioning+fetch+summary %7.1f s  "
          "%d cells (%s), %.1f s per cell"
          % (profile, start, r["wall_s"], r["measure_s"], share, r["other_s"], r["cells"],
             ", ".join("%s %d" % kv for kv in sorted(r["statuses"].items())),
             r["measure_s"] / r["cells"] if r["cells"] else 0.0))


def run(profiles=("quick",), cold_image=False, starts=("bare", "warm"), keep=False):
    results = {}
    for profile in profiles:
        extra = bench_vars(profile, cold_image)
        try:
            if starts == ("warm",):  # bring the lab up (untimed) with the quick profile first
                timed_run(bench_vars("quick", cold_image))
            for start in starts:  # bare first: the warm run finds the lab the bare run left up
                results[(profile, start)] = timed_run(extra, keep)
                report(profile, start, results[(profile, start)])
        finally:
            run_playbook(PLAYBOOK, extra, tags=["teardown"], timeout=900)
            if cold_image:
                shutil.rmtree(COLD_CACHE, ignore_errors=True)
    return results


@pytest.mark.benchmark
@pytest.mark.root
@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for libvirt, Open vSwitch, namespaces and XDP")
def test_bench_vm_offload_quick():
    results = run(("quick",))
    assert results[("quick", "bare")]["cells"] > 0 and results[("quick", "warm")]["wall_s"] > 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--profile", choices=["quick", "default", "both"], default="quick")
    parser.add_argument("--cold-image", action="store_true",
                        help="build the guest image into an empty cache of its own (a really bare machine)")
    starts = parser.add_mutually_exclusive_group()
    starts.add_argument("--bare-only", action="store_true",
                        help="only the run from a bare machine (the default profile takes most of an hour per run)")
    starts.add_argument("--warm-only", action="store_true",
                        help="only the run from a warm machine (the lab is brought up by an untimed quick run first)")
    parser.add_argument("--keep-results", action="store_true", help="keep results/<run_id>/ of each run")
    args = parser.parse_args()
    run(("quick", "default") if args.profile == "both" else (args.profile,), args.cold_image,
        ("bare",) if args.bare_only else ("warm",) if args.warm_only else ("bare", "warm"), args.keep_results)
