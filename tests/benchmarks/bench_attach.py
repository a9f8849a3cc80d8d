"""Benchmark: attach + detach time per program, loader object vs loader bcc, in one run.

Goes through the xdp_program module the way a playbook does (one module process
per call, as AnsiballZ would run it) and also reports the load and attach times
the module measures itself. Prints; asserts only that everything was measured.

    .venv/bin/python -m pytest -s tests/benchmarks/bench_attach.py
"""
import os
import shutil
import statistics
import tempfile
import time

import pytest

from lib.modrun import ROOT, run_module
from lib.netfix import VethPair, unique

pytestmark = [pytest.mark.benchmark, pytest.mark.root, pytest.mark.slow]

PROGRAMS = [("drop", {}), ("loop", {"N": 100}), ("checksum", {"N": 100}), ("dns_nxdomain", {})]
ROUNDS = 5


def test_attach_detach_time_object_vs_bcc():
    ns = unique("xl-bns")
    pair = VethPair(unique("xl-ba"), unique("xl-bb"), ns_b=ns).create()
    build_dir = tempfile.mkdtemp(prefix="xl-bench-")
    rows = []
    try:
        for program, defines in PROGRAMS:
            for loader in ("object", "bcc"):
                wall, load, attach = [], [], []
                for i in range(ROUNDS + 1):
                    args = dict(interface=pair.name_b, netns=ns, program=program, defines=defines,
                                loader=loader, bpf_dir=os.path.join(ROOT, "bpf"), build_dir=build_dir)
                    started = time.monotonic()
                    res = run_module("xdp_program", args)
                    gone = run_module("xdp_program", dict(interface=pair.name_b, netns=ns, state="detached"))
                    elapsed = (time.monotonic() - started) * 1000.0
                    assert not res.failed and not gone.failed, (res, gone)
                    if i == 0:  # the first object build compiles with clang; count cached runs
                        continue
                    wall.append(elapsed)
                    load.append(res["load_time_ms"])
                    attach.append(res["attach_time_ms"])
                rows.append((program, loader, statistics.median(load), statistics.median(attach),
                             statistics.median(wall)))
    finally:
        pair.destroy()
        shutil.rmtree(build_dir, ignore_errors=True)
    print("\nxdp_program attach+detach, median of %d rounds (load avg %.2f)" % (ROUNDS, os.getloadavg()[0]))
    print("%-13s %-7s %10s %10s %28s" % ("program", "loader", "load ms", "attach ms", "attach+detach, 2 calls, ms"))
    for program, loader, load_ms, attach_ms, wall_ms in rows:
        print("%-13s %-7s %10.1f %10.2f %28.0f" % (program, loader, load_ms, attach_ms, wall_ms))
    assert all(r[2] > 0 for r in rows)
