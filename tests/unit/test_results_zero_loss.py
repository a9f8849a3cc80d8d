"""The summary's zero_loss_pps column: median and quartiles over repetitions, shown in the table.

Expected statistics are worked out by hand (quartiles with linear interpolation).
"""
import json
import os

import pytest

pytest.importorskip("pandas")

from ansible_collections.xdplab.offload.plugins.module_utils import results as res  # noqa: E402
from lib.zero_loss_records import zero_loss_record  # noqa: E402


def zl_record(rep, capacity, status="ok", location="driver"):
    return zero_loss_record(rep, capacity, status=status, location=location)


def test_zero_loss_pps_is_aggregated_like_the_other_columns(tmp_path):
    capacities = {1: 100000.0, 2: 300000.0, 3: 200000.0, 4: 400000.0}
    records = [zl_record(rep, cap) for rep, cap in capacities.items()]
    records.append(zl_record(5, 900000.0, status="failed"))   # not ok: not in the statistics
    os.mkdir(str(tmp_path / "records"))
    for record in records:
        (tmp_path / "records" / (record["cell_id"] + ".json")).write_text(json.dumps(record))
    found = sorted(r["zero_loss_pps"] for r in records[:4])
    # Each search lands within 1 % below its capacity.
    assert all(0 <= (c - f) / c <= 0.01 for c, f in zip(sorted(capacities.values()), found))

    rows, quantities, warnings = res.aggregate(records)
    assert warnings == [] and len(rows) == 1
    row = rows[0]
    # The column sits beside the overload throughput, and the trials (a list) are no column.
    assert quantities.index("zero_loss_pps") == quantities.index("processed_pps") + 1
    assert not any(q.startswith("zero_loss_trials") or q.startswith("zero_loss_converged") for q in quantities)
    a, b, c, d = found
    assert row["zero_loss_pps_median"] == pytest.approx((b + c) / 2)
    # Type-7 quartiles of four values: q1 at position 0.75, q3 at 2.25.
    assert row["zero_loss_pps_q1"] == pytest.approx(a + 0.75 * (b - a))
    assert row["zero_loss_pps_q3"] == pytest.approx(c + 0.25 * (d - c))
    assert row["repetitions"] == 4 and row["repetitions_total"] == 5
    assert row["processed_pps_median"] == pytest.approx(250000.0)

    summary = res.summarize(str(tmp_path))
    header = summary["after"].splitlines()[0].split(",")
    assert "zero_loss_pps_median" in header and "zero_loss_pps_q1" in header and "zero_loss_pps_q3" in header
    assert summary["rows"][0]["zero_loss_pps"] == pytest.approx((b + c) / 2)
    assert any("zero_loss_pps" in line for line in summary["table"])


def test_a_search_without_a_result_leaves_the_cell_empty_not_zero():
    lossy = zl_record(1, 100000.0)
    lossy.update(zero_loss_pps=None)
    rows, quantities, dummy = res.aggregate([lossy, zl_record(2, 100000.0, location="generic")])
    by_location = dict((r["location"], r) for r in rows)
    assert by_location["generic"]["zero_loss_pps_median"] > 0
    assert by_location["driver"]["zero_loss_pps_median"] != by_location["driver"]["zero_loss_pps_median"]  # NaN
