"""afxdp.ensure_started / ensure_stopped called directly (as one-process callers do) on a real veth pair.

Names start with ``xl-m``; the fixture stops the worker and removes what it made.
"""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import afxdp
from lib.modrun import ROOT
from lib.netfix import VethPair, unique

pytestmark = [pytest.mark.root]

BPF_DIR = os.path.join(ROOT, "bpf")


@pytest.fixture
def params():
    ns = unique("xl-mns")
    pair = VethPair(unique("xl-ma"), unique("xl-mb"), ns_b=ns)
    build_dir = tempfile.mkdtemp(prefix="xl-mbuild-")
    os.makedirs(afxdp.STATE_ROOT, exist_ok=True)
    state_root = tempfile.mkdtemp(prefix="xl-mstate-", dir=afxdp.STATE_ROOT)
    pair.create()
    base = dict(interface=pair.name_b, netns=ns, bpf_dir=BPF_DIR, build_dir=build_dir, state_root=state_root)
    try:
        yield base
    finally:
        try:
            afxdp.ensure_stopped(base)
        finally:
            pair.destroy()
            shutil.rmtree(build_dir, ignore_errors=True)
            shutil.rmtree(state_root, ignore_errors=True)


def xdp_prog_id(p):
    out = subprocess.run(["ip", "-j", "-d", "-n", p["netns"], "link", "show", "dev", p["interface"]],
                         capture_output=True, text=True, check=True).stdout
    return (json.loads(out)[0].get("xdp") or {}).get("prog", {}).get("id")


def test_defaults_are_the_modules():
    assert afxdp.WORKER_DEFAULTS["state_root"] == afxdp.STATE_ROOT
    assert (afxdp.WORKER_DEFAULTS["batch_size"], afxdp.WORKER_DEFAULTS["ring_size"]) == (64, 2048)


def test_start_again_and_stop_in_one_process(params):
    wanted = dict(params, program="drop", copy_mode="zerocopy", xdp_mode="generic")
    would = afxdp.ensure_started(wanted, check_mode=True)
    assert would["changed"] and would["pid"] is None and xdp_prog_id(params) is None

    first = afxdp.ensure_started(wanted)
    assert first["changed"] and first["pid"] and first["prog_id"] == xdp_prog_id(params)
    assert first["bind_mode"] == "copy" and any("zero-copy" in w for w in first["warnings"])
    assert first["interface"] == params["interface"] and first["batch_size"] == 64  # the common keys
    again = afxdp.ensure_started(wanted)
    assert not again["changed"] and again["pid"] == first["pid"]

    stopped = afxdp.ensure_stopped(params)
    assert stopped["changed"] and stopped["final"] is True and stopped["pid"] == first["pid"]
    assert xdp_prog_id(params) is None and not os.path.exists(first["state_dir"])
    assert not afxdp.ensure_stopped(params)["changed"]


def test_refusals_carry_the_modules_failure_details(params):
    with pytest.raises(afxdp.AfxdpError) as exc:
        afxdp.ensure_started(dict(params, program="drop", queue=99))
    assert exc.value.details["option"] == "queue" and exc.value.details["state_dir"].startswith(params["state_root"])
    assert exc.value.details["interface"] == params["interface"]
    with pytest.raises(afxdp.AfxdpError) as exc:
        afxdp.ensure_started(dict(params, program="drop", state_root="/tmp"))
    assert exc.value.details["option"] == "state_root" and exc.value.details["state_root"] == "/tmp"
    with pytest.raises(afxdp.AfxdpError):
        afxdp.ensure_started(params)  # neither program nor binary
