from ansible_collections.xdplab.offload.plugins.filter.counters import counter_delta


def test_delta_of_integer_counters_only():
    before = {"rx_packets": 10, "tx_packets": 5, "name": "x"}
    after = {"rx_packets": 25, "tx_packets": 5, "new": 7, "name": "y", "flag": True}
    assert counter_delta(after, before) == {"rx_packets": 15, "tx_packets": 0, "new": 7}


def test_missing_before_counts_from_zero():
    assert counter_delta({"a": 3}, None) == {"a": 3}
