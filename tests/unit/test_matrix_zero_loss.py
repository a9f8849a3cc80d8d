"""The matrix's zero-loss search cells and latency cells at fractions of the zero-loss rate."""
import pytest

from ansible_collections.xdplab.offload.plugins.module_utils.matrix import MatrixError, check_cell, expand

ZL = {"programs": ["drop", "checksum"], "n": [1, 100], "locations": ["driver", "generic"], "measure": "zero_loss"}
LAT = {"programs": ["checksum"], "n": [100], "locations": ["driver"], "measure": "latency", "duration": 3,
       "rates_fraction_of_zero_loss": [0.1, 0.5, 0.9]}


def test_zero_loss_cells_carry_the_search_parameters_with_defaults():
    cells = expand({"zero_loss": ZL})
    assert len(cells) == 2 * (1 + 2)      # drop without N, checksum with N in {1, 100}; two locations
    cell = [c for c in cells if c["program"] == "checksum" and c["n"] == 100 and c["location"] == "driver"][0]
    assert cell["measure"] == "zero_loss"
    assert (cell["loss_tolerance"], cell["trial_duration"], cell["resolution"], cell["max_trials"],
            cell["start_rate"]) == (0.0, 2.0, 0.02, 12, 0)
    assert cell["rate"] == 0
    # The longest the search measures: the progress line plans with it.
    assert cell["duration"] == 24
    assert cell["id"] == "zero_loss-checksum-n100-driver-s64-zero_loss-lt0-td2-res0.02-mt12-sr0-rep1"
    assert all(check_cell(dict(c)) == c for c in cells)


def test_zero_loss_ids_change_with_every_search_parameter():
    base = dict(ZL, programs=["drop"], locations=["driver"])
    one = expand({"z": base})[0]["id"]
    variants = [dict(base, loss_tolerance=0.001), dict(base, trial_duration=5), dict(base, resolution=0.05),
                dict(base, max_trials=20), dict(base, start_rate=1000000), dict(base, sizes=[128])]
    ids = {one} | {expand({"z": v})[0]["id"] for v in variants}
    assert len(ids) == len(variants) + 1
    # int or float, the same id
    assert expand({"z": dict(base, trial_duration=2, resolution=0.02)})[0]["id"] == one


def test_zero_loss_experiments_come_first_so_latency_cells_find_their_rate():
    cells = expand({"a_latency": LAT, "zero_loss": ZL, "b_drop": {"programs": ["drop"], "locations": ["driver"]}})
    order = [c["experiment"] for c in cells]
    assert order.index("a_latency") > max(i for i, e in enumerate(order) if e == "zero_loss")
    assert order[-1] == "b_drop"


def test_latency_fractions_become_cells_with_a_fraction_and_no_rate():
    cells = expand({"lat": dict(LAT, repetitions=2)})
    assert [(c["rate_fraction_of_zero_loss"], c["repetition"]) for c in cells] == [
        (0.1, 1), (0.1, 2), (0.5, 1), (0.5, 2), (0.9, 1), (0.9, 2)]
    assert all(c["rate"] is None for c in cells)
    assert cells[2]["id"] == "lat-checksum-n100-driver-s64-f0.5-d3-latency-rep1"
    assert len({c["id"] for c in cells}) == len(cells)
    assert all(check_cell(dict(c)) == c for c in cells)
    # an exclusion can name the fraction
    kept = expand({"lat": LAT}, exclude=[{"rate_fraction_of_zero_loss": 0.9}])
    assert [c["rate_fraction_of_zero_loss"] for c in kept] == [0.1, 0.5]


@pytest.mark.parametrize("spec,key,rule", [
    (dict(ZL, resolution=0), "resolution", "above 0"),
    (dict(ZL, resolution=0.9), "resolution", "at most 0.5"),
    (dict(ZL, loss_tolerance=-0.01), "loss_tolerance", "from 0"),
    (dict(ZL, loss_tolerance="0"), "loss_tolerance", "from 0"),
    (dict(ZL, max_trials=1), "max_trials", "integer from 2"),
    (dict(ZL, max_trials=2.5), "max_trials", "integer from 2"),
    (dict(ZL, trial_duration=0), "trial_duration", "above 0"),
    (dict(ZL, trial_duration=600, max_trials=64), "trial_duration", "at most 3600"),
    (dict(ZL, start_rate=-5), "start_rate", "packets per second"),
    (dict(ZL, start_rate=float("nan")), "start_rate", "packets per second"),
    (dict(ZL, rates=[1000]), "rates", "give start_rate"),
    (dict(ZL, duration=5), "duration", "trial_duration"),
    (dict(LAT, resolution=0.1), "resolution", "only with measure zero_loss"),
    (dict(LAT, rates_fraction_of_zero_loss=[0]), "rates_fraction_of_zero_loss", "above 0"),
    (dict(LAT, rates_fraction_of_zero_loss=[1.5]), "rates_fraction_of_zero_loss", "at most 1"),
    (dict(LAT, rates_fraction_of_zero_loss=["half"]), "rates_fraction_of_zero_loss", "above 0"),
    (dict(LAT, rates=[1000]), "rates_fraction_of_zero_loss", "not both"),
    (dict(LAT, measure="throughput"), "rates_fraction_of_zero_loss", "only for measure latency"),
])
def test_bad_search_values_are_refused_naming_experiment_key_and_rule(spec, key, rule):
    with pytest.raises(MatrixError) as err:
        expand({"exp1": spec})
    msg = str(err.value)
    assert "experiment exp1" in msg and key in msg and rule in msg, msg


def test_check_cell_refuses_tampered_search_cells():
    zl_cell = expand({"z": ZL})[0]
    lat_cell = expand({"lat": LAT})[0]
    for cell, key, value, match in [
            (zl_cell, "resolution", 2, "resolution"),
            (zl_cell, "duration", 5, "trial_duration x max_trials"),
            (zl_cell, "max_trials", "12; id", "max_trials"),
            (lat_cell, "rate_fraction_of_zero_loss", 3, "at most 1"),
            (lat_cell, "rate", 1000, "rate is then null"),
            (lat_cell, "loss_tolerance", 0.1, "only with measure zero_loss")]:
        with pytest.raises(MatrixError, match=match):
            check_cell(dict(cell, **{key: value}))
    with pytest.raises(MatrixError, match="start_rate missing"):
        check_cell(dict((k, v) for k, v in zl_cell.items() if k != "start_rate"))
    with pytest.raises(MatrixError, match="must be a number unless"):
        check_cell(dict((k, v) for k, v in lat_cell.items() if k != "rate_fraction_of_zero_loss"))
    # A changed fraction no longer matches its id.
    with pytest.raises(MatrixError, match="id of the cell"):
        check_cell(dict(lat_cell, rate_fraction_of_zero_loss=0.2))
