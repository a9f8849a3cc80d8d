"""results module_utils and the results_summary module on synthetic records.

Expected statistics are worked out by hand (quartiles with linear
interpolation, Student-t 95 % interval of the mean with tabulated t values),
not by calling the code under test.
"""
import csv
import io
import json
import math
import os
import shutil
import tempfile

import pytest

pytest.importorskip("pandas")

from ansible_collections.xdplab.offload.plugins.module_utils import results as res  # noqa: E402
from lib.modrun import run_module  # noqa: E402

# Two-sided 95 % Student-t critical values t(0.975, df), from statistical tables.
T975 = {1: 12.7062047362, 2: 4.30265272975, 3: 3.18244630528, 4: 2.77644510520,
        9: 2.26215716280, 29: 2.04522964213, 100: 1.98397151852}


def record(cell_id, **fields):
    base = {
        "schema": 1, "run_id": "xl-run", "cell_id": cell_id, "experiment": "drop",
        "program": "drop", "n": None, "location": "driver", "mode": "driver", "loader": "object",
        "size": 64, "rate": 0, "repetition": 1, "duration_s": 5, "status": "ok", "reason": None,
        "interfaces": {"dut": "xl-dut0"}, "started_at": "2019-06-24T10:00:00+00:00",
        "provenance": {"kernel": "6.18", "lab": "emulated"},
    }
    base.update(fields)
    return base


@pytest.fixture
def run_dir():
    path = tempfile.mkdtemp(prefix="xl-results-")
    os.mkdir(os.path.join(path, "records"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write(run_dir, name, content):
    with open(os.path.join(run_dir, "records", name), "w", encoding="utf-8") as handle:
        handle.write(content if isinstance(content, str) else json.dumps(content))


def write_records(run_dir, records):
    for rec in records:
        write(run_dir, rec["cell_id"] + ".json", rec)


def standard_run():
    recs = []
    # drop/driver: 5 ok repetitions, written out of order.
    for rep, pps in ((3, 30e6), (1, 10e6), (5, 50e6), (2, 20e6), (4, 40e6)):
        recs.append(record("drop-drop-driver-rep%d" % rep, repetition=rep, processed_pps=pps,
                           sent_packets=int(pps * 5), flagged=True))
    # loop N=10: 4 ok repetitions and one failed one whose number must not count.
    for rep, ns in ((1, 4.0), (2, 1.0), (3, 3.0), (4, 2.0)):
        recs.append(record("complexity-loop-n10-rep%d" % rep, experiment="complexity", program="loop",
                           n=10, repetition=rep, ns_per_run=ns))
    recs.append(record("complexity-loop-n10-rep5", experiment="complexity", program="loop", n=10,
                       repetition=5, ns_per_run=1000.0, status="failed", reason="test run timed out"))
    # loop N=100: a single repetition.
    recs.append(record("complexity-loop-n100-rep1", experiment="complexity", program="loop", n=100,
                       ns_per_run=7.0))
    # offload: unsupported, measured fields absent.
    for rep in (1, 2):
        rec = record("drop-drop-offload-rep%d" % rep, location="offload", mode="offload", repetition=rep,
                     status="unsupported", reason="no offload-capable NIC")
        recs.append(rec)
    return recs


def by_key(rows):
    return dict(((r["experiment"], r["program"], r["n"], r["location"]), r) for r in rows)


# --- statistics ------------------------------------------------------------

@pytest.mark.parametrize("df", sorted(T975))
def test_t_quantile_matches_tables(df):
    assert res.t_quantile(0.975, df) == pytest.approx(T975[df], abs=1e-8)


def test_t_quantile_rejects_nonsense():
    with pytest.raises(ValueError):
        res.t_quantile(0.975, 0)
    with pytest.raises(ValueError):
        res.t_quantile(0.2, 3)


def test_describe_odd_count_exact_quartiles_and_t_interval():
    stats = res.describe([50, 10, 40, 20, 30])
    half = T975[4] * math.sqrt(250.0) / math.sqrt(5)  # s^2 = 1000/4
    assert stats["median"] == 30 and stats["q1"] == 20 and stats["q3"] == 40
    assert stats["mean"] == 30 and stats["min"] == 10 and stats["max"] == 50
    assert stats["ci95_low"] == pytest.approx(30 - half, rel=1e-10)
    assert stats["ci95_high"] == pytest.approx(30 + half, rel=1e-10)
    assert stats["ci95_low"] == pytest.approx(10.36756839, abs=1e-6)


def test_describe_even_count_interpolates_quartiles():
    stats = res.describe([4.0, 1.0, 3.0, 2.0])
    assert (stats["median"], stats["q1"], stats["q3"]) == (2.5, 1.75, 3.25)
    assert stats["ci95_low"] == pytest.approx(0.445739743, abs=1e-8)
    assert stats["ci95_high"] == pytest.approx(4.554260257, abs=1e-8)


def test_describe_single_repetition_has_no_interval():
    stats = res.describe([7.0])
    assert stats["median"] == stats["q1"] == stats["q3"] == stats["min"] == stats["max"] == 7.0
    assert math.isnan(stats["ci95_low"]) and math.isnan(stats["ci95_high"])


def test_describe_two_repetitions_is_wide_not_clipped():
    stats = res.describe([1.0, 3.0])
    # s = sqrt(2), s/sqrt(2) = 1: the interval is mean +- t(0.975, 1).
    assert stats["ci95_low"] == pytest.approx(2 - T975[1], abs=1e-8)
    assert stats["ci95_high"] == pytest.approx(2 + T975[1], abs=1e-8)


def test_describe_no_values_is_all_nan():
    assert all(math.isnan(v) for v in res.describe([]).values())


# --- status ------------------------------------------------------------------

@pytest.mark.parametrize("statuses,expected", [
    (["ok", "ok"], "ok"),
    (["ok", "unsupported"], "unsupported"),
    (["unsupported", "failed", "ok"], "failed"),
    (["failed", "failed"], "failed"),
])
def test_group_status_is_the_worst(statuses, expected):
    recs = [{"status": s, "reason": None if s == "ok" else "r-%s" % s} for s in statuses]
    assert res.group_status(recs)[0] == expected


def test_group_status_joins_distinct_reasons_in_order():
    recs = [{"status": "failed", "reason": "b"}, {"status": "unsupported", "reason": "a"},
            {"status": "failed", "reason": "b"}, {"status": "failed", "reason": None},
            {"status": "ok", "reason": None}]
    assert res.group_status(recs) == ("failed", "b; a; failed without a reason")
    assert res.group_status([{"status": "ok", "reason": None}]) == ("ok", None)


# --- aggregation over a run directory ----------------------------------------

def test_summarize_groups_repetitions_with_exact_statistics(run_dir):
    write_records(run_dir, standard_run())
    out = res.summarize(run_dir)
    assert out["changed"] and out["records"] == 13 and out["groups"] == 4
    assert out["skipped"] == [] and out["warnings"] == []
    with open(os.path.join(run_dir, "summary.csv"), encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # Stable order: experiment, program, n (null first), location, size, rate.
    assert [(r["experiment"], r["n"], r["location"]) for r in rows] == [
        ("complexity", "10", "driver"), ("complexity", "100", "driver"),
        ("drop", "", "driver"), ("drop", "", "offload")]
    loop10, loop100, drop, offload = rows
    assert (loop10["status"], loop10["reason"]) == ("failed", "test run timed out")
    assert (loop10["repetitions"], loop10["repetitions_total"]) == ("4", "5")
    # The failed repetition's 1000 ns is not part of the statistics.
    assert float(loop10["ns_per_run_median"]) == 2.5
    assert float(loop10["ns_per_run_q1"]) == 1.75 and float(loop10["ns_per_run_q3"]) == 3.25
    assert float(loop10["ns_per_run_max"]) == 4.0
    assert float(loop10["ns_per_run_ci95_low"]) == pytest.approx(0.445739743, abs=1e-8)
    assert loop100["ns_per_run_median"] == "7" and loop100["ns_per_run_ci95_low"] == ""
    assert loop100["ns_per_run_ci95_high"] == ""
    assert (drop["status"], drop["reason"], drop["repetitions"]) == ("ok", "", "5")
    assert drop["processed_pps_median"] == "30000000"
    assert drop["processed_pps_q1"] == "20000000" and drop["processed_pps_q3"] == "40000000"
    assert float(drop["processed_pps_ci95_low"]) == pytest.approx(10367568.39, abs=0.01)
    assert float(drop["processed_pps_ci95_high"]) == pytest.approx(49632431.61, abs=0.01)
    assert drop["sent_packets_median"] == "150000000" and drop["sent_packets_min"] == "50000000"
    assert drop["ns_per_run_median"] == ""
    assert (offload["status"], offload["reason"]) == ("unsupported", "no offload-capable NIC")
    assert (offload["repetitions"], offload["repetitions_total"]) == ("0", "2")
    assert offload["processed_pps_median"] == "" and offload["mode"] == "offload"


def test_summary_columns_cover_every_numeric_measured_field(run_dir):
    recs = standard_run()
    recs[0]["rtt_us_p50"] = 2.5          # a field added by a later issue
    recs[0]["cpu_host_share"] = 0.25
    recs[1]["comment"] = "not a number"  # strings are no quantities
    write_records(run_dir, recs)
    out = res.summarize(run_dir)
    header = out["after"].splitlines()[0].split(",")
    for quantity in ("processed_pps", "sent_packets", "ns_per_run", "rtt_us_p50", "cpu_host_share"):
        assert ["%s_%s" % (quantity, s) for s in res.STATISTICS] == \
            header[header.index(quantity + "_median"):header.index(quantity + "_median") + 8]
    # Cell parameters, booleans, nested dicts and strings are not aggregated.
    for name in ("repetition", "duration_s", "schema", "flagged", "interfaces", "provenance", "comment",
                 "size", "rate", "n"):
        assert name + "_median" not in header and name + "_ci95_low" not in header, name
    assert header[:12] == ["experiment", "program", "n", "location", "size", "rate", "status", "reason",
                           "repetitions", "repetitions_total", "mode", "loader"]


def test_n_is_null_safe_and_float_keys_join_int_keys(run_dir):
    write_records(run_dir, [
        record("a1", program="loop", n=10, processed_pps=1.0),
        record("a2", program="loop", n=10.0, repetition=2, processed_pps=3.0),
        record("b1", n=None, processed_pps=5.0),
        record("b2", repetition=2, processed_pps=7.0),  # n null
    ])
    rows = by_key(res.summarize(run_dir)["rows"])
    assert rows[("drop", "loop", 10, "driver")]["processed_pps"] == 2.0
    assert rows[("drop", "drop", None, "driver")]["processed_pps"] == 6.0
    assert rows[("drop", "drop", None, "driver")]["repetitions"] == 2


def test_bad_files_are_skipped_and_named(run_dir):
    write_records(run_dir, standard_run()[:2])
    write(run_dir, "truncated.json", '{"schema": 1, "cell_id": ')
    write(run_dir, "array.json", [1, 2])
    write(run_dir, "schema2.json", record("s2", schema=2))
    write(run_dir, "nostatus.json", record("ns", status=None))
    write(run_dir, "badstatus.json", record("bs", status="maybe"))
    write(run_dir, "nosize.json", dict((k, v) for k, v in record("nz").items() if k != "size"))
    write(run_dir, "strn.json", record("sn", n="ten"))
    write(run_dir, "dup.json", standard_run()[0])
    write(run_dir, ".hidden.json.tmp", "garbage")    # temporary file of a rename: ignored
    write(run_dir, "notes.txt", "not a record")        # not *.json: ignored
    out = res.summarize(run_dir)
    skipped = dict((s["file"], s["reason"]) for s in out["skipped"])
    assert sorted(skipped) == sorted(["truncated.json", "array.json", "schema2.json", "nostatus.json",
                                      "badstatus.json", "nosize.json", "strn.json", "dup.json"])
    assert skipped["truncated.json"].startswith("not valid JSON")
    assert "schema 2" in skipped["schema2.json"]
    assert "maybe" in skipped["badstatus.json"]
    assert "duplicate cell_id drop-drop-driver-rep3" in skipped["dup.json"]
    assert out["records"] == 2 and out["groups"] == 1


def test_failed_and_unsupported_cells_are_listed_with_reasons(run_dir):
    write_records(run_dir, standard_run())
    out = res.summarize(run_dir)
    assert [(c["cell_id"], c["reason"]) for c in out["failed_cells"]] == [
        ("complexity-loop-n10-rep5", "test run timed out")]
    assert [(c["cell_id"], c["reason"]) for c in out["unsupported_cells"]] == [
        ("drop-drop-offload-rep1", "no offload-capable NIC"), ("drop-drop-offload-rep2", "no offload-capable NIC")]


def test_second_run_does_not_rewrite_and_check_mode_writes_nothing(run_dir):
    write_records(run_dir, standard_run())
    target = os.path.join(run_dir, "summary.csv")
    dry = res.summarize(run_dir, write=False)
    assert dry["changed"] and not os.path.exists(target)
    assert res.summarize(run_dir)["changed"]
    inode, mtime = os.stat(target).st_ino, os.stat(target).st_mtime_ns
    again = res.summarize(run_dir)
    assert not again["changed"] and again["before"] == again["after"]
    assert (os.stat(target).st_ino, os.stat(target).st_mtime_ns) == (inode, mtime)
    assert sorted(os.listdir(run_dir)) == ["records", "summary.csv"]  # no temporary file left
    # A new record changes the summary, replaced by a rename (new inode).
    write_records(run_dir, [record("drop-drop-driver-rep6", repetition=6, processed_pps=60e6)])
    assert res.summarize(run_dir)["changed"]
    assert os.stat(target).st_ino != inode


def test_compact_rows_and_table(run_dir):
    write_records(run_dir, standard_run())
    out = res.summarize(run_dir)
    rows = by_key(out["rows"])
    drop = rows[("drop", "drop", None, "driver")]
    assert drop["processed_pps"] == 30e6 and drop["status"] == "ok"
    assert drop["processed_pps_ci95"] == [pytest.approx(10367568.39, abs=0.01),
                                          pytest.approx(49632431.61, abs=0.01)]
    assert rows[("complexity", "loop", 100, "driver")]["ns_per_run_ci95"] is None
    assert "processed_pps" not in rows[("drop", "drop", None, "offload")]
    json.dumps(out["rows"], allow_nan=False)  # no NaN reaches Ansible
    assert "drop drop n=- driver 64B rate=max ok 5/5 processed_pps=30M [10.4M, 49.6M]" in out["table"]
    assert any(line.endswith("(no offload-capable NIC)") for line in out["table"])


def test_duplicate_repetition_in_a_group_warns(run_dir):
    write_records(run_dir, [record("x-object-rep1", processed_pps=1.0),
                            record("x-bcc-rep1", loader="bcc", processed_pps=2.0)])
    out = res.summarize(run_dir)
    assert len(out["warnings"]) == 1 and "repetition 1 more than once" in out["warnings"][0]
    assert out["after"].splitlines()[1].split(",")[11] == "bcc|object"
    split = res.summarize(run_dir, write=False, group_by=res.GROUP_KEYS + ("loader",))
    assert split["groups"] == 2 and split["warnings"] == []


def test_empty_run_writes_header_only(run_dir):
    out = res.summarize(run_dir)
    assert out["groups"] == 0 and out["warnings"] == ["no valid record in %s" % os.path.join(run_dir, "records")]
    assert out["after"] == ",".join(res.summary_columns([])) + "\n"


def test_missing_records_dir_is_an_error(run_dir):
    with pytest.raises(res.ResultsError):
        res.summarize(os.path.join(run_dir, "nope"))
    assert res.available_runs(os.path.dirname(run_dir)).count(os.path.basename(run_dir)) == 1


def test_csv_is_byte_stable_across_file_order(run_dir):
    recs = standard_run()
    write_records(run_dir, recs)
    first = res.summarize(run_dir, write=False)["after"]
    other = tempfile.mkdtemp(prefix="xl-results-")
    try:
        os.mkdir(os.path.join(other, "records"))
        for i, rec in enumerate(reversed(recs)):
            write(other, "%02d.json" % i, rec)
        assert res.summarize(other, write=False)["after"] == first
    finally:
        shutil.rmtree(other, ignore_errors=True)
    assert list(csv.reader(io.StringIO(first)))[1][0] == "complexity"


# --- what the results modules share ----------------------------------------------

def test_update_file_replaces_only_a_changed_file_and_never_in_check_mode(run_dir):
    target = os.path.join(run_dir, "out.csv")

    def update(text, write=True):
        out = res.update_file(target, text, write)
        assert (out["output"], out["after"]) == (target, text)
        return out["changed"], out["before"]

    assert update("a\n", write=False) == (True, None)
    assert not os.path.exists(target)
    assert update("a\n") == (True, None)
    os.utime(target, (1, 1))
    assert update("a\n") == (False, "a\n")
    assert os.stat(target).st_mtime == 1  # an unchanged file is not rewritten
    assert update("b\n") == (True, "a\n")
    with open(target, encoding="utf-8") as handle:
        assert handle.read() == "b\n"
    assert [n for n in os.listdir(run_dir) if n.startswith(".")] == []  # no temporary file left
    with pytest.raises(res.ResultsError):
        res.update_file(os.path.join(run_dir, "nodir", "out.csv"), "a\n")


def test_whole_number_columns_become_integers_and_others_stay():
    frame = res.pd.DataFrame({"size": [64.0, None, 1518.0], "rate": [0.5, 1.0, None]})
    res._whole_number_columns(frame, ["size", "rate"])
    assert str(frame["size"].dtype) == "Int64" and frame["size"].tolist()[0] == 64
    assert str(frame["rate"].dtype) == "float64"


def test_parameter_problem_names_the_first_run_without_records(run_dir):
    parent = os.path.dirname(run_dir)
    gone = os.path.join(parent, "xl-no-such-run")
    assert res.parameter_problem(["experiment"], [("Run", run_dir), ("Reference run", None)]) is None
    assert res.parameter_problem([], [("Run", gone)]) == {
        "msg": "group_by is empty; give at least one record field to group by."}
    problem = res.parameter_problem(res.GROUP_KEYS, [("Run", run_dir), ("Reference run", gone), ("Run", gone)])
    assert problem["msg"].startswith("Reference run directory %s has no records/ directory; available runs in %s: "
                                     % (gone, parent))
    assert problem["path"] == gone and os.path.basename(run_dir) in problem["available_run_ids"]
    lonely = os.path.join(run_dir, "records", "xl-x")
    assert res.parameter_problem(res.GROUP_KEYS, [("Run", lonely)]) == {
        "msg": "Run directory %s has no records/ directory; available runs in %s: none."
               % (lonely, os.path.join(run_dir, "records")),
        "path": lonely, "available_run_ids": []}


def test_module_return_splits_warnings_renames_skipped_and_builds_the_diff():
    result = {"changed": True, "output": "/r/summary.csv", "before": None, "after": "x\n", "full_rows": [1],
              "skipped": [{"file": "a.json", "reason": "r"}], "warnings": ["w1"]}
    warnings, values = res.module_return(result, True, drop=("full_rows",))
    assert warnings == ["w1"]
    assert values == {"changed": True, "output": "/r/summary.csv", "skipped_files": [{"file": "a.json", "reason": "r"}],
                      "diff": {"before": "", "after": "x\n", "before_header": "(absent)",
                               "after_header": "/r/summary.csv"}}
    assert "before" in result and "warnings" in result  # the caller's dict is left alone
    report = {"changed": False, "report_md": "/r/report.md", "before_markdown": "# old", "markdown": "# new",
              "warnings": []}
    warnings, values = res.module_return(report, True, before="before_markdown", after="markdown",
                                         header="report_md")
    assert values["diff"] == {"before": "# old", "after": "# new", "before_header": "/r/report.md",
                              "after_header": "/r/report.md"}
    assert res.module_return(report, False, before="before_markdown", after="markdown") == (
        [], {"changed": False, "report_md": "/r/report.md"})


def test_missing_libraries_names_pandas_only_when_it_does_not_import(monkeypatch):
    assert res.missing_libraries() == []
    error = ImportError("No module named 'pandas'")
    monkeypatch.setattr(res, "HAS_PANDAS", False)
    monkeypatch.setattr(res, "PANDAS_IMPORT_ERROR", error)
    assert res.missing_libraries() == [("pandas", error)]
    assert res.CONTROLLER_PYTHON_HINT.startswith(" Run this module with the controller's Python")


# --- the module ----------------------------------------------------------------

def test_module_check_mode_then_write_then_idempotent(run_dir):
    write_records(run_dir, standard_run())
    write(run_dir, "broken.json", "{")
    target = os.path.join(run_dir, "summary.csv")
    dry = run_module("results_summary", {"path": run_dir}, check=True, diff=True)
    assert not dry.failed and dry.changed and not os.path.exists(target)
    assert dry["diff"]["before"] == "" and dry["diff"]["after"].startswith("experiment,program,n,")
    first = run_module("results_summary", {"path": run_dir})
    assert not first.failed and first.changed and os.path.exists(target)
    assert first["records"] == 13 and first["groups"] == 4 and first["output"] == target
    assert [s["file"] for s in first["skipped_files"]] == ["broken.json"]
    assert "skipped" not in first  # Ansible would take the task for skipped
    assert [c["cell_id"] for c in first["failed_cells"]] == ["complexity-loop-n10-rep5"]
    assert len(first["unsupported_cells"]) == 2
    second = run_module("results_summary", {"path": run_dir})
    assert not second.failed and not second.changed


def test_module_custom_output_and_missing_run(run_dir):
    write_records(run_dir, standard_run())
    output = os.path.join(run_dir, "other.csv")
    out = run_module("results_summary", {"path": run_dir, "output": output})
    assert out.changed and os.path.exists(output) and not os.path.exists(os.path.join(run_dir, "summary.csv"))
    missing = run_module("results_summary", {"path": os.path.join(os.path.dirname(run_dir), "xl-no-such-run")})
    assert missing.failed and "has no records/ directory" in missing["msg"]
    assert os.path.basename(run_dir) in missing["available_run_ids"]
    nodir = run_module("results_summary", {"path": run_dir, "output": os.path.join(run_dir, "nodir", "s.csv")})
    assert nodir.failed and "does not exist" in nodir["msg"]
