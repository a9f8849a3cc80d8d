"""playbooks/report.yml re-aggregates a fetched run on the controller.

Runs the real playbook against the default (emulated) inventory, whose
localhost interpreter is the managed-host venv: the play must not need it.
"""
import csv
import json
import os
import shutil
import tempfile

import pytest

from lib.modrun import recap_changed, run_playbook

pytestmark = [pytest.mark.slow]

RUN_ID = "xl-report-run"


def record(cell_id, **fields):
    base = {
        "schema": 1, "run_id": RUN_ID, "cell_id": cell_id, "experiment": "drop", "program": "drop",
        "n": None, "location": "driver", "mode": "driver", "loader": "object", "size": 64, "rate": 0,
        "repetition": 1, "duration_s": 5, "status": "ok", "reason": None, "interfaces": {},
        "provenance": {"lab": "emulated"},
    }
    base.update(fields)
    return base


@pytest.fixture
def results_dir():
    path = tempfile.mkdtemp(prefix="xl-results-")
    records = os.path.join(path, RUN_ID, "records")
    os.makedirs(records)
    recs = [record("drop-drop-driver-s64-r0-rep%d" % rep, repetition=rep, processed_pps=pps, rate_pps=2 * pps)
            for rep, pps in ((1, 4e6), (2, 2e6), (3, 3e6))]
    recs.append(record("drop-drop-offload-s64-r0-rep1", location="offload", mode="offload",
                       status="unsupported", reason="no offload-capable NIC on xl-dut0"))
    recs.append(record("complexity-loop-n100-driver-s64-r0-rep1", experiment="complexity", program="loop",
                       n=100, status="failed", reason="BPF_PROG_TEST_RUN returned EINVAL"))
    for rec in recs:
        with open(os.path.join(records, rec["cell_id"] + ".json"), "w", encoding="utf-8") as handle:
            json.dump(rec, handle)
    with open(os.path.join(records, "half-written.json"), "w", encoding="utf-8") as handle:
        handle.write('{"schema": 1,')
    os.makedirs(os.path.join(path, "xl-other-run", "records"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def report(results_dir, run_id=RUN_ID, check=False, compare_to=None):
    extra = {"results_dir": results_dir}
    if run_id is not None:
        extra["run_id"] = run_id
    if compare_to is not None:
        extra["compare_to"] = compare_to
    return run_playbook("playbooks/report.yml", extra_vars=extra, check=check, timeout=300)


def flat(proc):
    """stdout with whitespace runs collapsed (the yaml callback wraps long messages)."""
    return " ".join(proc.stdout.split())


def test_report_writes_summary_and_is_idempotent(results_dir):
    summary = os.path.join(results_dir, RUN_ID, "summary.csv")

    run_dir = os.path.join(results_dir, RUN_ID)

    dry = report(results_dir, check=True)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert sorted(os.listdir(run_dir)) == ["records"]

    first = report(results_dir)
    assert first.returncode == 0, first.stdout + first.stderr
    assert recap_changed(first.stdout) == 2  # summary.csv, then figures and report
    # The table, the skipped file and the unsupported/failed cells are printed.
    assert "drop drop n=- driver 64B rate=max ok 3/3 processed_pps=3M" in flat(first)
    assert "half-written.json" in flat(first)
    assert "drop-drop-offload-s64-r0-rep1: no offload-capable NIC on xl-dut0" in flat(first)
    assert "complexity-loop-n100-driver-s64-r0-rep1: BPF_PROG_TEST_RUN returned EINVAL" in flat(first)

    with open(summary, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["experiment"], r["location"], r["status"]) for r in rows] == [
        ("complexity", "driver", "failed"), ("drop", "driver", "ok"), ("drop", "offload", "unsupported")]
    drop = rows[1]
    assert (drop["n"], drop["size"], drop["rate"]) == ("", "64", "0")
    assert (drop["repetitions"], drop["repetitions_total"]) == ("3", "3")
    assert (drop["processed_pps_median"], drop["processed_pps_q1"], drop["processed_pps_q3"]) == \
        ("3000000", "2500000", "3500000")
    assert drop["rate_pps_median"] == "6000000"
    # t(0.975, 2) * s / sqrt(3) with s = 1e6: 4.30265272975 * 1e6 / sqrt(3) = 2484137.71...
    assert float(drop["processed_pps_ci95_low"]) == pytest.approx(3e6 - 2484137.712, abs=0.01)
    assert float(drop["processed_pps_ci95_high"]) == pytest.approx(3e6 + 2484137.712, abs=0.01)
    assert rows[2]["reason"] == "no offload-capable NIC on xl-dut0" and rows[2]["repetitions"] == "0"
    assert rows[0]["n"] == "100" and rows[0]["reason"] == "BPF_PROG_TEST_RUN returned EINVAL"

    # Figures (PNG and SVG) and the report page, which names the unsupported and failed cells.
    assert sorted(os.listdir(os.path.join(run_dir, "figures"))) == [
        "complexity.png", "complexity.svg", "drop_throughput.png", "drop_throughput.svg"]
    assert os.path.join(run_dir, "report.html") in flat(first)
    with open(os.path.join(run_dir, "report.md"), encoding="utf-8") as handle:
        md = handle.read()
    assert "| drop-drop-offload-s64-r0-rep1 | drop | offload | unsupported | no offload-capable NIC on xl-dut0 |" in md
    assert "| complexity-loop-n100-driver-s64-r0-rep1 | complexity | driver | failed | " \
           "BPF_PROG_TEST_RUN returned EINVAL |" in md
    assert "| drop | driver | 64 | max | ok | 3/3 | 3.00 [0.516, 5.48] | 6.00 [1.03, 11.0] |" in md
    with open(os.path.join(run_dir, "report.html"), encoding="utf-8") as handle:
        assert handle.read().count("data:image/png;base64,") == 2

    stamps = dict((name, os.stat(os.path.join(run_dir, name)).st_mtime_ns)
                  for name in ("summary.csv", "report.md", "report.html", "figures/drop_throughput.png"))
    second = report(results_dir)
    assert second.returncode == 0, second.stdout + second.stderr
    assert recap_changed(second.stdout) == 0
    assert stamps == dict((name, os.stat(os.path.join(run_dir, name)).st_mtime_ns) for name in stamps)


def test_report_compared_with_itself_shows_ratios_of_one(results_dir):
    out = report(results_dir, compare_to=RUN_ID)
    assert out.returncode == 0, out.stdout + out.stderr
    text = flat(out)
    assert "3 cell groups in both runs, 0 only in %s, 0 only in %s" % (RUN_ID, RUN_ID) in text
    assert "drop drop n=- driver 64B rate=max: processed_pps x1.000 (3M vs 3M, within spread); " \
           "rate_pps x1.000 (6M vs 6M, within spread)" in text
    assert "No difference exceeds the spread." in text
    with open(os.path.join(results_dir, RUN_ID, "compare-%s.csv" % RUN_ID), encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    drop = [r for r in rows if r["location"] == "driver" and r["experiment"] == "drop"][0]
    assert (drop["processed_pps_ratio"], drop["processed_pps_exceeds_spread"]) == ("1", "false")
    with open(os.path.join(results_dir, RUN_ID, "report.md"), encoding="utf-8") as handle:
        assert "## Comparison with run %s" % RUN_ID in handle.read()


def test_report_compare_with_unknown_run_fails_listing_available_runs(results_dir):
    out = report(results_dir, compare_to="xl-no-such-run")
    assert out.returncode != 0
    assert "Run xl-no-such-run to compare with has no records/ directory" in flat(out)
    assert "available run ids: xl-other-run, %s." % RUN_ID in flat(out)
    assert not os.path.exists(os.path.join(results_dir, RUN_ID, "summary.csv"))


def test_report_unknown_run_fails_listing_available_runs(results_dir):
    out = report(results_dir, run_id="xl-no-such-run")
    assert out.returncode != 0
    assert "Run xl-no-such-run has no records/ directory" in flat(out)
    assert "available run ids: xl-other-run, %s." % RUN_ID in flat(out)
    assert not os.path.exists(os.path.join(results_dir, "xl-no-such-run"))


def test_report_without_run_id_fails_listing_available_runs(results_dir):
    out = report(results_dir, run_id=None)
    assert out.returncode != 0
    assert "No run id given" in flat(out) and RUN_ID in flat(out)
