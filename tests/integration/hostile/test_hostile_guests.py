# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile inputs for the guests: foreign libvirt domains and empty teardown lists.

* ``xdplab.offload.vm_guest`` manages only domains that carry its metadata. A
  domain someone else defined - with the very name and the uuid the module
  would derive, or holding the uuid under another name - is refused in every
  state (present and absent included) with a message that names the domain and
  the rule, and is left exactly as it was (libvirt's test driver: domain list,
  state and inactive XML before and after).
* The guests role's teardown (``roles/guests/tasks/absent.yml``) with
  ``guests_vms: []`` or only invalid names removes nothing from ``guests_dir``;
  with a valid name it removes exactly that guest's disk and console log.
* The ovs role's teardown with ``ovs_bridges: []`` removes nothing either: not
  the namespace its record names, not the record.

Everything this file makes is named ``xl-hb*``; temporary directories and
namespaces are removed in finalizers, also on failure.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import uuid

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import vm
from ansible_collections.xdplab.offload.plugins.modules import vm_guest
from lib.modrun import run_module, run_playbook

TAG = uuid.uuid4().hex[:6]
URI = "test:///default"
FOREIGN = "xl-hb-f" + TAG                     # a domain someone else made, with the uuid vm_guest would derive
FOREIGN_UUID = vm.stable_uuid(FOREIGN)
OTHER_UUID = str(uuid.uuid4())                # a foreign domain's own uuid, claimed by a vm_guest call


def _libvirt():
    try:
        import libvirt
    except ImportError:
        pytest.skip("needs libvirt-python (Debian: python3-libvirt)")
    return libvirt


def foreign_xml(name, dom_uuid):
    """A domain as another user would define it: no vm_guest metadata."""
    return ("<domain type='test'><name>%s</name><uuid>%s</uuid><memory unit='KiB'>65536</memory>"
            "<os><type arch='x86_64'>hvm</type></os></domain>" % (name, dom_uuid))


@pytest.fixture
def conn():
    """test:///default held open (its domains live while a connection is open) with two foreign domains."""
    libvirt = _libvirt()
    held = libvirt.open(URI)
    made = []
    try:
        for name, dom_uuid in ((FOREIGN, FOREIGN_UUID), ("xl-hb-o" + TAG, OTHER_UUID)):
            dom = held.defineXML(foreign_xml(name, dom_uuid))
            dom.create()
            made.append(name)
        yield held
    finally:
        for dom in held.listAllDomains():
            if dom.name().startswith("xl-hb"):
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
        held.close()


def snapshot(held):
    """Every domain of the test driver: name, uuid, active, inactive XML."""
    libvirt = _libvirt()
    return sorted((d.name(), d.UUIDString(), d.isActive(), d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
                  for d in held.listAllDomains())


class Module:
    """What vm_guest.run() needs of AnsibleModule."""

    def __init__(self, p, check_mode=False):
        self.params, self.check_mode, self.warnings = p, check_mode, []

    def warn(self, msg):
        self.warnings.append(msg)

    def run_command(self, argv):
        raise AssertionError("no local checks expected for %s" % URI)


def params(name, state, **kw):
    p = dict(name=name, uri=URI, hypervisor="qemu", virt_type=None, vcpus=1, cpuset=None, cpu_pinning=[],
             emulator_cpuset=None, memory=64, kernel="/nonexistent/xl-hb/vmlinuz", initrd=None, cmdline=None, disk=None,
             disk_format=None, interfaces=[], console_log=None, uuid=None, state=state, shutdown_timeout=5,
             restart_on_change=False)
    p.update(kw)
    return p


def run_in_process(p, check=False):
    hv = vm.Hypervisor(p["uri"])
    try:
        want = vm.build_identity(p) if p["state"] == "absent" else vm.build_want(p)
        return vm_guest.run(Module(p, check), hv, want)
    finally:
        hv.close()


# ------------------------------------------------------------------ vm_guest against foreign domains

@pytest.mark.parametrize("state", ["running", "defined", "shutdown", "destroyed", "absent"])
def test_a_foreign_domain_with_the_same_name_and_derived_uuid_is_refused_and_left_alone(conn, state):
    before = snapshot(conn)
    with pytest.raises(vm.VmError) as exc:
        run_in_process(params(FOREIGN, state))
    assert exc.value.msg.startswith("domain %s at %s was not made by this module: it carries no "
                                    "xdplab.offload.vm_guest metadata" % (FOREIGN, URI)), exc.value.msg
    assert exc.value.details["rule"] == "metadata" and "nothing was changed" in exc.value.msg
    assert snapshot(conn) == before


@pytest.mark.parametrize("state", ["running", "absent"])
def test_a_foreign_domain_holding_the_uuid_under_another_name_is_refused_and_left_alone(conn, state):
    before = snapshot(conn)
    with pytest.raises(vm.VmError) as exc:
        run_in_process(params("xl-hb-n" + TAG, state, uuid=OTHER_UUID))
    assert exc.value.msg.startswith("uuid %s is already used by domain xl-hb-o%s at %s (not made by this module"
                                    % (OTHER_UUID, TAG, URI)), exc.value.msg
    assert exc.value.details["rule"] == "uuid"
    assert snapshot(conn) == before
    assert "xl-hb-n" + TAG not in [d.name() for d in conn.listAllDomains()]


def test_check_mode_refuses_a_foreign_domain_too(conn):
    before = snapshot(conn)
    for state in ("running", "absent"):
        with pytest.raises(vm.VmError, match="carries no xdplab.offload.vm_guest metadata"):
            run_in_process(params(FOREIGN, state), check=True)
    assert snapshot(conn) == before


def _assert_clean_failure(result, *fragments):
    assert result.failed, result
    for fragment in fragments:
        assert fragment in result["msg"], result
    assert "Traceback" not in json.dumps(result) and "exception" not in result and "module_stderr" not in result


@pytest.fixture
def node_file(tmp_path):
    """A test-driver node file: a running foreign domain with vm_guest's derived uuid for its name."""
    path = tmp_path / "xl-hb-node.xml"
    path.write_text("<node>%s</node>\n" % foreign_xml(FOREIGN, FOREIGN_UUID))
    return path


def _domains(uri):
    proc = subprocess.run(["virsh", "-c", uri, "list", "--all", "--uuid", "--name"], capture_output=True,
                          text=True, check=True, timeout=60)
    return proc.stdout


@pytest.mark.parametrize("state", ["running", "shutdown", "absent"])
def test_module_program_refuses_the_foreign_domain_by_name(node_file, state):
    _libvirt()
    uri = "test://%s" % node_file
    text = node_file.read_text()
    before = _domains(uri)
    result = run_module("vm_guest", {"name": FOREIGN, "uri": uri, "state": state, "memory": 64,
                                     "kernel": "/nonexistent/xl-hb/vmlinuz"})
    _assert_clean_failure(result, "domain %s at %s was not made by this module" % (FOREIGN, uri),
                          "carries no xdplab.offload.vm_guest metadata")
    assert result["rule"] == "metadata" and result["existing_uuid"] == FOREIGN_UUID
    assert node_file.read_text() == text and _domains(uri) == before


@pytest.mark.parametrize("state", ["running", "absent"])
def test_module_program_refuses_a_uuid_held_by_a_foreign_domain(node_file, state):
    _libvirt()
    uri = "test://%s" % node_file
    result = run_module("vm_guest", {"name": "xl-hb-n" + TAG, "uri": uri, "state": state, "uuid": FOREIGN_UUID,
                                     "memory": 64, "kernel": "/nonexistent/xl-hb/vmlinuz"})
    _assert_clean_failure(result, "uuid %s is already used by domain %s" % (FOREIGN_UUID, FOREIGN),
                          "not made by this module")
    assert result["rule"] == "uuid" and result["existing_name"] == FOREIGN


def test_module_program_refuses_the_test_drivers_own_domain_in_check_mode():
    _libvirt()
    result = run_module("vm_guest", {"name": "test", "uri": URI, "state": "absent"}, check=True)
    _assert_clean_failure(result, "domain test at test:///default was not made by this module")


# ------------------------------------------------------------------ teardown with empty or bad lists

GUESTS_PLAY = """---
- name: The guests role's teardown tasks
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Run roles/guests/tasks/absent.yml
      ansible.builtin.include_role:
        name: xdplab.offload.guests
        tasks_from: absent.yml
"""

OVS_PLAY = GUESTS_PLAY.replace("guests role", "ovs role").replace("roles/guests", "roles/ovs").replace(
    "xdplab.offload.guests", "xdplab.offload.ovs")


def _listing(path):
    return sorted(os.listdir(str(path)))


@pytest.fixture
def guests_dir(tmp_path):
    """A guests_dir with decoys around one guest's real files (xl-hb-g1)."""
    d = tmp_path / "guests"
    d.mkdir()
    for name in ("xl-hb-g1-0123456789abcdef.qcow2", "xl-hb-g1.console.log",            # xl-hb-g1's own
                 "decoy.qcow2", "notes.txt", ".hidden", "xl-hb-g10.console.log",       # decoys
                 "xl-hb-g1-0123456789abcdef.qcow2.bak", "xl-hb-g2-0123456789abcdef.qcow2",
                 "xl-hb-g1-0123456789ABCDEF.qcow2", "someone-elses-vm.img"):
        (d / name).write_text("data of %s\n" % name)
    return d


def _play(tmp_path, text):
    path = tmp_path / "xl-hb-play.yml"
    path.write_text(text)
    return str(path)


GUEST_VARS = dict(guests_uri="test:///nonexistent-xl-hb-%s.xml" % TAG, guests_mgmt_bridge="xl-hbm" + TAG)


@pytest.mark.parametrize("vms", [[], [{"name": ""}], [{"name": "*"}, {"name": ".*"}, {"name": ".hidden"}],
                                 [{"name": "../guests"}]], ids=["empty", "empty-name", "globs", "dotdot"])
def test_guests_teardown_with_no_valid_name_removes_nothing(tmp_path, guests_dir, vms):
    before = {n: (guests_dir / n).read_text() for n in _listing(guests_dir)}
    proc = run_playbook(_play(tmp_path, GUESTS_PLAY),
                        extra_vars=dict(GUEST_VARS, guests_vms=vms, guests_dir=str(guests_dir)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "nothing is removed" in proc.stdout
    assert {n: (guests_dir / n).read_text() for n in _listing(guests_dir)} == before


def test_guests_teardown_removes_exactly_the_named_guests_files(tmp_path, guests_dir):
    proc = run_playbook(_play(tmp_path, GUESTS_PLAY),
                        extra_vars=dict(GUEST_VARS, guests_vms=[{"name": "xl-hb-g1"}], guests_dir=str(guests_dir)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert _listing(guests_dir) == sorted([
        "decoy.qcow2", "notes.txt", ".hidden", "xl-hb-g10.console.log", "xl-hb-g1-0123456789abcdef.qcow2.bak",
        "xl-hb-g2-0123456789abcdef.qcow2", "xl-hb-g1-0123456789ABCDEF.qcow2", "someone-elses-vm.img"])


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")
def test_ovs_teardown_with_no_bridges_removes_nothing(tmp_path):
    ns = "xl-hbo" + TAG
    record = tmp_path / "ovs.json"
    record.write_text(json.dumps({"started": [], "netns": [ns]}))
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        proc = run_playbook(_play(tmp_path, OVS_PLAY), extra_vars=dict(ovs_bridges=[], ovs_state_file=str(record)))
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "nothing is removed" in proc.stdout
        assert ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
        assert json.loads(record.read_text()) == {"started": [], "netns": [ns]}
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


IMAGE_PLAY = GUESTS_PLAY.replace("guests role", "guest_image role").replace(
    "roles/guests/tasks/absent.yml", "the guest_image role with guest_image_state=absent").replace(
    "xdplab.offload.guests\n        tasks_from: absent.yml", "xdplab.offload.guest_image")


@pytest.mark.parametrize("cache", ["/", "/var/cache/xdplab", "/var/cache/xdplab/../../DECOY", "relative/cache",
                                   "/var/cache/xdplab/xl-hb-link"],
                         ids=["root", "cache-root", "dotdot", "relative", "symlink"])
def test_guest_image_teardown_removes_no_cache_outside_its_root(tmp_path, cache):
    """guest_image_state=absent deletes its cache whole: a typo must not remove anything else."""
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "keep").write_text("someone's data\n")
    link = "/var/cache/xdplab/xl-hb-link"
    os.makedirs("/var/cache/xdplab", exist_ok=True)
    os.symlink(str(decoy), link)
    try:
        proc = run_playbook(_play(tmp_path, IMAGE_PLAY), extra_vars={
            "guest_image_state": "absent", "guest_image_cache": cache.replace("DECOY", str(decoy).lstrip("/")),
            "guest_image_ssh_key": str(tmp_path / "no-key")})
    finally:
        os.unlink(link)
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert "nothing is removed" in proc.stdout + proc.stderr, proc.stdout[-3000:]
    assert (decoy / "keep").read_text() == "someone's data\n"
    assert os.path.isdir("/var/cache/xdplab") and os.path.isdir("/etc")
