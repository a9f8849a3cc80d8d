# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action group ``lab`` (meta/runtime.yml) with module_defaults, as README.md documents it.

A playbook sets ``module_defaults: {group/xdplab.offload.lab: {netns: ...}}`` and reads the
counters of a veth that exists only in that namespace with link_stats (normally and in check
mode), with no ``netns`` on the task; a second play without the defaults must not find it.

Names start with ``xl-he``; the namespace and its veth are removed also on failure.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import uuid

import pytest

from lib.labstate import netns
from lib.modrun import recap_changed, run_playbook

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a namespace and a veth"),
]

PLAYBOOK = "tests/integration/playbooks/module_defaults_lab_group.yml"


@pytest.fixture()
def namespace():
    tag = uuid.uuid4().hex[:6]
    name, dev, peer = "xl-he" + tag, "xl-hea" + tag, "xl-heb" + tag
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "add", dev, "type", "veth", "peer", "name", peer], check=True)
        subprocess.run(["ip", "-n", name, "link", "set", dev, "up"], check=True)
        yield name, dev
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
    assert name not in netns()


def test_module_defaults_of_the_lab_group_give_link_stats_its_namespace(namespace):
    name, dev = namespace
    assert not os.path.exists("/sys/class/net/" + dev)  # only the namespace has it
    proc = run_playbook(PLAYBOOK, extra_vars={"xl_he_netns": name, "xl_he_interface": dev}, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "xl-he-found " in proc.stdout
    assert recap_changed(proc.stdout) == 0
