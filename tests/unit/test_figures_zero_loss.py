"""The zero-loss figure: the zero-loss rate beside the overload throughput, per location.

Records come from a real search against simulated receivers of known capacity
(tests/lib/zero_loss_records.py); the bars are checked against medians worked
out from those capacities, then the figure is drawn.
"""
import os
import struct

import pytest

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from ansible_collections.xdplab.offload.plugins.module_utils import figures as fg  # noqa: E402
from ansible_collections.xdplab.offload.plugins.module_utils import results as res  # noqa: E402
from lib.zero_loss_records import zero_loss_record  # noqa: E402

# location -> capacity of each of three repetitions (pps)
CAPACITY = {"driver": (900000.0, 1000000.0, 1100000.0), "generic": (400000.0, 450000.0, 500000.0)}


@pytest.fixture(scope="module")
def figure():
    records = []
    for location, capacities in CAPACITY.items():
        for rep, capacity in enumerate(capacities, 1):
            records.append(zero_loss_record(rep, capacity, location=location))
            records.append(zero_loss_record(rep, capacity / 10, location=location, program="checksum", n=100))
    # afxdp: the search found no zero-loss rate in any repetition.
    lost = zero_loss_record(1, 300000.0, location="afxdp")
    lost["zero_loss_pps"] = None
    records.append(lost)
    records.append(zero_loss_record(1, 1e6, location="offload", status="unsupported"))
    rows, dummy, warnings = res.aggregate(records)
    assert warnings == []
    specs = dict((s["name"], s) for s in fg.build_figures(rows, records))
    return specs["zero_loss_throughput"]


def test_zero_loss_bars_beside_overload_bars_per_location(figure):
    assert [p["title"] for p in figure["panels"]] == ["drop, 64 B", "checksum, N=100, 64 B"]
    drop = figure["panels"][0]
    assert drop["categories"] == ["NIC offload", "driver", "generic", "AF_XDP"]
    overload, zero = drop["series"]
    assert overload["label"] == "overload: processed" and zero["label"] == "zero loss (RFC 2544)"
    assert drop["ylabel"] == "throughput [Mpps]"
    # overload = the capacity exactly (the receiver processes its capacity); zero loss within 1 % below it
    assert overload["y"][1:3] == pytest.approx([1.0, 0.45])
    assert overload["low"][1] == pytest.approx(0.95) and overload["high"][1] == pytest.approx(1.05)
    for got, capacity in zip(zero["y"][1:3], (1.0, 0.45)):
        assert capacity * 0.99 <= got <= capacity
    # afxdp: overload measured, no zero-loss rate; offload unsupported: both marked, none dropped silently
    assert zero["y"][3] is None and overload["y"][3] == pytest.approx(0.3)
    assert {(m["series"], m["x"], m["text"]) for m in drop["marks"]} == {
        (0, "NIC offload", "unsupported"), (1, "NIC offload", "unsupported"), (1, "AF_XDP", "no value")}
    assert any(note.startswith("NIC offload, drop, 64 B: unsupported") for note in figure["notes"])


def test_caption_states_what_zero_loss_means_and_the_search_parameters(figure):
    assert "RFC 2544" in figure["stat_note"] and "interquartile" in figure["stat_note"]
    assert "loss tolerance 0, resolution 0.01, trials of 2 s, at most 30 trials" in figure["stat_note"]


def test_only_runs_with_zero_loss_results_get_the_figure():
    rows, dummy, dummy2 = res.aggregate([dict(zero_loss_record(1, 1e5), experiment="drop", zero_loss_pps=None,
                                              processed_pps=1e5)])
    assert "zero_loss_throughput" not in [s["name"] for s in fg.build_figures(rows, [])]


def test_figure_draws_with_units_legend_and_marks(figure, tmp_path):
    caption = fg.caption_text(figure, "run xl-run | emulated lab")
    svg = fg.render(figure, caption, "svg").decode("utf-8")
    for text in ("throughput [Mpps]", "overload: processed", "zero loss (RFC 2544)", ">unsupported<",
                 ">no value<", "run xl-run"):
        assert text in svg, text
    png = fg.render(figure, caption, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24])[0] > 800
    assert fg.render(figure, caption, "png") == png
    if os.environ.get("XL_FIGURE_OUT"):
        with open(os.path.join(os.environ["XL_FIGURE_OUT"], "zero_loss_throughput.png"), "wb") as handle:
            handle.write(png)
