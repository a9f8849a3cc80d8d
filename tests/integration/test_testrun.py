"""testrun.time_program called directly (as one-process callers do): a real BPF_PROG_TEST_RUN of a fresh load."""
import os
import shutil
import tempfile

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import testrun
from lib.modrun import ROOT

pytestmark = [pytest.mark.root]

BPF_DIR = os.path.join(ROOT, "bpf")


@pytest.fixture
def build_dir():
    path = tempfile.mkdtemp(prefix="xl-mbuild-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_defaults_are_the_modules():
    assert (testrun.TESTRUN_DEFAULTS["repeat"], testrun.TESTRUN_DEFAULTS["rounds"], testrun.TESTRUN_DEFAULTS["packet"]) == (100000, 5, "udp")


def test_times_a_fresh_load_and_check_mode_runs_nothing(build_dir):
    params = dict(program="drop", bpf_dir=BPF_DIR, build_dir=build_dir, repeat=1000, rounds=2)
    would = testrun.time_program(params, check_mode=True)
    assert would["check_mode_skipped"] and would["runs"] == 0 and would["ns_per_run"] is None
    assert not os.listdir(build_dir)

    got = testrun.time_program(params)
    assert got["verdict"] == got["repeated_verdict"] == "XDP_DROP"
    assert got["runs"] == 1 + 1000 * 2 and len(got["ns_per_run"]["rounds"]) == 2
    assert got["ns_per_run"]["min"] <= got["ns_per_run"]["median"] <= got["ns_per_run"]["max"]
    assert got["prog"]["name"] == "xl_drop" and got["warnings"] == []
    # A fresh load's own counter map saw exactly the runs.
    assert got["counters_delta"]["seen"]["packets"] == got["runs"]


def test_refusals_carry_the_modules_failure_details(build_dir):
    with pytest.raises(testrun.TestrunError) as exc:
        testrun.time_program(dict(program="drop", bpf_dir=BPF_DIR, build_dir=build_dir, repeat=0))
    assert exc.value.details == {"repeat": 0}
    with pytest.raises(testrun.TestrunError) as exc:
        testrun.time_program(dict(pin_path="/tmp"))
    assert exc.value.details["option"] == "pin_path"
    with pytest.raises(testrun.TestrunError) as exc:
        testrun.time_program(dict(pin_path="/sys/fs/bpf/xdplab/xl-mnone/xl-mnone0"))
    assert "no program pinned" in exc.value.msg and exc.value.details["pin_path"].endswith("xl-mnone0")
    with pytest.raises(testrun.TestrunError):
        testrun.time_program({})
