"""The paper's findings judged on synthetic records with known outcomes.

Every finding is given records that reproduce it, records that contradict it
and records that cannot decide it; the numbers are made up (nothing here is a
measurement) and chosen so that the expected verdict follows from the test
each finding states.
"""
import pytest

pytest.importorskip("pandas")

from ansible_collections.xdplab.offload.plugins.module_utils import findings as fd  # noqa: E402
from ansible_collections.xdplab.offload.plugins.module_utils import results as res  # noqa: E402
from lib import synthetic_runs as synth  # noqa: E402
from lib.synthetic_runs import cells  # noqa: E402

NO_NIC = "mode offload needs an offload-capable NIC: the kernel refused to bind the program to xl-f0 (veth)"
M = 1e6


def judged(records, finding_id):
    rows, _quantities, _warnings = res.aggregate(records)
    return dict((f["id"], f) for f in fd.judge_all(rows))[finding_id]


def no_nic(experiment, location, **fields):
    return cells(experiment, location, status="unsupported", reason=NO_NIC, **fields)


def tput(experiment, location, values, **fields):
    return cells(experiment, location, reps=len(values), processed_pps=[v * M for v in values], **fields)


def loop(location, n, values):
    return tput("complexity", location, values, program="loop", n=n)


def dns(location, rate, p50):
    return cells("dns_latency", location, reps=len(p50), program="dns_nxdomain", rate=rate, rtt_us_p50=p50)


def cpu(location, vm, host):
    return cells("vm_cpu_share", location, program="checksum", n=100, cpu_vm_share=vm, cpu_host_share=host)


def neighbour(location, p50, p99):
    return cells("neighbour", location, program="checksum", n=100, rate=1000, rtt_us_p50=p50, rtt_us_p99=p99)


# Per finding: records that reproduce it, contradict it, cannot decide it; and a
# piece of text each verdict's numbers or reason must hold.
CASES = {
    "offload_improves_drop": (
        no_nic("drop", "offload") + tput("drop", "driver", [11, 12, 13]) + tput("drop", "afxdp", [4.0, 4.2, 4.4]),
        "driver 12.0 Mpps (IQR 11.5-12.5, 3 reps) vs afxdp 4.20 Mpps (IQR 4.10-4.30, 3 reps): driver higher, IQRs apart",
        tput("drop", "driver", [4.0, 4.2, 4.4]) + tput("drop", "afxdp", [11, 12, 13]),
        "driver lower, IQRs apart",
        no_nic("drop", "offload") + tput("drop", "driver", [11, 12, 13]),
        "`drop` at `offload`: unsupported (%s)" % NO_NIC),
    "complexity_costs_throughput": (
        loop("driver", 1, [10, 11, 12]) + loop("driver", 100, [1.0, 1.1, 1.2]),
        "complexity loop, 64 B, max rate at driver, throughput: N=1 11.0 Mpps",
        loop("driver", 1, [10, 11, 12]) + loop("driver", 100, [11, 11.5, 12]),
        "IQRs overlap, no difference shown",
        loop("driver", 1, [10, 11, 12]),
        "complexity loop, 64 B, max rate at `driver`: fewer than two N measured"),
    "gain_shrinks_with_task": (
        loop("driver", 1, [11, 12, 13]) + loop("afxdp", 1, [3.9, 4.0, 4.1])
        + loop("driver", 1000, [0.88, 0.9, 0.92]) + loop("afxdp", 1000, [0.79, 0.8, 0.81]),
        "gain of driver over afxdp: N=1 x3.00",
        loop("driver", 1, [1.08, 1.1, 1.12]) + loop("afxdp", 1, [0.99, 1.0, 1.01])
        + loop("driver", 1000, [2.9, 3.0, 3.1]) + loop("afxdp", 1000, [0.99, 1.0, 1.01]),
        "larger at N=1000, ranges apart",
        loop("driver", 1, [11, 12, 13]) + loop("driver", 1000, [0.9, 1.0, 1.1])
        + no_nic("complexity", "offload", program="loop", n=1),
        "location `afxdp` was not in this run's `complexity` experiment"),
    "nic_cpu_overloaded": (
        loop("offload", 1, [14.7, 14.8, 14.9]) + loop("offload", 1000, [0.29, 0.3, 0.31])
        + loop("driver", 1, [11, 12, 13]) + loop("driver", 1000, [0.9, 1.0, 1.1]),
        "driver x0.0833 (range 0.0760-0.0913) vs offload x0.0203 (range 0.0199-0.0207): smaller at offload",
        loop("offload", 1, [14.7, 14.8, 14.9]) + loop("offload", 1000, [4.9, 5.0, 5.1])
        + loop("driver", 1, [11, 12, 13]) + loop("driver", 1000, [0.9, 1.0, 1.1]),
        "larger at offload, ranges apart",
        no_nic("complexity", "offload", program="loop", n=1) + loop("driver", 1, [11, 12, 13])
        + loop("driver", 1000, [0.9, 1.0, 1.1]),
        "`complexity` at `offload`: unsupported (%s)" % NO_NIC),
    "latency_depends_on_rate": (
        dns("driver", 10000, [2.4, 2.5, 2.6]) + dns("driver", 500000, [14, 15, 16]),
        "p50 RTT 15.0 µs (IQR 14.5-15.5, 3 reps) at offered 500 kpps vs 2.50 µs (IQR 2.45-2.55, 3 reps) at "
        "offered 10 kpps (x6.00): IQRs apart, rises",
        dns("driver", 10000, [2.4, 2.5, 2.6]) + dns("driver", 500000, [2.9, 3.0, 3.1]),
        "IQRs apart, but less than x1.50",
        dns("driver", 10000, [2.4, 2.5, 2.6]) + no_nic("dns_latency", "offload", program="dns_nxdomain", rate=10000),
        "at driver: a single rate measured"),
    "latency_before_driver": (
        dns("offload", 10000, [8, 9, 10]) + dns("driver", 10000, [12, 13, 14]),
        "offload/driver x0.692 (range 0.630-0.760): above 0.500",
        dns("offload", 10000, [2.0, 2.1, 2.2]) + dns("driver", 10000, [12, 13, 14]),
        "not wholly above 0.500",
        no_nic("dns_latency", "offload", program="dns_nxdomain", rate=10000) + dns("driver", 10000, [12, 13, 14]),
        "`dns_latency` at `offload`: unsupported (%s)" % NO_NIC),
    "vm_layers_more_potential": (
        tput("vm_drop", "vm_afxdp", [0.30, 0.31, 0.32]) + tput("vm_drop", "vm_driver", [0.50, 0.52, 0.55])
        + tput("vm_drop", "host_driver", [9.0, 9.2, 9.5]) + no_nic("vm_drop", "nic"),
        "host_driver 9.20 Mpps (IQR 9.10-9.35, 3 reps) vs vm_driver 520 kpps (IQR 510-535, 3 reps): host_driver higher",
        tput("vm_drop", "vm_afxdp", [0.50, 0.52, 0.55]) + tput("vm_drop", "vm_driver", [0.30, 0.31, 0.32]),
        "vm_driver lower, IQRs apart",
        # Both processed the whole offered rate: the generator, not the location, set their throughput.
        cells("vm_drop", "vm_driver", rate=50000, processed_pps=[49990, 50000, 50000], rate_pps=50000)
        + cells("vm_drop", "host_driver", rate=50000, processed_pps=[50000, 50000, 50000], rate_pps=50000),
        "both processed the whole offered rate, not compared"),
    "cpu_reduced_or_shifted": (
        cpu("vm_afxdp", 100, [94, 95, 96]) + cpu("vm_driver", 60, [39, 40, 41]) + cpu("host_driver", 1, [69, 70, 71]),
        "shift (VM falls, host rises): shown",
        cpu("vm_driver", 60, [89, 90, 91]) + cpu("host_driver", 1, [69, 70, 71]),
        "shift (VM falls, host rises): not shown by any comparison",
        cpu("vm_driver", 60, [89, 90, 91]) + no_nic("vm_cpu_share", "nic", program="checksum", n=100),
        "`vm_cpu_share` at `nic`: unsupported (%s)" % NO_NIC),
    "nic_delays_neighbour": (
        neighbour("nic", [30, 31, 32], [80, 90, 100]) + neighbour("baseline", [16, 17, 18], [60, 61, 62]),
        "neighbour 64 B, offered 1 kpps: delay at p50 or p99: shown",
        neighbour("nic", [16, 17, 18], [59, 61, 63]) + neighbour("baseline", [16, 17, 18], [60, 61, 62]),
        "delay at p50 or p99: not shown by any comparison",
        no_nic("neighbour", "nic", program="checksum", n=100, rate=1000) + neighbour("baseline", [16, 17, 18], [60, 61, 62]),
        "`neighbour` at `nic`: unsupported (%s)" % NO_NIC),
}


def test_every_finding_of_the_slides_has_cases_for_each_verdict():
    assert [f.id for f in fd.FINDINGS] == list(CASES)
    assert len(fd.FINDINGS) == 9


@pytest.mark.parametrize("finding_id", list(CASES))
def test_records_that_show_the_finding_reproduce_it(finding_id):
    records, text = CASES[finding_id][0:2]
    out = judged(records, finding_id)
    assert (out["verdict"], out["strength"], out["reason"]) == (fd.REPRODUCED, fd.FIRM, None), out
    assert any(text in line for line in out["numbers"]), out["numbers"]


@pytest.mark.parametrize("finding_id", list(CASES))
def test_records_that_contradict_the_finding_do_not_reproduce_it(finding_id):
    records, text = CASES[finding_id][2:4]
    out = judged(records, finding_id)
    assert (out["verdict"], out["strength"]) == (fd.NOT_REPRODUCED, fd.FIRM), out
    assert any(text in line for line in out["numbers"]), out["numbers"]


@pytest.mark.parametrize("finding_id", list(CASES))
def test_records_that_cannot_decide_the_finding_say_why(finding_id):
    records, text = CASES[finding_id][4:6]
    out = judged(records, finding_id)
    assert (out["verdict"], out["strength"]) == (fd.NOT_MEASURABLE, None), out
    assert text in out["reason"], out["reason"]


@pytest.mark.parametrize("finding_id,experiment", [
    ("offload_improves_drop", "drop"), ("complexity_costs_throughput", "complexity"),
    ("gain_shrinks_with_task", "complexity"), ("nic_cpu_overloaded", "complexity"),
    ("latency_depends_on_rate", "dns_latency"), ("latency_before_driver", "dns_latency"),
    ("vm_layers_more_potential", "vm_drop"), ("cpu_reduced_or_shifted", "vm_cpu_share"),
    ("nic_delays_neighbour", "neighbour")])
def test_an_experiment_missing_from_the_matrix_is_named(finding_id, experiment):
    other = [r for r in synth.synthetic_records() if r["experiment"] != experiment]
    out = judged(other, finding_id)
    assert out["verdict"] == fd.NOT_MEASURABLE
    assert out["reason"] == "the `%s` experiment was not in this run's matrix" % experiment


def test_a_single_repetition_orders_single_values_and_is_tentative():
    out = judged(tput("drop", "driver", [1.66]) + tput("drop", "afxdp", [0.245]), "offload_improves_drop")
    assert (out["verdict"], out["strength"]) == (fd.REPRODUCED, fd.TENTATIVE)
    assert out["numbers"] == ["drop drop, 64 B, max rate, throughput: driver 1.66 Mpps (1 rep) vs afxdp 245 kpps (1 rep): "
                              "driver higher, single values ordered (x6.78)"]
    out = judged(tput("drop", "driver", [1.0]) + tput("drop", "afxdp", [1.0]), "offload_improves_drop")
    assert (out["verdict"], out["strength"]) == (fd.NOT_REPRODUCED, fd.TENTATIVE)
    assert out["numbers"][0].endswith("equal, no difference shown")


def test_one_repetition_on_either_side_makes_the_verdict_tentative():
    out = judged(tput("drop", "driver", [11, 12, 13]) + tput("drop", "afxdp", [4.2]), "offload_improves_drop")
    assert (out["verdict"], out["strength"]) == (fd.REPRODUCED, fd.TENTATIVE)


def test_every_step_must_hold_and_a_failing_step_decides():
    records = (tput("drop", "driver", [11, 12, 13]) + tput("drop", "afxdp", [4.0, 4.2, 4.4])
               + tput("drop", "generic", [11.5, 12, 12.5]))
    out = judged(records, "offload_improves_drop")
    assert out["verdict"] == fd.NOT_REPRODUCED
    assert [line.rsplit(": ", 1)[1] for line in out["numbers"]] == [
        "driver higher, IQRs apart (x2.86)", "IQRs overlap, no difference shown"]


def test_zero_loss_throughput_is_judged_beside_the_overload_throughput_when_present():
    records = CASES["offload_improves_drop"][0]
    zero_loss = (cells("zero_loss", "driver", zero_loss_pps=[1.0e6, 1.1e6, 1.2e6])
                 + cells("zero_loss", "afxdp", zero_loss_pps=[2.0e6, 2.1e6, 2.2e6]))
    out = judged(records + zero_loss, "offload_improves_drop")
    assert out["verdict"] == fd.NOT_REPRODUCED
    assert any(line.startswith("zero_loss drop, 64 B, max rate, zero-loss throughput: driver 1.10 Mpps") and line.endswith(
        "driver lower, IQRs apart") for line in out["numbers"])


def test_a_location_measured_at_other_settings_is_named_as_such():
    records = dns("offload", 10000, [8, 9, 10]) + dns("driver", 10000, [12, 13, 14]) + dns("driver", 50000, [20, 21, 22])
    out = judged(records, "latency_before_driver")
    assert out["verdict"] == fd.REPRODUCED
    assert out["not_judged"] == ["`dns_latency` at `offload`: not measured at dns_nxdomain, 64 B, offered 50 kpps"]


def test_findings_on_the_synthetic_run():
    rows, _quantities, _warnings = res.aggregate(synth.synthetic_records())
    verdicts = dict((f["id"], (f["verdict"], f["strength"])) for f in fd.judge_all(rows))
    assert verdicts == {
        "offload_improves_drop": (fd.REPRODUCED, fd.FIRM),
        # checksum N=1000 at generic has one ok repetition.
        "complexity_costs_throughput": (fd.REPRODUCED, fd.TENTATIVE),
        "gain_shrinks_with_task": (fd.REPRODUCED, fd.TENTATIVE),
        "nic_cpu_overloaded": (fd.NOT_MEASURABLE, None),
        "latency_depends_on_rate": (fd.REPRODUCED, fd.FIRM),
        "latency_before_driver": (fd.NOT_MEASURABLE, None),
        "vm_layers_more_potential": (fd.REPRODUCED, fd.FIRM),
        # The synthetic host share falls with the VM's: no shift to the host.
        "cpu_reduced_or_shifted": (fd.NOT_REPRODUCED, fd.FIRM),
        "nic_delays_neighbour": (fd.NOT_MEASURABLE, None),
    }


def test_comparison_rules():
    high, low = fd.Spread(10.0, 9.0, 11.0, 3), fd.Spread(8.0, 7.0, 8.5, 3)
    assert fd.above(high, low) is True and fd.above(low, high) is False
    assert fd.above(high, fd.Spread(10.5, 10.5, 12.0, 3)) is None
    assert fd.ratio(high, low) == (1.25, 9.0 / 8.5, 11.0 / 7.0, 3)
    assert fd.ratio(high, fd.Spread(0.0, 0.0, 1.0, 3)) is None
    assert fd.describe(fd.Spread(12.0e6, 11.5e6, 12.5e6, 3), "pps") == "12.0 Mpps (IQR 11.5-12.5, 3 reps)"
    assert fd.describe(fd.Spread(245000.0, 245000.0, 245000.0, 1), "pps") == "245 kpps (1 rep)"
    assert fd.describe(fd.Spread(2.5, 2.45, 2.55, 2), "µs") == "2.50 µs (IQR 2.45-2.55, 2 reps)"


def test_neighbour_delays_from_other_locations_are_shown_but_not_judged():
    records = (neighbour("vm_driver", [60, 62, 64], [200, 210, 220]) + neighbour("baseline", [16, 17, 18], [60, 61, 62])
               + no_nic("neighbour", "nic", program="checksum", n=100, rate=1000))
    out = judged(records, "nic_delays_neighbour")
    assert (out["verdict"], out["strength"]) == (fd.NOT_MEASURABLE, None)
    assert out["numbers"] == ["context, not judged: neighbour 64 B, offered 1 kpps, p50 RTT: vm_driver 62.0 µs "
                              "(IQR 61.0-63.0, 3 reps) vs baseline 17.0 µs (IQR 16.5-17.5, 3 reps): vm_driver higher, "
                              "IQRs apart (x3.65)"]


def test_zero_loss_rates_over_n_are_judged_with_the_complexity_findings():
    records = loop("driver", 1, [10, 11, 12]) + loop("driver", 100, [1.0, 1.1, 1.2])
    zero_loss = (cells("zero_loss", "driver", program="checksum", n=1, zero_loss_pps=[0.9e6, 1.0e6, 1.1e6])
                 + cells("zero_loss", "driver", program="checksum", n=100, zero_loss_pps=[0.95e6, 1.0e6, 1.05e6])
                 + cells("zero_loss", "driver", zero_loss_pps=[2.0e6, 2.1e6, 2.2e6]))
    assert judged(records, "complexity_costs_throughput")["verdict"] == fd.REPRODUCED
    out = judged(records + zero_loss, "complexity_costs_throughput")
    assert out["verdict"] == fd.NOT_REPRODUCED and out["not_judged"] == []
    assert out["numbers"][-1] == ("zero_loss checksum, 64 B, max rate at driver, zero-loss throughput: N=1 1.00 Mpps "
                                  "(IQR 0.950-1.05, 3 reps) vs N=100 1.00 Mpps (IQR 0.975-1.02, 3 reps): IQRs overlap, "
                                  "no difference shown")


def test_the_same_reason_at_several_locations_is_said_once():
    records = [dict(r, status="failed", reason="traffic: generator exited with status 1")
               for r in tput("drop", "driver", [1, 1]) + tput("drop", "afxdp", [1, 1])] + no_nic("drop", "offload")
    out = judged(records, "offload_improves_drop")
    assert out["verdict"] == fd.NOT_MEASURABLE
    assert out["reason"] == ("`drop` at `afxdp`, `driver`: failed (traffic: generator exited with status 1); "
                             "`drop` at `offload`: unsupported (%s)" % NO_NIC)


def test_groups_that_differ_in_flows_or_queues_are_compared_separately():
    records = [dict(r, flows=64, queues=2) for r in tput("drop", "driver", [11, 12, 13])
               + tput("drop", "afxdp", [4.0, 4.2, 4.4])] + tput("drop", "afxdp", [20, 21, 22])
    rows, _quantities, _warnings = res.aggregate(records, res.GROUP_KEYS + ("flows", "queues"))
    out = dict((f["id"], f) for f in fd.judge_all(rows))["offload_improves_drop"]
    assert out["verdict"] == fd.REPRODUCED
    assert out["numbers"][0].startswith("drop drop, 64 B, max rate, 64 flows, 2 queues, throughput: driver 12.0 Mpps")
    # The afxdp group without flows and queues has no driver to compare with.
    assert out["not_judged"] == ["location `offload` was not in this run's `drop` experiment",
                                 "`drop` at `driver`: not measured at drop, 64 B, max rate"]


def test_latency_rates_from_the_zero_loss_search_are_ordered_by_the_rate_achieved():
    records = (cells("dns_latency", "driver", program="dns_nxdomain", rate=None, rtt_us_p50=[14, 15, 16],
                     rate_pps=[4.9e5, 5.0e5, 5.1e5])
               + cells("dns_latency", "driver", program="dns_nxdomain", rate=10000, rtt_us_p50=[2.4, 2.5, 2.6],
                       rate_pps=10000))
    out = judged(records, "latency_depends_on_rate")
    assert out["verdict"] == fd.REPRODUCED
    assert "p50 RTT 15.0 µs (IQR 14.5-15.5, 3 reps) at rate from the zero-loss search vs 2.50 µs" in out["numbers"][0]
