"""The experiment matrix: cartesian product, N collapsing, exclusions, stable ids."""
import pytest

from ansible_collections.xdplab.offload.plugins.module_utils.matrix import MatrixError, expand

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
    assert "complexity-loop-n10-generic-s64-r0-rep2" in {c["id"] for c in first}
    assert "drop-drop-offload-s1500-r0-rep1" in {c["id"] for c in first}


def test_exclusions_drop_matching_cells_only():
    cells = expand(EXPERIMENTS, exclude=[{"location": "offload", "size": 1500}, {"program": "checksum"}])
    ids = {c["id"] for c in cells}
    assert "drop-drop-offload-s1500-r0-rep1" not in ids
    assert "drop-drop-offload-s64-r0-rep1" in ids
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
