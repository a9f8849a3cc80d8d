"""xdp_deploy.ensure_attached_on / ensure_detached_on called directly (as one-process callers do) on a real veth pair.

Attachment is verified independently through `ip -j link`.
"""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import safety, xdp
from ansible_collections.xdplab.offload.plugins.module_utils.xdp_deploy import (
    ATTACH_DEFAULTS, DeployError, ensure_attached_on, ensure_detached_on)
from lib.modrun import ROOT
from lib.netfix import VethPair, unique

pytestmark = [pytest.mark.root]

BPF_DIR = os.path.join(ROOT, "bpf")


@pytest.fixture
def wire():
    ns = unique("xl-mns")
    pair = VethPair(unique("xl-ma"), unique("xl-mb"), ns_b=ns)
    build_dir = tempfile.mkdtemp(prefix="xl-mbuild-")
    pair.create()
    yield pair, build_dir
    subprocess.run(["rm", "-rf", "/sys/fs/bpf/xdplab/%s" % ns], check=False)
    shutil.rmtree(build_dir, ignore_errors=True)
    pair.destroy()


def ip_xdp(pair):
    out = subprocess.run(["ip", "-j", "-d", "-n", pair.ns_b, "link", "show", "dev", pair.name_b],
                         capture_output=True, text=True, check=True).stdout
    xdp_info = json.loads(out)[0].get("xdp")
    return (xdp_info.get("mode"), xdp_info.get("prog", {}).get("id")) if xdp_info else (None, None)


def test_defaults_are_the_modules():
    assert ATTACH_DEFAULTS["mode"] == "driver" and ATTACH_DEFAULTS["loader"] == "object"
    assert ATTACH_DEFAULTS["bpf_dir"] == "/opt/xdplab/bpf" and ATTACH_DEFAULTS["force"] is False


def test_attach_then_detach_in_one_process(wire):
    pair, build_dir = wire
    params = dict(interface=pair.name_b, netns=pair.ns_b, program="drop", bpf_dir=BPF_DIR, build_dir=build_dir)
    would = ensure_attached_on(params, check_mode=True)
    assert would["changed"] and would["tag_known"] is False
    assert ip_xdp(pair) == (None, None) and not os.path.exists(would["pin_path"])

    first = ensure_attached_on(params)
    assert first["changed"] and first["mode"] == "driver"
    assert ip_xdp(pair) == (1, first["prog_id"])
    assert first["pin_path"] == "/sys/fs/bpf/xdplab/%s/%s" % (pair.ns_b, pair.name_b)
    assert os.path.exists(first["maps"]["xl_stats"])
    again = ensure_attached_on(params)
    assert not again["changed"] and again["prog_id"] == first["prog_id"]

    gone = ensure_detached_on(dict(interface=pair.name_b, netns=pair.ns_b))
    assert gone["changed"] and gone["diff"]["before"]["prog_id"] == first["prog_id"]
    assert ip_xdp(pair) == (None, None) and not os.path.exists(first["pin_path"])
    assert not ensure_detached_on(dict(interface=pair.name_b, netns=pair.ns_b))["changed"]


def test_refusals_raise_what_the_module_maps(wire):
    pair, _build_dir = wire
    with pytest.raises(safety.UnsafeInput):
        ensure_detached_on(dict(interface="../etc", netns=pair.ns_b))
    with pytest.raises(DeployError) as exc:
        ensure_detached_on(dict(interface=pair.name_b, netns=pair.ns_b), pin_path="/tmp")
    assert exc.value.details["option"] == "pin_path"
    with pytest.raises(xdp.XdpError) as exc:
        ensure_detached_on(dict(interface="xl-mnosuch0", netns=pair.ns_b))
    assert "does not exist" in exc.value.msg
