"""Counter decoding, sums, rates and shape checks of the xl_stats map, without root.

``CounterMap`` is exercised against an in-memory stand-in for the libbpf
boundary (obj_get / map_info / lookup / update), never against its own logic.
"""
import os
import struct

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import counters as ctr

NAMES = ["seen", "dropped", "tx", "passed", "redirected"]


def raw(packets, nbytes):
    return struct.pack("<QQ", packets, nbytes)


def test_layout_matches_stats_h():
    header = os.path.join(os.path.dirname(__file__), "..", "..", "bpf", "include", "xdplab", "stats.h")
    if not os.path.exists(header):
        pytest.skip("bpf/include/xdplab/stats.h not present")
    text = open(header).read()
    for key, name in enumerate(["XL_SEEN", "XL_DROPPED", "XL_TX", "XL_PASSED", "XL_REDIRECTED"]):
        assert "%s = %d" % (name, key) in text
        assert ctr.KEYS[NAMES[key]] == key
    assert "XL_NR_COUNTERS = 5" in text
    assert ctr.VALUE_SIZE == 16 and ctr.NR_COUNTERS == 5


def test_decode_value_reads_two_little_endian_u64():
    assert ctr.decode_value(bytes.fromhex("0100000000000000" + "0001000000000000")) == {"packets": 1, "bytes": 256}
    assert ctr.decode_value(raw(2 ** 64 - 1, 2 ** 40)) == {"packets": 2 ** 64 - 1, "bytes": 2 ** 40}
    with pytest.raises(ctr.CounterError):
        ctr.decode_value(b"\0" * 8)


def sample_raw():
    # raw_by_key[key][cpu]: 2 CPUs
    return [
        [raw(10, 600), raw(5, 300)],   # seen
        [raw(7, 420), raw(5, 300)],    # dropped
        [raw(1, 60), raw(0, 0)],       # tx
        [raw(2, 120), raw(0, 0)],      # passed
        [raw(0, 0), raw(0, 0)],        # redirected
    ]


def test_decode_per_cpu_and_totals():
    per_cpu = ctr.decode_per_cpu(sample_raw())
    assert len(per_cpu) == 2
    assert per_cpu[0]["seen"] == {"packets": 10, "bytes": 600}
    assert per_cpu[1]["dropped"] == {"packets": 5, "bytes": 300}
    assert per_cpu[1]["tx"] == {"packets": 0, "bytes": 0}
    total = ctr.totals(per_cpu)
    assert total == {"seen": {"packets": 15, "bytes": 900}, "dropped": {"packets": 12, "bytes": 720},
                     "tx": {"packets": 1, "bytes": 60}, "passed": {"packets": 2, "bytes": 120},
                     "redirected": {"packets": 0, "bytes": 0}}
    assert not ctr.is_zero(per_cpu)


def test_decode_refuses_ragged_input():
    bad = sample_raw()
    bad[3] = bad[3][:1]
    with pytest.raises(ctr.CounterError, match="one value per CPU"):
        ctr.decode_per_cpu(bad)
    with pytest.raises(ctr.CounterError, match="5 keys"):
        ctr.decode_per_cpu(sample_raw()[:4])


def per_cpu(*rows):
    """rows: per CPU a dict name -> (packets, bytes); missing names are zero."""
    return [dict((n, {"packets": r.get(n, (0, 0))[0], "bytes": r.get(n, (0, 0))[1]}) for n in NAMES) for r in rows]


def test_rates_over_a_window():
    before = per_cpu({"seen": (100, 6000), "dropped": (100, 6000)}, {"seen": (0, 0)})
    after = per_cpu({"seen": (1100, 66000), "dropped": (1100, 66000)}, {"seen": (500, 30000), "passed": (500, 30000)})
    r = ctr.rates(before, after, 2.0)
    assert r["seen"] == {"pps": 750.0, "bytes_per_s": 45000.0}
    assert r["dropped"] == {"pps": 500.0, "bytes_per_s": 30000.0}
    assert r["passed"] == {"pps": 250.0, "bytes_per_s": 15000.0}
    assert r["tx"] == {"pps": 0.0, "bytes_per_s": 0.0}
    assert r["per_cpu"][0]["seen"] == 500.0 and r["per_cpu"][1]["seen"] == 250.0
    assert r["per_cpu"][1]["dropped"] == 0.0
    assert sum(c["seen"] for c in r["per_cpu"]) == r["seen"]["pps"]


def test_rates_refuse_counters_going_down_and_empty_windows():
    before = per_cpu({"seen": (100, 6000)})
    after = per_cpu({"seen": (3, 180)})
    with pytest.raises(ctr.CounterError, match="went down"):
        ctr.rates(before, after, 1.0)
    with pytest.raises(ctr.CounterError, match="longer than 0"):
        ctr.rates(before, before, 0)
    with pytest.raises(ctr.CounterError, match="CPU counts"):
        ctr.subtract(per_cpu({}, {}), per_cpu({}))


def test_run_rate_from_bpf_stats():
    assert ctr.run_rate({"run_cnt": 10, "run_time_ns": 1000}, {"run_cnt": 110, "run_time_ns": 8000}) == 70.0
    assert ctr.run_rate({"run_cnt": 10, "run_time_ns": 1000}, {"run_cnt": 10, "run_time_ns": 1000}) is None
    assert ctr.run_rate({"id": 1}, {"id": 1}) is None  # statistics disabled: no run fields
    assert ctr.run_rate(None, {"run_cnt": 1, "run_time_ns": 1}) is None


GOOD = {"type": 6, "id": 1, "key_size": 4, "value_size": 16, "max_entries": 5, "name": "xl_stats"}


def test_check_shape_accepts_xl_stats_and_larger_arrays():
    ctr.check_shape(GOOD, "/x")
    ctr.check_shape(dict(GOOD, max_entries=8), "/x")


@pytest.mark.parametrize("change,words", [
    ({"value_size": 8}, "value size 8 instead of 16"),
    ({"max_entries": 4}, "4 entries instead of at least 5"),
    ({"key_size": 8}, "key size 8"),
    ({"type": 1}, "type 1 instead of 6"),
])
def test_check_shape_names_the_mismatch(change, words):
    with pytest.raises(ctr.CounterError, match=words) as err:
        ctr.check_shape(dict(GOOD, **change), "/sys/fs/bpf/xl-x/xl_stats")
    assert "/sys/fs/bpf/xl-x/xl_stats" in err.value.msg


def test_resolve_paths(tmp_path):
    assert ctr.resolve_paths("/p/d") == ("/p/d/xl_stats", "/p/d/prog")
    m = tmp_path / "xl_stats"
    assert ctr.resolve_paths(None, str(m)) == (str(m), None)
    (tmp_path / "prog").write_text("")
    assert ctr.resolve_paths(None, str(m)) == (str(m), str(tmp_path / "prog"))


class FakeLibbpf:
    """An in-memory per-CPU array standing in for the kernel behind libbpf."""

    def __init__(self, ncpu=2, info=None):
        self.ncpu = ncpu
        self.info = dict(GOOD, **(info or {}))
        self.values = [[raw(0, 0)] * ncpu for _unused in range(5)]
        self.updates = 0
        self.opened = []

    def obj_get(self, path):
        fd = os.open("/dev/null", os.O_RDONLY)
        self.opened.append(fd)
        return fd

    def map_info(self, fd):
        return dict(self.info)

    def map_lookup_percpu(self, fd, key, value_size):
        assert value_size == 16
        return list(self.values[key])

    def map_update_percpu(self, fd, key, values, value_size):
        assert len(values) == self.ncpu and all(len(v) == 16 for v in values)
        self.values[key] = list(values)
        self.updates += 1

    def num_possible_cpus(self):
        return self.ncpu


@pytest.fixture
def fake(monkeypatch, tmp_path):
    lib = FakeLibbpf()
    for name in ("obj_get", "map_info", "map_lookup_percpu", "map_update_percpu", "num_possible_cpus"):
        monkeypatch.setattr(ctr.libbpf, name, getattr(lib, name))
    monkeypatch.setattr(ctr, "fd_kind", lambda fd: "map")
    path = tmp_path / "xl_stats"
    path.write_text("")
    lib.path = str(path)
    return lib


def test_countermap_reads_zeroes_and_restores(fake):
    fake.values[0] = [raw(3, 180), raw(4, 240)]
    fake.values[1] = [raw(3, 180), raw(4, 240)]
    with ctr.CounterMap(fake.path) as cmap:
        saved, _at = cmap.read()
        assert ctr.totals(saved)["seen"] == {"packets": 7, "bytes": 420}
        cmap.zero()
        assert ctr.is_zero(cmap.read()[0])
        assert fake.updates == 5
        cmap.write(saved)
        assert cmap.read()[0] == saved
    assert all(_closed(fd) for fd in fake.opened)


def _closed(fd):
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def test_countermap_missing_pin_explains(fake, tmp_path):
    with pytest.raises(ctr.CounterError, match="no counters map at .*nope.*: do this") as err:
        ctr.CounterMap(str(tmp_path / "nope" / "xl_stats"), hint=": do this")
    assert err.value.details["map_path"].endswith("nope/xl_stats")


def test_countermap_refuses_wrong_shape_and_closes(fake):
    fake.info["value_size"] = 8
    with pytest.raises(ctr.CounterError, match="value size 8"):
        ctr.CounterMap(fake.path)
    assert all(_closed(fd) for fd in fake.opened)


def test_countermap_refuses_a_program_pin(fake, monkeypatch):
    monkeypatch.setattr(ctr, "fd_kind", lambda fd: "prog")
    with pytest.raises(ctr.CounterError, match="not a BPF map"):
        ctr.CounterMap(fake.path)


def test_fd_kind_of_a_plain_file_is_none(tmp_path):
    fd = os.open(str(tmp_path), os.O_RDONLY)
    try:
        assert ctr.fd_kind(fd) is None
    finally:
        os.close(fd)


def test_check_shape_accepts_the_shared_array_of_offloaded_programs():
    ctr.check_shape({"type": 2, "key_size": 4, "value_size": 16, "max_entries": 5}, "/x")
