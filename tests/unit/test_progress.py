# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lines the xdplab.offload.lab callback prints: one per finished cell, the live rate line.

Pure formatting (module_utils/progress.py) on records shaped like the experiment role's; the
numbers are made up for the test, nothing here is a measurement.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import progress as pg

VM_DROP = {"experiment": "vm_drop", "program": "drop", "n": None, "location": "vm_driver", "repetition": 2,
           "rate": 100000, "status": "ok", "processed_pps": 65200.0, "sent_packets": 1000000,
           "lost_packets": 1000, "cpu_host_share": 60.2, "cpu_vm_share": 49.8}


def cell(record, index=12, total=78, started=0.0, resumed=0, **extra):
    return dict({"index": index, "total": total, "run_id": "r1", "started": started, "resumed": resumed,
                 "record": record}, **extra)


def test_the_issue_example_line():
    # 12 cells in 842 s (14:02), none kept: 66 left at 70.2 s each = 77.2 min.
    assert pg.cell_line(cell(VM_DROP), now=842.0) == (
        "cell 12/78 vm_drop vm_driver rep 2: 65.2 kpps processed, loss 0.1 %, host 60 % / VM 50 %"
        " · 14:02 elapsed, ~1 h 17 min left")


def test_the_time_left_ignores_cells_kept_from_an_earlier_run():
    # 10 of the 12 were kept: the 2 measured ones took 421 s each; 66 left.
    line = pg.cell_line(cell(VM_DROP, resumed=10), now=842.0)
    assert line.endswith("· 14:02 elapsed, ~7 h 43 min left")


def test_only_kept_cells_so_far_give_no_estimate():
    line = pg.cell_line(cell(VM_DROP, index=3, resumed=3, kept=True), now=5.0)
    assert line == ("cell 3/78 vm_drop vm_driver rep 2: kept from an earlier run (65.2 kpps processed, loss 0.1 %,"
                    " host 60 % / VM 50 %) · 0:05 elapsed, time left unknown yet")


def test_the_last_cell_has_no_time_left_and_long_runs_show_hours():
    assert pg.cell_line(cell(VM_DROP, index=78), now=3 * 3600 + 62).endswith("· 3:01:02 elapsed")


def test_a_cell_without_the_run_start_has_no_times():
    assert pg.cell_line(cell(VM_DROP, started=None)).endswith("host 60 % / VM 50 %")


def test_unsupported_and_failed_cells_show_their_status_and_short_reason():
    unsupported = dict(VM_DROP, location="nic", status="unsupported",
                       reason="Deploy the program at the location: mode offload needs an offload-capable NIC; xl-dut0 "
                              "is a veth device, whose driver cannot run a BPF program itself (no offload-capable NIC)")
    line = pg.cell_line(cell(unsupported, index=1, total=9), now=10.0)
    assert line.startswith("cell 1/9 vm_drop nic rep 2: unsupported: mode offload needs an offload-capable NIC;")
    assert "Deploy the program" not in line and "..." in line
    reason = line.split("unsupported: ", 1)[1].split(" · ")[0]
    assert len(reason) == pg.REASON_CHARS
    failed = dict(VM_DROP, status="failed", reason="xl-g1 became unreachable during the cell:\n  ssh timeout")
    assert pg.record_summary(failed) == "failed: xl-g1 became unreachable during the cell: ssh timeout"
    assert pg.record_summary(dict(VM_DROP, status="failed", reason=None)) == "failed: no reason given"


def test_latency_cells_show_rtt_p50_p99_and_their_rate():
    record = {"experiment": "dns_latency", "program": "dns_nxdomain", "n": None, "location": "driver",
              "rate": 50000, "repetition": 1, "status": "ok", "rtt_us_p50": 2.2, "rtt_us_p99": 3310.0,
              "loss": 0.0, "processed_pps": 50000.0, "cpu_host_share": 40.0, "cpu_vm_share": None}
    assert pg.cell_line(cell(record, index=2, total=6, started=None)) == (
        "cell 2/6 dns_latency dns_nxdomain driver 50 kpps rep 1: rtt p50 2.2 µs / p99 3.31 ms, loss 0.0 %, host 40 %")


def test_complexity_cells_name_program_and_n_and_the_zero_loss_rate_shows():
    record = {"experiment": "complexity", "program": "checksum", "n": 100, "location": "generic",
              "repetition": 1, "status": "ok", "processed_pps": 2111705.2, "sent_packets": 9376256,
              "lost_packets": 5152609}
    assert pg.record_summary(record) == "2.11 Mpps processed, loss 55.0 %"
    assert pg.cell_name(record) == "complexity checksum N=100 generic rep 1"
    assert pg.record_summary(dict(record, zero_loss_pps=950.0, sent_packets=0)).startswith(
        "zero-loss 950 pps, 2.11 Mpps processed")


def test_a_record_without_numbers_still_gives_a_line():
    assert pg.cell_line(cell({"status": "ok"}, index=1, total=1, started=None)) == "cell 1/1 ? ?: ok"


@pytest.mark.parametrize("bad", [None, "x", {"index": 0, "total": 3}, {"index": 4, "total": 3},
                                 {"index": True, "total": 3}, {"index": 1, "total": "many"}])
def test_bad_cells_are_refused(bad):
    with pytest.raises(pg.ProgressError):
        pg.cell_line(bad)


@pytest.mark.parametrize("pps, text", [(5.12e6, "5.12 Mpps"), (65200, "65.2 kpps"), (950, "950 pps"),
                                       (1e3, "1 kpps"), (0, "0 pps")])
def test_rates_have_three_significant_digits(pps, text):
    assert pg.rate(pps) == text


@pytest.mark.parametrize("seconds, text", [(40.4, "~40 s left"), (1260, "~21 min left"),
                                           (3900, "~1 h 05 min left"), (-3, "~0 s left")])
def test_time_left(seconds, text):
    assert pg.time_left(seconds) == text


def test_rate_line_like_xdp_bench():
    assert pg.rate_line({"elapsed_s": 12.4, "duration_s": 30, "sent": 61e6, "pps": 5.12e6}) == \
        "  12/30 s  5.12 Mpps offered"


@pytest.mark.parametrize("progress", [
    {"elapsed_s": 1, "duration_s": 4.9, "sent": 1, "pps": 1e6},       # window too short
    {"elapsed_s": 1, "duration_s": 30, "sent": 1},                     # no rate
    {"elapsed_s": "soon", "duration_s": 30, "sent": 1, "pps": 1e6},    # garbled
    {"elapsed_s": 1, "duration_s": 30, "sent": 1, "pps": -5},
    [1, 2], None, "text"])
def test_rate_line_is_none_for_short_windows_and_garbage(progress):
    assert pg.rate_line(progress) is None


def test_remaining_is_shared_with_the_progress_filter():
    # The filter's estimate and the callback's both come from remaining_s.
    assert pg.remaining_s([None] * 10, 5, 0, 50.0) == (50.0, False)
    assert pg.remaining_s([None] * 10, 5, 5, 50.0) == (None, False)
    assert pg.remaining_s([10.0] * 4, 2, 0, 30.0) == (2 * 10.0 + 2 * 5.0, False)
    assert pg.remaining_s([10.0] * 4, 0, 0, None) == (40.0, True)
    assert pg.progress_line(10, 6, started=0, now=50) == "cell 6 of 10: elapsed 0:00:50, remaining ~0:00:50"


def test_numbers_written_as_text_are_read_and_nan_is_not_a_number():
    record = dict(VM_DROP, processed_pps="7.2e6", cpu_host_share=float("nan"), cpu_vm_share="x")
    assert pg.record_summary(record) == "7.2 Mpps processed, loss 0.1 %"


def test_the_time_left_follows_the_cells_done_not_the_index():
    # The latency cells run last but have lower indexes: 12 of 22 done when cell 19 finishes.
    line = pg.cell_line(cell(VM_DROP, index=19, total=22), now=120.0, done=12)
    assert line.startswith("cell 19/22 ") and line.endswith("· 2:00 elapsed, ~2 min left")  # 10 left x 10 s
    assert pg.cell_line(cell(VM_DROP, index=13, total=22), now=220.0, done=22).endswith("· 3:40 elapsed")
