"""figures: the paper's figures from synthetic records.

The series of each figure are checked against values worked out from the
synthetic records (tests/unit/synthetic_runs.py), then every figure is drawn
as PNG and SVG and checked for axis labels with units, legend entries, the
marks of unsupported cells and the provenance caption.
"""
import math
import struct

import pytest

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from ansible_collections.xdplab.offload.plugins.module_utils import figures as fg  # noqa: E402
from ansible_collections.xdplab.offload.plugins.module_utils import results as res  # noqa: E402
from lib import synthetic_runs as synth  # noqa: E402

NAMES = ["drop_throughput", "complexity", "dns_latency", "vm_drop_throughput", "vm_cpu_share",
         "neighbour_latency"]


@pytest.fixture(scope="module")
def run():
    records = synth.synthetic_records()
    rows, quantities, warnings = res.aggregate(records)
    assert warnings == []
    specs = dict((s["name"], s) for s in fg.build_figures(rows, records))
    return {"records": records, "rows": rows, "specs": specs,
            "provenance": res.provenance_line(records, synth.RUN_ID)}


def labels(panel):
    return [s["label"] for s in panel["series"]]


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


# --- which figures ------------------------------------------------------------

def test_every_experiment_gets_its_figure_in_the_papers_order(run):
    assert list(run["specs"]) == NAMES


def test_only_the_experiments_present_get_a_figure(run):
    rows = [r for r in run["rows"] if r["experiment"] in ("drop", "neighbour")]
    specs = fg.build_figures(rows, run["records"])
    assert [s["name"] for s in specs] == ["drop_throughput", "neighbour_latency"]
    assert fg.build_figures([], []) == []


# --- series -------------------------------------------------------------------

def test_drop_bars_per_location_with_iqr_and_unsupported_mark(run):
    spec = run["specs"]["drop_throughput"]
    (panel,) = spec["panels"]
    assert panel["kind"] == "bar" and panel["ylabel"] == "throughput [Mpps]"
    assert panel["categories"] == ["NIC offload", "driver", "generic", "AF_XDP"]
    (series,) = panel["series"]
    assert series["label"] == "drop, 64 B"
    assert series["y"][0] is None
    assert series["y"][1:] == pytest.approx([12.0, 2.6, 4.2])
    # Quartiles of (11, 12, 13) Mpps with linear interpolation: 11.5 and 12.5.
    assert (series["low"][1], series["high"][1]) == pytest.approx((11.5, 12.5))
    assert panel["marks"] == [{"series": 0, "x": "NIC offload", "text": "unsupported"}]
    assert spec["notes"] == ["NIC offload, drop, 64 B, max rate: unsupported "
                             "(xdp_program: no offload-capable NIC on xl-dut0 (veth))"]


def test_complexity_throughput_and_cost_vs_n_per_location(run):
    spec = run["specs"]["complexity"]
    titles = [p["title"] for p in spec["panels"]]
    assert titles == ["loop: throughput", "loop: time per packet", "checksum: throughput",
                      "checksum: time per packet"]
    loop_tput, loop_cost = spec["panels"][0], spec["panels"][1]
    assert labels(loop_tput) == ["driver", "generic"]
    assert labels(loop_cost) == ["driver", "generic", "program alone (BPF_PROG_TEST_RUN)"]
    assert loop_tput["xscale"] == "log" and loop_cost["yscale"] == "log"
    assert loop_tput["xlabel"] == "N (iterations)" and loop_cost["ylabel"] == "time per packet [ns]"
    driver = loop_tput["series"][0]
    assert driver["x"] == [1, 10, 100, 1000]
    # Median repetition: 75 ns + N * 1.1 ns per packet.
    assert driver["y"] == pytest.approx([1e3 / (75 + n * 1.1) for n in (1, 10, 100, 1000)])
    assert loop_cost["series"][0]["y"] == pytest.approx([75 + n * 1.1 for n in (1, 10, 100, 1000)])
    # The cost whiskers come from the swapped throughput quartiles: low <= median <= high.
    for lo, y, hi in zip(loop_cost["series"][0]["low"], loop_cost["series"][0]["y"], loop_cost["series"][0]["high"]):
        assert lo <= y <= hi
    testrun = loop_cost["series"][2]
    assert testrun["x"] == [1, 10, 100, 1000]
    assert testrun["y"] == pytest.approx([n * 1.1 + 20 for n in (1, 10, 100, 1000)])
    assert "Time per packet at a location = 1e9 / throughput" in spec["stat_note"]
    # The partly failed group is drawn from its ok repetition and named in the notes.
    generic_checksum = spec["panels"][2]["series"][1]
    assert generic_checksum["x"] == [1, 10, 100, 1000]
    assert generic_checksum["y"][-1] == pytest.approx(1e3 / (370 + 1000 * 2.3 * 0.98))
    assert any("N=1000" in n and "1 of 2 repetitions ok" in n and "generator exited" in n for n in spec["notes"])
    assert any(n.startswith("NIC offload: unsupported in all 8 of its cell groups") for n in spec["notes"])


def test_recorded_ns_per_packet_is_used_instead_of_deriving_it(run):
    records = [dict(r, ns_per_packet=500.0) if r.get("status") == "ok" and r["experiment"] == "complexity"
               else r for r in run["records"]]
    rows, _groups, _skipped = res.aggregate(records)
    spec = fg.complexity(rows)
    assert spec["panels"][1]["series"][0]["y"] == [500.0] * 4
    assert "1e9 / throughput" not in spec["stat_note"]


def test_dns_latency_percentiles_vs_rate_per_location(run):
    spec = run["specs"]["dns_latency"]
    assert [p["title"] for p in spec["panels"]] == ["RTT p50 (median)", "RTT p90", "RTT p99", "RTT p99.9"]
    p50 = spec["panels"][0]
    assert labels(p50) == ["driver", "generic", "AF_XDP"]
    assert p50["xlabel"] == "offered rate [kpps]" and p50["ylabel"] == "round-trip time [µs]"
    assert p50["series"][0]["x"] == [10, 50, 100, 500]
    assert p50["series"][0]["y"] == pytest.approx([2.5 * (1 + r / 100.0) for r in (10, 50, 100, 500)])
    assert spec["panels"][3]["series"][2]["y"][0] == pytest.approx(30.0 * 1.1 * 8)
    assert p50["xscale"] == "log"
    assert any("NIC offload" in n and "unsupported" in n for n in spec["notes"])


def test_vm_drop_bars_mark_the_nic(run):
    (panel,) = run["specs"]["vm_drop_throughput"]["panels"]
    assert panel["categories"] == ["VM AF_XDP", "VM driver", "host driver", "NIC"]
    assert panel["series"][0]["y"][:3] == pytest.approx([0.31, 0.52, 9.2])
    assert panel["marks"] == [{"series": 0, "x": "NIC", "text": "unsupported"}]


def test_cpu_share_stacks_host_and_vm_per_location(run):
    spec = run["specs"]["vm_cpu_share"]
    (panel,) = spec["panels"]
    assert panel["kind"] == "stacked" and panel["ylabel"] == "CPU usage [% of one CPU]"
    assert panel["title"] == "checksum, N=100, 64 B, max rate"
    host, vm = panel["series"]
    assert (host["label"], vm["label"]) == ("host share", "VM share")
    assert host["y"] == [95.0, 90.0, 70.0, None] and vm["y"] == [100.0, 60.0, 0.5, None]
    assert panel["marks"] == [{"series": 0, "x": "NIC", "text": "unsupported"}]


def test_neighbour_cdf_against_the_baseline(run):
    spec = run["specs"]["neighbour_latency"]
    (panel,) = spec["panels"]
    assert panel["kind"] == "cdf" and panel["xlabel"] == "neighbour round-trip time [µs]"
    assert labels(panel) == ["workload at VM driver", "workload at host driver", "baseline (no load)"]
    vm_driver, host_driver, baseline = panel["series"]
    assert vm_driver["source"] == "samples" and vm_driver["samples"] == 1200
    assert vm_driver["y"][-1] == 1.0 and vm_driver["x"] == sorted(vm_driver["x"])
    assert min(vm_driver["x"]) >= 60.0
    assert baseline["source"] == "histogram" and baseline["linestyle"] == "--"
    # Three identical histograms pooled: the CDF at the edges is the cumulative share.
    assert baseline["x"] == [10, 15, 20, 30, 50, 100]
    assert baseline["y"] == pytest.approx([0, 0.25, 0.75, 0.9, 0.975, 1.0])
    assert any(n.startswith("NIC, checksum, N=100") and "unsupported" in n for n in spec["notes"])


def test_neighbour_without_baseline_says_so(run):
    rows = [r for r in run["rows"] if r["location"] != "baseline"]
    spec = fg.neighbour_cdf(rows, run["records"])
    assert "no baseline cell (location baseline) in this run" in spec["notes"]
    assert "baseline (no load)" not in labels(spec["panels"][0])


# --- CDF points ------------------------------------------------------------------

def test_cdf_of_few_samples_is_exact():
    xs, ys, source, count = fg.cdf_points([{"rtt_us_samples": [3, 1, 2]}, {"rtt_us_samples": [4]}])
    assert (xs, ys, source, count) == ([1, 2, 3, 4], [0.25, 0.5, 0.75, 1.0], "samples", 4)


def test_cdf_of_many_samples_keeps_quantiles():
    samples = list(range(1, 10001))
    xs, ys, source, count = fg.cdf_points([{"rtt_us_samples": samples}])
    assert len(xs) == fg.CDF_POINTS and count == 10000
    assert xs[-1] == 10000 and ys[-1] == 1.0
    assert xs[fg.CDF_POINTS // 2 - 1] == 5000  # the median stays the median


def test_cdf_of_histograms_with_different_edges_puts_mass_at_upper_edges():
    recs = [{"rtt_us_hist": {"edges": [0, 10, 20], "counts": [1, 1]}},
            {"rtt_us_hist": {"edges": [0, 5, 20], "counts": [2, 0]}}]
    xs, ys, source, count = fg.cdf_points(recs)
    assert source == "histogram" and count == 4
    assert xs == [0, 5, 10, 20] and ys == pytest.approx([0, 0.5, 0.75, 1.0])


def test_cdf_falls_back_to_percentiles_and_ignores_broken_histograms():
    row = {"rtt_us_p50_median": 10.0, "rtt_us_p99_median": 50.0}
    broken = [{"rtt_us_hist": {"edges": [0, 1], "counts": [1, 2]}}, {"rtt_us_hist": "nope"}]
    xs, ys, source, count = fg.cdf_points(broken, row)
    assert (xs, ys, source, count) == ([10.0, 50.0], [0.5, 0.99], "percentiles", None)
    assert fg.cdf_points(broken) is None


# --- drawing ----------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_every_figure_draws_axes_with_units_legend_and_caption(run, name):
    spec = run["specs"][name]
    caption = fg.caption_text(spec, run["provenance"])
    fig = fg.draw(spec, caption)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == len(spec["panels"])
    legends = []
    for ax, panel in zip(axes, spec["panels"]):
        assert ax.get_xlabel() == panel["xlabel"] and ax.get_ylabel() == panel["ylabel"]
        assert "[" in ax.get_ylabel() or panel["kind"] == "cdf"
        if ax.get_legend() is not None:
            legends.append([t.get_text() for t in ax.get_legend().get_texts()])
        assert ax.has_data()
    assert legends and legends[0] == labels(spec["panels"][0])
    texts = [t.get_text() for t in fig.texts]
    assert any("Source: run xl-synth | emulated lab" in t for t in texts)


@pytest.mark.parametrize("name", NAMES)
def test_every_figure_renders_non_empty_png_and_svg_byte_stably(run, name):
    spec = run["specs"][name]
    caption = fg.caption_text(spec, run["provenance"])
    png = fg.render(spec, caption, "png")
    width, height = png_size(png)
    assert width > 800 and height > 500 and len(png) > 20000
    assert fg.render(spec, caption, "png") == png
    svg = fg.render(spec, caption, "svg").decode("utf-8")
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    for panel in spec["panels"]:
        assert panel["ylabel"] in svg
        for label in labels(panel):
            assert label in svg
    assert "run xl-synth" in svg and "Date" not in svg
    assert fg.render(spec, caption, "svg").decode("utf-8") == svg


def test_unsupported_marks_are_drawn(run):
    spec = run["specs"]["drop_throughput"]
    svg = fg.render(spec, "", "svg").decode("utf-8")
    assert ">unsupported<" in svg


def test_a_figure_without_any_value_still_renders_and_says_no_data():
    records = [synth.record("c-%d" % n, experiment="complexity", program="loop", n=n, location="driver",
                            status="failed", reason="verifier rejected the program") for n in (1, 10)]
    rows, _groups, _skipped = res.aggregate(records)
    spec = fg.complexity(rows)
    assert all(not p["series"] for p in spec["panels"])
    assert any("verifier rejected" in n for n in spec["notes"])
    assert "no data" in fg.render(spec, fg.caption_text(spec, ""), "svg").decode("utf-8")


def test_unknown_format_is_refused(run):
    with pytest.raises(fg.FiguresError):
        fg.render(run["specs"]["drop_throughput"], "", "pdf")


def test_locations_keep_their_colour_across_figures():
    assert fg.location_color("driver") == fg.location_color("vm_driver")
    assert fg.location_color("offload") == fg.location_color("nic")
    assert fg.location_color("baseline") == "#000000"
    assert fg.location_color("somewhere") == fg.location_color("somewhere")
    assert [fg.location_label(x) for x in ("afxdp", "host_driver", "xyz")] == ["AF_XDP", "host driver", "xyz"]


def test_key_label_and_rates():
    assert fg.key_label({"program": "loop", "n": 100, "size": 64, "rate": 0}, ["program", "n", "size", "rate"]) \
        == "loop, N=100, 64 B, max rate"
    assert fg._fmt_rate(1500000) == "1.5 Mpps" and fg._fmt_rate(10000) == "10 kpps" and fg._fmt_rate(5) == "5 pps"
    assert math.isclose(fg._num("2.5"), 2.5) and fg._num(float("nan")) is None and fg._num(True) is None
