"""report, run comparison and progress on synthetic runs.

The report must list every unsupported and failed cell with its reason, embed
its figures (self-contained HTML), be byte-stable across re-runs; a run
compared with itself gives ratios of 1 and no difference beyond the spread.
"""
import csv
import json
import os
import re
import shutil
import tempfile

import pytest

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from ansible_collections.xdplab.offload.plugins.module_utils import findings as fd  # noqa: E402
from ansible_collections.xdplab.offload.plugins.module_utils import progress as pg  # noqa: E402
from ansible_collections.xdplab.offload.plugins.module_utils import report as rp  # noqa: E402
from ansible_collections.xdplab.offload.plugins.module_utils import results as res  # noqa: E402
from lib.modrun import run_module  # noqa: E402
from lib import synthetic_runs as synth  # noqa: E402

# The synthetic run has every experiment of the paper but no zero-loss search (its figure is tested in
# tests/unit/test_figures_zero_loss.py), so it draws every figure but that one.
DRAWN = [n for n in rp.FIGURE_NAMES if n != "zero_loss_throughput"]


@pytest.fixture
def results_dir():
    path = tempfile.mkdtemp(prefix="xl-report-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def built():
    """One full report of the synthetic run (drawing is the slow part: share it)."""
    path = tempfile.mkdtemp(prefix="xl-report-")
    try:
        run = synth.write_run(path)
        out = rp.build_report(run)
        with open(os.path.join(run, "report.md"), encoding="utf-8") as handle:
            md = handle.read()
        with open(os.path.join(run, "report.html"), encoding="utf-8") as handle:
            page = handle.read()
        again = rp.build_report(run)
        yield {"run": run, "out": out, "md": md, "html": page, "again": again,
               "listing": sorted(os.listdir(os.path.join(run, "figures")))}
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- the report page ----------------------------------------------------------------

def test_report_writes_figures_and_both_pages_then_nothing(built):
    out = built["out"]
    assert out["changed"] and out["records"] == len(synth.synthetic_records()) and out["run_id"] == "xl-synth"
    expected = sorted(["%s.%s" % (n, f) for n in DRAWN for f in ("png", "svg")])
    assert built["listing"] == expected
    assert sorted(out["files"]) == sorted(["figures/" + f for f in expected] + ["report.html", "report.md"])
    assert [f["name"] for f in out["figures"]] == DRAWN
    again = built["again"]
    assert not again["changed"] and again["files"] == [] and again["removed"] == []


def test_report_lists_every_unsupported_and_failed_cell_with_its_reason(built):
    records = synth.synthetic_records()
    bad = [r for r in records if r["status"] != "ok"]
    assert len(bad) == 38
    section = built["md"].split("## Unsupported and failed cells", 1)[1].split("\n## ", 1)[0]
    for rec in bad:
        line = [l for l in section.splitlines() if l.startswith("| %s |" % rec["cell_id"])]
        assert len(line) == 1, rec["cell_id"]
        assert rec["status"] in line[0] and rec["reason"] in line[0]
        assert rec["cell_id"] in built["html"]
    assert "traffic: generator exited with status 1" in built["html"]
    assert len(built["out"]["unsupported_cells"]) == 37 and len(built["out"]["failed_cells"]) == 1


def test_report_says_what_ran_and_where(built):
    md = built["md"]
    assert md.startswith("# xdplab.offload report: run xl-synth\n")
    assert "156 records in 53 cell groups: 118 ok, 37 unsupported, 1 failed." in md
    assert "| drop | drop | - | offload, driver, generic, afxdp | 64 | max | 3 | 9 / 3 / 0 |" in md
    assert "| dns_latency | dns_nxdomain | - | offload, driver, generic, afxdp | 64 | " \
           "10 kpps, 50 kpps, 100 kpps, 500 kpps | 3 | 36 / 1 / 0 |" in md
    assert "| host | lab | kernel | CPU | NIC driver | hypervisor | xdplab.offload |" in md
    assert "| xl-lab | emulated | 6.18.0 | Synthetic CPU @ 2.0GHz | veth | qemu-tcg 7.2 (libvirt 9.0) | 0.1.0 |" in md
    for heading in ("Throughput baseline: drop all (`drop`)", "Processing complexity (`complexity`)",
                    "Reducing latency: DNS responder (`dns_latency`)",
                    "Offloading from virtual machines (`vm_drop`)", "Influence on the VM host (`vm_cpu_share`)",
                    "Influence on neighbouring VMs (`neighbour`)"):
        assert "\n## %s\n" % heading in md


def test_report_tables_hold_median_and_interval(built):
    md = built["md"]
    # drop/driver: (11, 12, 13) Mpps -> median 12, t(0.975, 2) * 1 / sqrt(3) = 2.48.
    assert "| drop | driver | 64 | max | ok | 3/3 | 12.0 [9.52, 14.5] | 14.0 [14.0, 14.0] |" in md
    assert "| checksum | 1000 | generic | 64 | max | failed: traffic: generator exited with status 1 | 1/2 |" in md
    # loss is a fraction in the record and a percentage in the table.
    assert re.search(r"\| dns_nxdomain \| driver \| 64 \| 500 kpps \| ok \| 3/3 \|.*\| 2\.00 \[2\.00, 2\.00\] \|", md)
    assert "| checksum | 100 | vm_afxdp | 64 | max | ok | 3/3 | 95.0 [" in md


def test_findings_section_judges_every_finding_of_the_paper(built):
    md, page = built["md"], built["html"]
    section = md.split("\n## Findings\n", 1)[1].split("\n## ", 1)[0]
    assert md.index("\n## Findings\n") < md.index("\n## Throughput baseline: drop all")
    findings = built["out"]["findings"]
    assert [f["id"] for f in findings] == [f.id for f in fd.FINDINGS]
    for i, (finding, judged) in enumerate(zip(fd.FINDINGS, findings), 1):
        title = finding.statement.split(": ", 1)[0]
        verdict = judged["verdict"] + (" (%s)" % judged["strength"] if judged["strength"] else "")
        assert "| %d | %s | %s | %s |" % (i, title, finding.slide, verdict) in section
        assert "\n### %d. %s\n" % (i, title) in section
        assert "\n%s\n" % finding.statement in section
        assert "\nVerdict: %s" % verdict in section
        assert "_Test: %s_" % finding.test in section
        assert ">%d. %s</h3>" % (i, title) in page
    assert [f["verdict"] for f in findings].count(fd.NOT_MEASURABLE) == 3
    assert "Verdict: not measurable here. Why: `complexity` at `offload`: unsupported " \
           "(xdp_program: no offload-capable NIC on xl-dut0 (veth))." in section
    assert "* drop drop, 64 B, max rate, throughput: driver 12.0 Mpps (IQR 11.5-12.5, 3 reps) vs afxdp 4.20 Mpps " \
           "(IQR 4.10-4.30, 3 reps): driver higher, IQRs apart (x2.86)" in section
    assert "_Not judged (left out of the verdict): `drop` at `offload`: unsupported" in section
    assert '<tr class="reproduced">' in page and '<tr class="not-measurable-here">' in page
    assert '<tr class="not-reproduced">' in page


def test_markdown_links_figures_and_captions_carry_provenance(built):
    md = built["md"]
    for name in DRAWN:
        assert "![%s](figures/%s.png)" % (name, name) in md
        assert "[SVG](figures/%s.svg)" % name in md
    assert md.count("> Source: run xl-synth | emulated lab | xl-lab: Linux 6.18.0") == len(DRAWN)


def test_html_is_self_contained(built):
    page = built["html"]
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count('src="data:image/png;base64,') == len(DRAWN)
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "<link" not in page and "<script" not in page and "@import" not in page
    assert '<tr class="unsupported">' in page and '<tr class="failed">' in page


def test_check_mode_writes_nothing(results_dir):
    run = synth.write_run(results_dir, skip=("complexity", "dns_latency", "neighbour"))
    out = rp.build_report(run, write=False)
    assert out["changed"] and "report.md" in out["files"]
    assert sorted(os.listdir(run)) == ["records"]


def test_stale_figures_are_removed_and_only_present_experiments_drawn(results_dir):
    run = synth.write_run(results_dir, skip=("complexity", "dns_latency", "neighbour"))
    first = rp.build_report(run, formats=["png"])
    assert sorted(os.listdir(os.path.join(run, "figures"))) == [
        "drop_throughput.png", "vm_cpu_share.png", "vm_drop_throughput.png"]
    assert "no figure" not in first["markdown"].lower()
    for name in os.listdir(os.path.join(run, "records")):
        if name.startswith("vm_"):
            os.unlink(os.path.join(run, "records", name))
    second = rp.build_report(run, formats=["png"])
    assert sorted(second["removed"]) == ["figures/vm_cpu_share.png", "figures/vm_drop_throughput.png"]
    assert os.listdir(os.path.join(run, "figures")) == ["drop_throughput.png"]
    assert "(`vm_drop`)" not in second["markdown"] and "| vm_drop |" not in second["markdown"]
    assert "Why: the `vm_drop` experiment was not in this run's matrix." in second["markdown"]


def test_unknown_experiments_are_tabled_not_drawn_and_bad_files_listed(results_dir):
    recs = [synth.record("x-%d" % i, experiment="jitter", program="drop", repetition=i, processed_pps=i * 1e6)
            for i in (1, 2)]
    run = synth.write_run(results_dir, records=recs)
    with open(os.path.join(run, "records", "broken.json"), "w", encoding="utf-8") as handle:
        handle.write("{")
    out = rp.build_report(run)
    assert out["figures"] == [] and [s["file"] for s in out["skipped"]] == ["broken.json"]
    md = out["markdown"]
    assert "No figure is defined for this experiment" in md
    assert "| drop | driver | 64 | max | ok | 2/2 | 1.50 [" in md
    assert "## Record files that could not be read" in md and "| broken.json | not valid JSON" in md
    assert "None: every cell ran." in md


def test_bad_format_and_missing_reference_are_errors(results_dir):
    run = synth.write_run(results_dir, skip=("complexity", "dns_latency", "neighbour", "vm_drop", "vm_cpu_share"))
    with pytest.raises(rp.ReportError):
        rp.build_report(run, formats=["pdf"])
    with pytest.raises(rp.ReportError):
        rp.build_report(run, compare_to=os.path.join(results_dir, "xl-nope"))


def test_missing_libraries_names_pandas_then_matplotlib(monkeypatch):
    assert rp.missing_libraries() == []
    error = ImportError("No module named 'matplotlib'")
    monkeypatch.setattr(rp.fg, "HAS_MATPLOTLIB", False)
    monkeypatch.setattr(rp.fg, "MATPLOTLIB_IMPORT_ERROR", error)
    assert rp.missing_libraries() == [("matplotlib", error)]
    monkeypatch.setattr(res, "HAS_PANDAS", False)
    assert [name for name, _error in rp.missing_libraries()] == ["pandas", "matplotlib"]


@pytest.mark.parametrize("value,text", [(12.0, "12.0"), (0.421, "0.421"), (2320.4, "2320"), (0, "0"),
                                        (None, "-"), (float("nan"), "-"), (-0.0123, "-0.0123"), (99.96, "100.0"),
                                        (1.5e-6, "1.5e-06")])
def test_significant_digits(value, text):
    assert rp.sig(value) == text


# --- comparison ---------------------------------------------------------------------

def test_a_run_compared_with_itself_gives_ratios_of_one(results_dir):
    run = synth.write_run(results_dir)
    out = res.compare_runs(run, run)
    assert out["changed"] and out["output"] == os.path.join(run, "compare-xl-synth.csv")
    assert out["only_here"] == out["only_ref"] == 0 and out["matched"] == 53 and out["beyond_spread"] == []
    rows = out["full_rows"]
    checked = 0
    for row in rows:
        for q in out["quantities"]:
            if row[q + "_median"] is None:
                continue
            checked += 1
            assert row[q + "_ratio"] == 1.0
            flag = row[q + "_exceeds_spread"]
            if row["repetitions"] >= 2:
                assert flag is False, (row, q)
            else:
                assert flag is None
    assert checked > 100
    with open(out["output"], encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 53
    drop = [r for r in table if r["experiment"] == "drop" and r["location"] == "driver"][0]
    assert (drop["processed_pps_ratio"], drop["processed_pps_exceeds_spread"]) == ("1", "false")
    single = [r for r in table if r["n"] == "1000" and r["location"] == "generic" and r["program"] == "checksum"][0]
    assert single["processed_pps_ratio"] == "1" and single["processed_pps_exceeds_spread"] == ""
    assert all("within spread" in line or "spread unknown" in line or "nothing to compare" in line
               for line in out["table"])
    assert not res.compare_runs(run, run)["changed"]


def test_a_regression_beyond_the_spread_is_flagged(results_dir):
    base = synth.synthetic_records()
    slower = []
    for rec in base:
        rec = dict(rec)
        if rec["experiment"] == "drop" and rec["location"] == "driver":
            rec["processed_pps"] = rec["processed_pps"] / 2          # clearly beyond the spread
        if rec["experiment"] == "drop" and rec["location"] == "generic":
            rec["processed_pps"] = rec["processed_pps"] * 1.01       # within it
        if rec["experiment"] == "vm_cpu_share":
            continue                                                # not in this run
        slower.append(rec)
    ref = synth.write_run(results_dir, "xl-before", records=base)
    run = synth.write_run(results_dir, "xl-after", records=slower)
    out = res.compare_runs(run, ref)
    rows = dict(((r["experiment"], r["location"]), r) for r in out["full_rows"])
    driver, generic = rows[("drop", "driver")], rows[("drop", "generic")]
    assert driver["processed_pps_ratio"] == pytest.approx(0.5) and driver["processed_pps_exceeds_spread"] is True
    assert generic["processed_pps_ratio"] == pytest.approx(1.01) and generic["processed_pps_exceeds_spread"] is False
    assert rows[("vm_cpu_share", "vm_driver")]["status"] == "absent"
    assert out["only_ref"] == 4 and out["only_here"] == 0
    assert out["beyond_spread"] == [
        "experiment=drop/program=drop/n=null/location=driver/size=64/rate=0: processed_pps x0.500"]
    assert any(line.startswith("drop drop n=- driver 64B rate=max: processed_pps x0.500 (6M vs 12M, lower, beyond "
                               "spread); rate_pps x1.000") for line in out["table"])
    report = rp.build_report(run, compare_to=ref, formats=["png"], write=False)
    assert report["comparison"]["beyond_spread"] == 1 and report["comparison"]["only"] == 4
    md = report["markdown"]
    assert "## Comparison with run xl-before" in md
    assert "| drop drop n=- driver 64B rate=max | throughput [Mpps] | 6.00 | 12.0 | 0.500 | lower, beyond spread |" in md
    assert "vm_cpu_share checksum n=100 vm_driver 64B rate=max: only in run xl-before" in md


def test_ratio_and_overlap_rules():
    assert res.median_ratio(0, 0) == 1.0 and res.median_ratio(1, 0) is None and res.median_ratio(None, 1) is None
    row = {"q_ci95_low": 1.0, "q_ci95_high": 2.0}
    assert res.exceeds_spread(row, {"q_ci95_low": 2.5, "q_ci95_high": 3.0}, "q") is True
    assert res.exceeds_spread(row, {"q_ci95_low": 2.0, "q_ci95_high": 3.0}, "q") is False
    assert res.exceeds_spread(row, {"q_ci95_low": float("nan"), "q_ci95_high": 3.0}, "q") is None
    assert res.verdict(1.2, True) == "higher, beyond spread" and res.verdict(0.8, True) == "lower, beyond spread"
    assert res.verdict(None, None) == "no ratio" and res.verdict(1.0, None) == "spread unknown"


# --- provenance -------------------------------------------------------------------------

def test_machines_join_distinct_values_per_host():
    recs = [synth.record("a", provenance={"hostname": "h1", "kernel": "6.1", "lab": "testbed", "prog_tag": "x"}),
            synth.record("b", provenance={"hostname": "h1", "kernel": "6.2", "nic_firmware": "nfp-bpf 2.1"}),
            synth.record("c", provenance={"hostname": "h0", "hypervisor": "xen 4.9.2"}),
            synth.record("d", provenance=None)]
    hosts = res.machines(recs)
    assert [h["hostname"] for h in hosts] == ["(unknown host)", "h0", "h1"]
    assert hosts[2]["kernel"] == "6.1, 6.2" and hosts[2]["nic_firmware"] == "nfp-bpf 2.1"
    assert "prog_tag" not in hosts[2] and hosts[1]["hypervisor"] == "xen 4.9.2"
    line = res.provenance_line(recs)
    assert line.startswith("run xl-synth | testbed lab | (unknown host): no provenance recorded")
    assert "h1: Linux 6.1, 6.2, NIC fw nfp-bpf 2.1" in line


# --- progress ----------------------------------------------------------------------------

def cells(durations):
    return [{"id": "c%d" % i, "duration": d} for i, d in enumerate(durations, 1)]


def test_progress_first_cell_is_a_lower_bound():
    assert pg.progress_line(cells([10, 10, 10]), 1, started=100, now=100) == \
        "cell 1 of 3 (c1): elapsed 0:00:00, remaining >=0:00:30"


def test_progress_learns_the_per_cell_overhead():
    # Two cells of 10 s measured in 30 s: 5 s overhead each; two cells left: 2 * (10 + 5).
    info = pg.estimate(cells([10, 10, 10, 10]), 3, started=0, now=30)
    assert info["elapsed_s"] == 30 and info["remaining_s"] == pytest.approx(30) and not info["lower_bound"]
    assert pg.progress_line(cells([10, 10, 10, 10]), 3, started=0, now=30) == \
        "cell 3 of 4 (c3): elapsed 0:00:30, remaining ~0:00:30"


def test_progress_ignores_resumed_cells_when_learning():
    # Cells 1-2 were skipped (already recorded), cell 3 took 15 s of which 10 measuring.
    info = pg.estimate(cells([10] * 6), 4, started=0, now=15, skipped=2)
    assert info["remaining_s"] == pytest.approx(3 * 15)


def test_progress_with_a_count_and_bad_input():
    assert pg.progress_line(10, 6, started=0, now=50) == "cell 6 of 10: elapsed 0:00:50, remaining ~0:00:50"
    assert pg.progress_line(10, 1) == "cell 1 of 10: remaining unknown yet"
    assert pg.clock(3725.4) == "1:02:05"
    with pytest.raises(pg.ProgressError):
        pg.progress_line(cells([1, 2]), 3)
    with pytest.raises(pg.ProgressError):
        pg.progress_line(cells([1, 2]), 1, started="yesterday")


def test_progress_filter_is_registered():
    from ansible_collections.xdplab.offload.plugins.filter.progress import FilterModule
    from ansible.errors import AnsibleFilterError
    progress = FilterModule().filters()["progress"]
    assert progress(cells([5, 5]), 2, started=0, now=8) == "cell 2 of 2 (c2): elapsed 0:00:08, remaining ~0:00:08"
    with pytest.raises(AnsibleFilterError):
        progress(cells([5]), 0)


# --- the modules ---------------------------------------------------------------------------

def test_results_report_module_check_then_write_then_idempotent(results_dir):
    run = synth.write_run(results_dir, skip=("complexity", "dns_latency", "neighbour", "vm_cpu_share"))
    dry = run_module("results_report", {"path": run, "formats": ["png"]}, check=True, diff=True)
    assert not dry.failed and dry.changed and sorted(os.listdir(run)) == ["records"]
    assert dry["diff"]["after"].startswith("# xdplab.offload report: run xl-synth")
    first = run_module("results_report", {"path": run, "formats": ["png"]})
    assert not first.failed and first.changed, first.get("msg")
    assert sorted(first["files"]) == ["figures/drop_throughput.png", "figures/vm_drop_throughput.png",
                                      "report.html", "report.md"]
    assert first["figures"][0]["panels"][0]["series"] == ["drop, 64 B"]
    assert [c["location"] for c in first["unsupported_cells"]] == ["offload"] * 3 + ["nic"] * 3
    json.dumps(first)
    second = run_module("results_report", {"path": run, "formats": ["png"]})
    assert not second.failed and not second.changed


def test_results_report_module_names_missing_runs(results_dir):
    run = synth.write_run(results_dir, skip=("complexity", "dns_latency", "neighbour", "vm_cpu_share", "vm_drop"))
    out = run_module("results_report", {"path": run, "compare_to": os.path.join(results_dir, "xl-gone")})
    assert out.failed and "Reference run directory" in out["msg"] and out["available_run_ids"] == ["xl-synth"]
    out = run_module("results_report", {"path": os.path.join(results_dir, "xl-gone")})
    assert out.failed and "has no records/ directory" in out["msg"]


def test_results_compare_module_self_comparison(results_dir):
    run = synth.write_run(results_dir, skip=("complexity", "dns_latency", "neighbour", "vm_cpu_share"))
    dry = run_module("results_compare", {"path": run, "reference": run}, check=True, diff=True)
    assert not dry.failed and dry.changed and not os.path.exists(os.path.join(run, "compare-xl-synth.csv"))
    out = run_module("results_compare", {"path": run, "reference": run})
    assert not out.failed and out.changed and out["matched"] == 8 and out["beyond_spread"] == []
    driver = [r for r in out["rows"] if r["experiment"] == "drop" and r["location"] == "driver"][0]
    assert driver["processed_pps_ratio"] == 1.0 and driver["processed_pps_exceeds_spread"] is False
    assert "full_rows" not in out
    assert not run_module("results_compare", {"path": run, "reference": run}).changed
    missing = run_module("results_compare", {"path": run, "reference": os.path.join(results_dir, "nope")})
    assert missing.failed and "Reference run directory" in missing["msg"]
