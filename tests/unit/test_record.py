"""record.py: a cell's record from the cell module's parts - fields, derived values, status, checks."""
import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import record

CELL = {"id": "drop-driver-64-0-r1", "experiment": "drop", "program": "drop", "n": None, "location": "driver",
        "size": 64, "rate": 0, "duration": 2, "repetition": 1}
RUN = {"run_id": "r1", "loader": "object", "lab": "emulated", "collection_version": "0.4.0"}
LOC = {"kind": "xdp", "host": "localhost", "interface": "xl-dut0", "provenance": {"hypervisor": "qemu-tcg 7.2"}}


def counters(seen, dropped=None):
    out = record.zero_counters()
    out["seen"] = {"packets": seen, "bytes": seen * 60}
    out["dropped"] = {"packets": seen if dropped is None else dropped, "bytes": 0}
    return out


def usage(busy=150.0, host=None, vm=None, napi_ns=2000000000, window=2.5):
    return {"window_s": window, "busy_pct": busy, "host_share_pct": host, "vm_share_pct": vm,
            "processes": {"napi": {"cpu_pct": 80.0, "cpu_ns": napi_ns, "pids": [12]}}}


def parts(seen=10000000, sent=12000000, cpu_s=1.0, testrun=None):
    armed = {"deploy": {"mode": "driver"}, "prog": {"mode": "driver", "tag": "abc", "program_hash": "h"},
             "dut_before": {"stats": {"rx_packets": 5}, "mac": "02:00:00:00:00:02",
                            "driver": {"driver": "veth", "firmware_version": ""}}}
    window = {"traffic": {"packets_sent": sent, "rate_pps": sent / 2.0, "offered_rate_pps": sent / 2.0,
                          "duration_s": 2.0, "cpu_s": cpu_s},
              "usage": usage(), "lg": {"name": "xl-lg0", "before": {"stats": {"tx_packets": 1}},
                                       "after": {"stats": {"tx_packets": sent + 1}}}}
    collected = {"counters": counters(seen), "dut_after": {"stats": {"rx_packets": seen + 5}}}
    if testrun:
        collected["testrun"] = testrun
    return armed, window, collected


def test_an_ok_throughput_record_derives_rates_loss_and_cost_per_packet():
    armed, window, collected = parts(testrun={"ns_per_run": {"median": 31.5, "min": 30.0}})
    rec = record.build(CELL, RUN, LOC, armed, window, collected, started_at="a", finished_at="b", wall_s=3.1,
                       facts={"kernel": "6.1", "cpu_model": "x", "hostname": "h"})
    assert record.validate(rec) is None
    assert rec["status"] == "ok" and rec["reason"] is None
    assert rec["processed_pps"] == 5000000.0
    assert rec["lost_packets"] == 2000000
    assert rec["ns_per_packet"] == 200.0  # 2e9 ns of the NAPI thread over 1e7 packets
    assert rec["ns_per_run"] == 31.5 and rec["testrun"]["min"] == 30.0
    assert rec["interfaces"]["dut"]["stats"] == {"rx_packets": 10000000}
    assert rec["interfaces"]["lg"]["stats"] == {"tx_packets": 12000000}
    # the generator's own second over a 2.5 s window (40 %) is not the DUT's work
    assert rec["cpu_generator_pct"] == 40.0 and rec["cpu_host_share"] == 110.0
    assert rec["provenance"]["hypervisor"] == "qemu-tcg 7.2" and rec["provenance"]["nic_driver"] == "veth"
    assert rec["mode"] == "driver" and rec["duration_s"] == 2


def test_a_generator_elsewhere_leaves_the_host_share_alone():
    armed, window, collected = parts()
    rec = record.build(CELL, RUN, LOC, armed, window, collected, generator_local=False)
    assert rec["cpu_host_share"] == 150.0


def test_no_packets_means_no_cost_per_packet_rather_than_a_division_by_zero():
    armed, window, collected = parts(seen=0)
    rec = record.build(CELL, RUN, LOC, armed, window, collected)
    assert rec["ns_per_packet"] is None and rec["processed_pps"] == 0.0


def test_a_latency_record_takes_its_cost_from_the_sampler_per_query():
    armed, window, collected = parts()
    window["traffic"] = {"packets_sent": 20000, "rate_pps": 10000.0, "duration_s": 2.0, "sent": 20000,
                         "received": 19990, "lost": 10, "loss": 0.0005, "rtt_us_p50": 12.0, "rtt_us_p99": 40.0,
                         "cpu_s": 0.5, "method": "af_xdp"}
    window["usage"]["ns_per_packet"] = {"processes": {"napi": 900.0, "afxdp": 0.0}}
    rec = record.build(dict(CELL, measure="latency", experiment="dns_latency"), RUN, LOC, armed, window, collected)
    assert rec["rtt_us_p50"] == 12.0 and rec["loss"] == 0.0005 and rec["received"] == 19990
    assert rec["ns_per_packet"] == 900.0
    assert rec["cpu_client_pct"] == 20.0 and "cpu_generator_pct" not in rec
    assert rec["latency_client"]["method"] == "af_xdp"


def test_a_neighbour_baseline_records_zeros_for_the_absent_workload():
    armed, window, collected = parts()
    window.pop("traffic")
    window["probe"] = {"rtt_us_p50": 30.0, "sent": 2000, "received": 2000, "loss": 0.0, "rate_pps": 1000.0,
                       "cpu_s": 0.1}
    window["neighbour"] = {"mode": "generic", "prog_tag": "t"}
    collected["counters"] = record.zero_counters()
    rec = record.build(dict(CELL, measure="neighbour", experiment="neighbour", location="baseline"), RUN,
                       dict(LOC, kind="none"), armed, window, collected)
    assert rec["sent_packets"] == 0 and rec["rate_pps"] == 0.0
    assert rec["probe_sent"] == 2000 and rec["rtt_us_p50"] == 30.0
    assert rec["neighbour"]["mode"] == "generic"


@pytest.mark.parametrize("error, status", [
    ("deploy at offload: mode offload needs an offload-capable NIC (e.g. a Netronome Agilio)", "unsupported"),
    ("deploy at offload: the NIC refused to run drop offloaded on eth1: too big", "unsupported"),
    ("collect at afxdp: the AF_XDP worker (pid 7) on xl-dut0 died during the cell", "failed"),
])
def test_a_cell_that_did_not_complete_records_why_and_no_measurement(error, status):
    armed, window, collected = parts()
    rec = record.build(CELL, RUN, LOC, armed, window, collected, error=error)
    assert rec["status"] == status and rec["reason"] == error
    assert "processed_pps" not in rec
    assert record.validate(rec) is None


def test_an_afxdp_record_carries_the_workers_own_view():
    armed, window, collected = parts()
    armed["worker"] = {"bind_mode": "copy", "fallback": None}
    collected["afxdp"] = {"counters": counters(1000), "cpu_ns": 50000, "kernel_counters": {"rx": 1000}}
    rec = record.build(dict(CELL, location="afxdp"), RUN, dict(LOC, kind="afxdp"), armed, window, collected)
    assert rec["afxdp"]["bind_mode"] == "copy" and rec["afxdp"]["worker_ns_per_packet"] == 50.0


@pytest.mark.parametrize("broken, reason", [
    ({"schema": 2}, "unsupported schema"),
    ({"status": "great"}, "status"),
    ({"cell_id": ""}, "cell_id"),
    ({"size": "64"}, "size"),
])
def test_validate_names_what_is_wrong(broken, reason):
    armed, window, collected = parts()
    rec = dict(record.build(CELL, RUN, LOC, armed, window, collected), **broken)
    assert reason in record.validate(rec)


def test_distribution_cells_keep_flows_and_queues_and_group_by_them():
    from ansible_collections.xdplab.offload.plugins.module_utils import matrix, results
    cells = matrix.expand({"distribution": {"programs": ["drop"], "locations": ["driver"], "flows": [1, 64],
                                            "queues": [1, 2], "duration": 2}})
    assert [c["id"] for c in cells] == ["distribution-drop-driver-s64-fl%d-q%d-r0-d2-rep1" % fq
                                        for fq in ((1, 1), (1, 2), (64, 1), (64, 2))]
    armed, window, collected = parts()
    recs = [record.build(c, RUN, LOC, armed, window, collected) for c in cells]
    assert [(r["flows"], r["queues"]) for r in recs] == [(1, 1), (1, 2), (64, 1), (64, 2)]
    assert results.run_group_keys(recs) == results.GROUP_KEYS + ("flows", "queues")
    assert results.run_group_keys([record.build(dict(CELL), RUN, LOC, armed, window, collected)]) == results.GROUP_KEYS
    rows, quantities, warnings = results.aggregate(recs, results.run_group_keys(recs))
    assert len(rows) == 4 and not warnings


@pytest.mark.parametrize("key, value", [("flows", 0), ("flows", "64"), ("queues", 65), ("queues", True)])
def test_the_matrix_refuses_distribution_values_out_of_bounds(key, value):
    from ansible_collections.xdplab.offload.plugins.module_utils import matrix
    with pytest.raises(matrix.MatrixError):
        matrix.expand({"distribution": {"programs": ["drop"], "locations": ["driver"], key: [value]}})


def test_a_zero_loss_record_takes_its_throughput_from_the_overload_trial_passed_or_not():
    trials = [{"target_pps": 0, "duration_s": 2.0, "sent": 2000, "processed": 2000, "passed": True}]
    rec = record.build(dict(CELL, measure="zero_loss", experiment="zero_loss"), RUN, LOC,
                       search={"zero_loss_pps": 1000.0, "trials": trials, "converged": True})
    assert rec["processed_pps"] == 1000.0 and rec["zero_loss_pps"] == 1000.0 and rec["zero_loss_trials"] == trials
