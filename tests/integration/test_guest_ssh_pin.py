# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The guests' SSH host key is pinned, without a guest (fast).

tests/integration/playbooks/guest_ssh_pin.yml runs the guest_image role's host
key tasks with a stub cache directory and the guests role's pinning tasks with a
stub image and stub domains: the known_hosts file must name each guest's
management address with exactly the key the image role made (the one it bakes
into the image), and each guest's inventory entry must connect with that file,
and only it, and StrictHostKeyChecking=yes, even when ANSIBLE_HOST_KEY_CHECKING
is off. tests/integration/test_guests_qemu.py proves the same against a real guest.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import tempfile

import pytest

from lib.modrun import ROOT, VENV_BIN, recap_changed, run_playbook

pytestmark = [pytest.mark.slow]

PLAYBOOK = "tests/integration/playbooks/guest_ssh_pin.yml"
GUESTS = {"xl-hdpin1": "198.19.201.11", "xl-hdpin2": "198.19.201.12"}


@pytest.fixture
def work_dir():
    path = tempfile.mkdtemp(prefix="xl-hdpin-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _public(path):
    out = subprocess.run(["ssh-keygen", "-y", "-f", path], capture_output=True, text=True, check=True).stdout
    return " ".join(out.split()[:2])


def _entries(path):
    with open(path, encoding="utf-8") as handle:
        return [line.split() for line in handle if line.strip() and not line.startswith("#")]


def _options(common_args):
    words = shlex.split(common_args)
    assert all(words[i] == "-o" for i in range(0, len(words), 2)), words
    return [words[i + 1] for i in range(0, len(words), 2)]


def test_known_hosts_and_inventory_pin_the_image_host_key(work_dir, monkeypatch):
    # Ansible puts StrictHostKeyChecking=no first when host key checking is off; the
    # guests' entries must turn it back on for themselves.
    monkeypatch.setenv("ANSIBLE_HOST_KEY_CHECKING", "False")
    proc = run_playbook(PLAYBOOK, extra_vars={"work_dir": work_dir}, timeout=300)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]

    host_key = os.path.join(work_dir, "cache", "host-key", "ssh_host_ed25519_key")
    assert stat.S_IMODE(os.stat(host_key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(host_key)).st_mode) == 0o700
    key = _public(host_key)
    assert key.startswith("ssh-ed25519 ")

    known_hosts = os.path.join(work_dir, "ssh", "known_hosts-localhost")  # the default: beside the lab's key
    assert stat.S_IMODE(os.stat(os.path.dirname(known_hosts)).st_mode) == 0o700
    entries = _entries(known_hosts)
    assert sorted((e[0], e[1] + " " + e[2]) for e in entries) == sorted((ip, key) for ip in GUESTS.values())
    for name, address in GUESTS.items():
        # ssh's own parser finds the key under the address
        found = subprocess.run(["ssh-keygen", "-F", address, "-f", known_hosts], capture_output=True, text=True,
                               check=False)
        assert found.returncode == 0 and key in found.stdout, found

        with open(os.path.join(work_dir, name + ".json"), encoding="utf-8") as handle:
            entry = json.load(handle)
        assert sorted(entry["groups"]) == sorted(GUESTS)
        assert entry["ansible_host"] == address and entry["ansible_connection"] == "ssh"
        assert entry["ansible_host_key_checking"] is True
        assert entry["xdplab_guest_known_hosts"] == known_hosts
        options = _options(entry["ansible_ssh_common_args"])
        assert "UserKnownHostsFile=" + known_hosts in options
        assert "GlobalKnownHostsFile=/dev/null" in options
        assert "StrictHostKeyChecking=yes" in options
        assert not [o for o in options if o.startswith("StrictHostKeyChecking=") and o != "StrictHostKeyChecking=yes"]
        assert not [o for o in options if o.startswith("ProxyJump=")]  # the VM host is the controller itself


def test_ansible_runs_ssh_with_strict_checking_even_when_checking_is_off(work_dir, monkeypatch):
    # The play's last task tries the stub guest (nothing answers); -vvv shows the ssh command.
    monkeypatch.setenv("ANSIBLE_HOST_KEY_CHECKING", "False")
    cmd = [os.path.join(VENV_BIN, "ansible-playbook"), PLAYBOOK, "-vvv", "-e", json.dumps({"work_dir": work_dir})]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    execs = [line for line in proc.stdout.splitlines() if "SSH: EXEC" in line and GUESTS["xl-hdpin1"] in line]
    assert execs, proc.stdout[-6000:]
    for line in execs:
        strict = re.findall(r"StrictHostKeyChecking=(\w+)", line)
        # ssh takes the first value of an option: it must be yes
        assert strict and strict[0] == "yes", line
        assert "UserKnownHostsFile=" + os.path.join(work_dir, "ssh", "known_hosts-localhost") in line, line


def test_a_second_run_keeps_the_key_and_changes_nothing(work_dir):
    first = run_playbook(PLAYBOOK, extra_vars={"work_dir": work_dir}, timeout=300)
    assert first.returncode == 0, first.stdout[-6000:]
    key = _public(os.path.join(work_dir, "cache", "host-key", "ssh_host_ed25519_key"))
    again = run_playbook(PLAYBOOK, extra_vars={"work_dir": work_dir}, timeout=300)
    assert again.returncode == 0, again.stdout[-6000:]
    assert recap_changed(again.stdout) == 0, again.stdout[-6000:]
    assert _public(os.path.join(work_dir, "cache", "host-key", "ssh_host_ed25519_key")) == key


def test_an_image_without_a_host_key_is_refused(work_dir):
    proc = run_playbook(PLAYBOOK, extra_vars={"work_dir": work_dir, "stub_host_key": ""}, timeout=300)
    assert proc.returncode != 0
    assert "names no SSH host key" in proc.stdout, proc.stdout[-6000:]
    assert not os.path.exists(os.path.join(work_dir, "ssh", "known_hosts-localhost"))
