"""The zero-loss search (RFC 2544, 26.1) against simulated receivers of known capacity.

The receivers are pure functions: given the rate asked for, they say how many
frames a generator of known maximum rate sent and how many a receiver of known
capacity processed. The search must land within ``resolution`` of the answer
worked out by hand from those capacities.
"""
import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import zero_loss as zl
from ansible_collections.xdplab.offload.plugins.module_utils.zero_loss import ZeroLossError

GENERATOR_MAX = 2000000.0   # pps the simulated generator reaches when asked for "as fast as possible"


def receiver(capacity, base_loss=0.0, generator_max=GENERATOR_MAX, duration=2.0, overload_capacity=None):
    """A trial against a receiver that processes at most ``capacity`` pps and loses ``base_loss`` of
    what it could process at any rate. ``overload_capacity``: what it processes when offered more than
    its capacity (receive livelock when lower), by default its capacity."""
    def trial(target):
        offered = generator_max if target == 0 else min(float(target), generator_max)
        sent = int(round(offered * duration))
        limit = capacity if offered <= capacity or overload_capacity is None else overload_capacity
        processed = int(min(sent, limit * duration) * (1.0 - base_loss))
        return {"target_pps": target, "duration_s": duration, "sent": sent, "processed": processed,
                "received": sent}
    return trial


def run_search(trial, params):
    trials = []
    for _unused in range(100):
        rate = zl.next_rate(trials, params)
        if rate is None:
            return zl.outcome(trials, params), trials
        trials.append(trial(rate))
    raise AssertionError("the search did not stop after 100 trials")


@pytest.mark.parametrize("capacity", [1000.0, 123457.0, 650000.0, 1999000.0])
@pytest.mark.parametrize("resolution", [0.01, 0.05])
def test_lands_within_resolution_below_a_known_capacity(capacity, resolution):
    params = {"resolution": resolution, "max_trials": 40}
    result, trials = run_search(receiver(capacity), params)
    assert result["converged"] and result["done"], result["reason"]
    found = result["zero_loss_pps"]
    # Never above the capacity (a passing trial lost nothing), and within the resolution of it.
    assert found <= capacity
    assert (capacity - found) / capacity <= resolution, (found, capacity)
    # The first trial is the overload trial at the generator's maximum.
    assert trials[0]["target_pps"] == 0
    assert result["overload_processed_pps"] == pytest.approx(capacity, rel=1e-6)
    assert result["reason"].startswith("converged")
    assert [t["offered_pps"] for t in result["trials"]][0] == GENERATOR_MAX


def test_the_overload_throughput_brackets_the_answer_in_three_trials():
    result, trials = run_search(receiver(500000.0), {"resolution": 0.01})
    # overload; the processed rate (passes); one step of 0.9 x resolution above it (fails)
    assert [t["target_pps"] for t in trials] == [0, 500000, int(round(500000 / (1 - 0.009)))]
    assert result["converged"] and result["zero_loss_pps"] == 500000.0


def test_a_receiver_livelocked_under_overload_is_found_by_halving_without_bias():
    # Under overload it processes 100 kpps, below that up to 500 kpps: the guess is far off.
    params = {"resolution": 0.01, "max_trials": 30}
    result, trials = run_search(receiver(500000.0, overload_capacity=100000.0), params)
    rates = [t["target_pps"] for t in trials]
    second = int(round(100000 / (1 - 0.009)))
    # two probes at the guess (both pass), then halving between the highest pass and the overload trial
    assert rates[:4] == [0, 100000, second, int(round((second + GENERATOR_MAX) / 2))]
    assert result["converged"] and 0 <= (500000.0 - result["zero_loss_pps"]) / 500000.0 <= 0.01
    # The interval halves with every further trial: from ~1.9 Mpps wide to 1 % of 500 kpps
    # takes log2(1.9e6 / 5e3) = 8.6, so 9 bisections after the three first trials.
    assert len(trials) == 12


def test_each_trial_is_recorded_with_its_loss():
    result, dummy = run_search(receiver(500000.0), {})
    first = result["trials"][0]
    assert set(first) == set(zl.TRIAL_FIELDS)
    assert first["sent"] == 4000000 and first["processed"] == 1000000
    assert first["loss"] == 3000000 and first["loss_ratio"] == pytest.approx(0.75)
    assert first["passed"] is False and first["received"] == 4000000
    assert all(t["passed"] == (t["loss"] == 0) for t in result["trials"])


def test_tolerance_accepts_a_known_fraction_of_loss():
    # Capacity 400 kpps, 10 % tolerated: a trial passes up to 400k / 0.9 = 444.4 kpps offered.
    capacity, tolerance, resolution = 400000.0, 0.1, 0.01
    answer = capacity / (1 - tolerance)
    result, dummy = run_search(receiver(capacity), {"loss_tolerance": tolerance, "resolution": resolution,
                                                    "max_trials": 30})
    assert result["converged"]
    assert result["zero_loss_pps"] <= answer
    assert (answer - result["zero_loss_pps"]) / answer <= resolution
    assert result["zero_loss_pps"] > capacity * 1.05   # above the capacity: the tolerance counted
    assert any(0 < t["loss"] and t["passed"] for t in result["trials"])


def test_a_receiver_that_always_loses_a_little_passes_only_with_a_tolerance():
    lossy = receiver(300000.0, base_loss=0.002)
    strict, trials = run_search(lossy, {"resolution": 0.02, "max_trials": 30})
    assert strict["zero_loss_pps"] is None and not strict["converged"] and strict["done"]
    assert "lost at every rate" in strict["reason"]
    # It stopped at the floor: the next trial (half the lowest rate tried) would carry fewer than 100 frames.
    assert min(t["offered_pps"] for t in strict["trials"]) / 2 * 2.0 < zl.MIN_TRIAL_FRAMES
    tolerant, dummy = run_search(lossy, {"resolution": 0.02, "loss_tolerance": 0.005, "max_trials": 30})
    assert tolerant["converged"]
    assert (300000.0 - tolerant["zero_loss_pps"]) / 300000.0 <= 0.02


def test_max_trials_exhausted_gives_the_bounds_and_says_so():
    result, trials = run_search(receiver(777777.0, overload_capacity=300000.0),
                                {"resolution": 0.001, "max_trials": 4})
    assert len(trials) == 4
    assert not result["converged"] and result["done"]
    assert "max_trials (4) reached" in result["reason"]
    assert result["low_pps"] <= 777777.0 < result["high_pps"]
    assert result["zero_loss_pps"] == result["low_pps"]


def test_generator_limited_receiver_is_a_lower_bound():
    result, trials = run_search(receiver(5e6), {})
    assert len(trials) == 1 and result["converged"]
    assert result["zero_loss_pps"] == GENERATOR_MAX
    assert "generator, not the receiver" in result["reason"]
    assert result["overload_processed_pps"] is None


def test_start_rate_that_passes_is_followed_by_an_overload_trial():
    params = {"start_rate": 100000, "resolution": 0.02}
    result, trials = run_search(receiver(600000.0), params)
    assert [t["target_pps"] for t in trials[:2]] == [100000, 0]
    assert result["converged"] and (600000.0 - result["zero_loss_pps"]) / 600000.0 <= 0.02


def test_start_rate_that_fails_bisects_below_it():
    result, trials = run_search(receiver(100000.0), {"start_rate": 1000000, "resolution": 0.02})
    assert trials[0]["target_pps"] == 1000000 and trials[1]["target_pps"] == 500000
    assert result["converged"] and result["zero_loss_pps"] <= 100000.0


def test_bounds_use_the_rate_achieved_not_the_rate_asked_for():
    # Asked for 1 Mpps, the generator managed 800 kpps and nothing was lost: 800 kpps is the bound.
    # (the overload trial processed 700 kpps: below the bounds, so no probe there)
    trials = [{"target_pps": 0, "duration_s": 1.0, "sent": 2000000, "processed": 700000},
              {"target_pps": 1000000, "duration_s": 1.0, "sent": 800000, "processed": 800000}]
    out = zl.outcome(trials, {})
    assert out["low_pps"] == 800000.0 and out["high_pps"] == 2000000.0
    assert zl.next_rate(trials, {}) == 1400000


def test_non_monotonic_noise_is_noted_and_the_lower_rate_decides():
    trials = [{"target_pps": 0, "duration_s": 1.0, "sent": 1000000, "processed": 500000},
              {"target_pps": 500000, "duration_s": 1.0, "sent": 500000, "processed": 499990},
              {"target_pps": 600000, "duration_s": 1.0, "sent": 600000, "processed": 600000}]
    out = zl.outcome(trials, {})
    assert out["high_pps"] == 500000.0 and out["low_pps"] is None
    assert "not monotonic" in out["reason"]
    # below the lowest failing rate: one step of 0.9 x resolution under the probe at 500 kpps
    assert zl.next_rate(trials, {}) == 491000


def test_first_rate_is_the_start_rate():
    assert zl.next_rate([], {}) == 0
    assert zl.next_rate([], {"start_rate": 250000}) == 250000
    assert zl.outcome([], {})["done"] is False


@pytest.mark.parametrize("params,match", [
    ({"loss_tolerance": -0.1}, "loss_tolerance"),
    ({"loss_tolerance": 0.9}, "loss_tolerance"),
    ({"resolution": 0}, "resolution"),
    ({"trial_duration": 0}, "trial_duration"),
    ({"max_trials": 1}, "max_trials"),
    ({"max_trials": 3.0}, "max_trials"),
    ({"max_trials": True}, "max_trials"),
    ({"start_rate": -1}, "start_rate"),
    ({"start_rate": "fast"}, "start_rate"),
    ({"rate": 5}, "unknown"),
])
def test_bad_parameters_are_refused_by_name(params, match):
    with pytest.raises(ZeroLossError, match=match):
        zl.next_rate([], params)


@pytest.mark.parametrize("trial,match", [
    ({"target_pps": 0, "duration_s": 1, "sent": 0, "processed": 0}, "sent no frames"),
    ({"target_pps": 0, "duration_s": 0, "sent": 5, "processed": 5}, "duration_s"),
    ({"target_pps": -1, "duration_s": 1, "sent": 5, "processed": 5}, "target_pps"),
    ({"target_pps": 0, "duration_s": 1, "sent": 5.5, "processed": 5}, "sent"),
    ({"target_pps": 0, "duration_s": 1, "sent": 5, "processed": None}, "processed"),
    ("x", "must be a dict"),
])
def test_bad_trials_are_refused(trial, match):
    with pytest.raises(ZeroLossError, match=match):
        zl.outcome([trial], {})


def test_defaults():
    assert zl.parameters() == {"loss_tolerance": 0.0, "trial_duration": 2.0, "resolution": 0.02,
                               "max_trials": 12, "start_rate": 0}


# --- latency at a fraction of the zero-loss rate ------------------------------

def zl_record(cell_id, pps, status="ok", experiment="zero_loss", **keys):
    record = {"cell_id": cell_id, "experiment": experiment, "program": "checksum", "n": 100,
              "location": "driver", "size": 64, "status": status, "zero_loss_pps": pps}
    record.update(keys)
    return record


CELL = {"id": "lat", "program": "checksum", "n": 100, "location": "driver", "size": 64,
        "rate_fraction_of_zero_loss": 0.5}


def test_rate_is_the_fraction_of_the_median_over_repetitions():
    records = [zl_record("a", 100000.0), zl_record("b", 120000.0), zl_record("c", 200000.0),
               zl_record("d", None, status="failed"), zl_record("e", 1e6, location="generic"),
               zl_record("f", 1e6, n=1), {"cell_id": "g", "status": "ok", "program": "checksum"}]
    got = zl.rate_from_zero_loss(records, CELL)
    assert got == {"rate": 60000, "reason": None, "zero_loss_pps": 120000.0, "cells": ["a", "b", "c"]}
    assert zl.rate_from_zero_loss(records, dict(CELL, rate_fraction_of_zero_loss=0.9))["rate"] == 108000


@pytest.mark.parametrize("records,words", [
    ([], "no zero-loss measurement"),
    ([zl_record("a", 1e5, status="failed")], "1 not ok"),
    ([zl_record("a", None)], "found no rate without loss"),
    ([zl_record("a", 1e5), zl_record("b", 1e5, experiment="zl2")], "several experiments"),
    ([zl_record("a", 1.0)], "below 1 packet/s"),
])
def test_no_rate_comes_with_a_reason(records, words):
    got = zl.rate_from_zero_loss(records, CELL)
    assert got["rate"] is None and words in got["reason"]


def test_a_cell_without_a_fraction_is_refused():
    with pytest.raises(ZeroLossError, match="rate_fraction_of_zero_loss"):
        zl.rate_from_zero_loss([], dict(CELL, rate_fraction_of_zero_loss=None))


# --- the filters the experiment role calls --------------------------------------

def test_filters_run_a_whole_search_from_a_matrix_cell():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.xdplab.offload.plugins.filter.zero_loss import FilterModule
    from ansible_collections.xdplab.offload.plugins.module_utils.matrix import expand

    filters = FilterModule().filters()
    cell = expand({"zl": {"programs": ["drop"], "locations": ["driver"], "measure": "zero_loss",
                          "resolution": 0.01, "max_trials": 30}})[0]
    trial = receiver(321000.0)
    trials = []
    rate = filters["zero_loss_next"](None, cell)
    while rate is not None:
        trials.append(trial(rate))
        rate = filters["zero_loss_next"](trials, cell)
    result = filters["zero_loss_outcome"](trials, cell)
    assert result["converged"] and (321000.0 - result["zero_loss_pps"]) / 321000.0 <= 0.01
    assert result["parameters"]["resolution"] == 0.01 and result["parameters"]["max_trials"] == 30
    # A dict of parameters only: an unknown key is refused, not ignored.
    with pytest.raises(AnsibleFilterError, match="xdplab.offload.zero_loss_next: unknown zero-loss parameter"):
        filters["zero_loss_next"]([], {"resolutoin": 0.01})
    with pytest.raises(AnsibleFilterError, match="list of trials"):
        filters["zero_loss_outcome"]("x", {})
    record = dict(zl_record("zl-1", result["zero_loss_pps"]), program="drop", n=None, location="driver")
    latency_cell = dict(CELL, program="drop", n=None)
    assert filters["zero_loss_rate"]([record], latency_cell)["rate"] == int(round(0.5 * result["zero_loss_pps"]))
    with pytest.raises(AnsibleFilterError, match="zero_loss_rate"):
        filters["zero_loss_rate"]([], dict(latency_cell, rate_fraction_of_zero_loss=2))
