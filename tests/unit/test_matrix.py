"""The experiment matrix: cartesian product, N collapsing, exclusions, stable ids."""
import pytest

from ansible_collections.xdplab.offload.plugins.module_utils.matrix import MatrixError, cell_id, expand

EXPERIMENTS = {
    "complexity": {"programs": ["loop", "checksum", "drop"], "n": [1, 10], "locations": ["driver", "generic"],
                   "repetitions": 2, "duration": 3, "testrun": True},
    "drop": {"programs": ["drop"], "locations": ["driver", "generic", "offload"], "sizes": [64, 1500]},
}


def test_product_collapses_n_for_programs_without_it():
    cells = expand({"complexity": EXPERIMENTS["complexity"]})
    # loop and checksum: 2 N x 2 locations x 2 reps each; drop: 1 x 2 x 2.
    assert len(cells) == 8 + 8 + 4
    assert {c["n"] for c in cells if c["program"] == "drop"} == {None}
    assert all(c["duration"] == 3 and c["testrun"] is True for c in cells)


def test_ids_are_stable_unique_and_readable():
    first = expand(EXPERIMENTS)
    second = expand(dict(reversed(list(EXPERIMENTS.items()))))
    assert [c["id"] for c in first] == [c["id"] for c in second]
    assert len({c["id"] for c in first}) == len(first)
    assert "complexity-loop-n10-generic-s64-r0-d3-tr-rep2" in {c["id"] for c in first}
    assert "drop-drop-offload-s1500-r0-d10-rep1" in {c["id"] for c in first}


def test_exclusions_drop_matching_cells_only():
    cells = expand(EXPERIMENTS, exclude=[{"location": "offload", "size": 1500}, {"program": "checksum"}])
    ids = {c["id"] for c in cells}
    assert "drop-drop-offload-s1500-r0-d10-rep1" not in ids
    assert "drop-drop-offload-s64-r0-d10-rep1" in ids
    assert not any(c["program"] == "checksum" for c in cells)


def test_only_selects_experiments():
    assert {c["experiment"] for c in expand(EXPERIMENTS, only=["drop"])} == {"drop"}


@pytest.mark.parametrize("bad,match", [
    ({"x": {"programs": ["drop"]}}, "locations"),
    ({"x": {"programs": [], "locations": ["driver"]}}, "empty"),
    ({"x": {"programs": ["drop"], "locations": ["driver"], "repetitions": 0}}, "repetitions"),
    ([1, 2], "dict"),
])
def test_bad_descriptions_are_clear_errors(bad, match):
    with pytest.raises(MatrixError, match=match):
        expand(bad)


def test_bad_exclusion_is_an_error():
    with pytest.raises(MatrixError, match="exclusion"):
        expand(EXPERIMENTS, exclude=[{}])


def test_ids_cover_every_parameter_that_changes_the_measurement():
    base = {"programs": ["checksum"], "n": [100], "locations": ["vm_driver"], "rates": [50000], "sizes": [64],
            "duration": 3, "measure": "neighbour", "probe_rate": 1000}
    one = expand({"nb": base})[0]
    assert one["id"] == "nb-checksum-n100-vm_driver-s64-r50000-d3-neighbour-p1000-rep1"
    variants = [dict(base, duration=5), dict(base, measure="throughput"), dict(base, measure="latency"),
                dict(base, probe_rate=2000), dict(base, testrun=True), dict(base, sizes=[128]),
                dict(base, rates=[100000]), dict(base, n=[1]), dict(base, locations=["vm_afxdp"])]
    ids = {one["id"]} | {expand({"nb": v})[0]["id"] for v in variants}
    assert len(ids) == len(variants) + 1
    # The same value written as an int or a float gives the same id.
    assert expand({"nb": dict(base, duration=3.0, rates=[50000.0])})[0]["id"] == one["id"]
    assert cell_id(one) == one["id"]


def test_defaults_are_in_every_cell():
    cell = expand({"d": {"programs": ["drop"], "locations": ["driver"]}})[0]
    assert cell["duration"] == 10 and cell["measure"] == "throughput" and cell["testrun"] is False
    assert cell["rate"] == 0 and cell["size"] == 64 and cell["n"] is None
    assert cell["id"] == "d-drop-driver-s64-r0-d10-rep1"


def test_user_program_paths_are_accepted_when_they_exist(tmp_path):
    prog = tmp_path / "mine.c"
    prog.write_text("int x;\n")
    cell = expand({"u": {"programs": [str(prog)], "n": [1, 2], "locations": ["generic"]}})
    assert len(cell) == 1 and cell[0]["program"] == str(prog) and cell[0]["n"] is None
    assert cell[0]["id"].startswith("u-mine.c_") and "/" not in cell[0]["id"]
    with pytest.raises(MatrixError, match="programs"):
        expand({"u": {"programs": [str(tmp_path / "missing.c")], "locations": ["generic"]}})


@pytest.mark.parametrize("key,value,rule", [
    ("n", ["1$(shell id)"], "integer from 0"),
    ("n", [-1], "integer from 0"),
    ("n", [1.5], "integer from 0"),
    ("n", ["abc"], "integer from 0"),
    ("n", [True], "integer from 0"),
    ("n", [1000001], "integer from 0"),
    ("programs", ["nope"], "built-in programs"),
    ("programs", ["../drop.c"], "built-in programs"),
    ("programs", ["/etc/passwd"], "built-in programs"),
    ("programs", ["/tmp/a b.c"], "built-in programs"),
    ("locations", ["nowhere"], "must be one of"),
    ("locations", ["driver; reboot"], "must be one of"),
    ("duration", 0, "above 0"),
    ("duration", -2, "above 0"),
    ("duration", 3601, "above 0"),
    ("duration", "5", "above 0"),
    ("rates", [1e12], "packets per second"),
    ("rates", [-1], "packets per second"),
    ("rates", [float("nan")], "packets per second"),
    ("sizes", [59], "frame length"),
    ("sizes", [64.5], "frame length"),
    ("repetitions", 0, "from 1"),
    ("repetitions", 10 ** 6, "from 1"),
    ("probe_rate", 0, "above 0"),
    ("measure", "speed", "one of throughput"),
    ("testrun", "yes", "true or false"),
])
def test_bad_values_are_refused_naming_experiment_key_value_and_rule(key, value, rule):
    spec = {"programs": ["loop"], "n": [1], "locations": ["driver"], "duration": 2}
    spec[key] = value
    with pytest.raises(MatrixError) as err:
        expand({"exp1": spec})
    msg = str(err.value)
    assert "experiment exp1" in msg and key in msg and rule in msg
    shown = value[0] if isinstance(value, list) else value
    assert repr(shown) in msg


def test_unknown_keys_and_bad_names_are_refused():
    with pytest.raises(MatrixError, match=r"unknown key\(s\) durration"):
        expand({"e": {"programs": ["drop"], "locations": ["driver"], "durration": 2}})
    for bad in ("a/b", "../x", ".hidden", "", "x" * 65, "a b"):
        with pytest.raises(MatrixError, match="experiment name"):
            expand({bad: {"programs": ["drop"], "locations": ["driver"]}})
    with pytest.raises(MatrixError, match="not both"):
        expand({"e": {"program": "drop", "programs": ["drop"], "locations": ["driver"]}})


def test_a_bad_experiment_refuses_the_whole_matrix_even_if_not_selected():
    with pytest.raises(MatrixError, match="experiment bad"):
        expand({"good": {"programs": ["drop"], "locations": ["driver"]},
                "bad": {"programs": ["drop"], "locations": ["driver"], "n": ["1;id"]}}, only=["good"])


def test_check_cell_accepts_the_matrix_cells_and_refuses_tampered_ones():
    from ansible_collections.xdplab.offload.plugins.module_utils.matrix import check_cell
    for cell in expand(EXPERIMENTS):
        assert check_cell(dict(cell)) == cell
    cell = expand(EXPERIMENTS)[0]
    for key, value, match in [("n", "1$(shell id)", "integer"), ("id", "../../etc/x", "id of the cell"),
                              ("duration", 0, "above 0"), ("program", "drop; id", "built-in"),
                              ("extra", 1, "unknown key")]:
        with pytest.raises(MatrixError, match=match):
            check_cell(dict(cell, **{key: value}))
    with pytest.raises(MatrixError, match="duration missing"):
        check_cell(dict((k, v) for k, v in cell.items() if k != "duration"))
