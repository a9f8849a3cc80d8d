# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real QEMU guest on the emulated lab, provisioned by playbooks/guests.yml.

The playbook installs and starts libvirt + QEMU and Open vSwitch (by hand where
PID 1 is not systemd), builds the guest image (or takes it from the cache),
decides KVM or TCG with a probe boot, and boots one guest with a management
vNIC on a Linux bridge and a data vNIC on an OVS userspace bridge whose uplink
is a veth into the load generator's namespace. The tests then check that the
guest answers SSH with the image's host key pinned (StrictHostKeyChecking=yes
against the known_hosts file the guests role wrote; another key is refused),
that a second run changes nothing, that UDP from the generator's namespace
reaches the guest through OVS, that xdp_program runs the drop program inside
the guest in driver (virtio-net) and generic mode, that
vm_guest keeps a second real domain stable across runs and shuts it down over
ACPI, and that the teardown removes domains, taps, ports, bridges, the
namespace and the daemons the test started.

Every name starts with ``xl-t``; addresses are from 198.19.0.0/16 (inside
198.18.0.0/15) so that the test does not collide with a lab that is up.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import tempfile
import time

import pytest

from lib.labstate import alive, links, netns, read_json, stop_recorded_daemons
from lib.modrun import ROOT, recap_changed, run_module, run_playbook

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for libvirt, Open vSwitch and namespaces"),
]

PLAYBOOK = "playbooks/guests.yml"
XDP_PLAYBOOK = "tests/integration/playbooks/guest_xdp.yml"
GUEST, GUEST_IP, GUEST_DATA_IP = "xl-tg1", "198.19.1.10", "198.19.2.10"
BRIDGE, MGMT, UPLINK, GEN_NETNS, GEN_DEV = "xl-tbr0", "xl-tmgmt", "xl-tvmup0", "xl-tvmlg", "xl-tvmlg0"
GUESTS_DIR = "/var/lib/xdplab/test-guests"
OVS_STATE, HV_STATE = "/run/xdplab/test-ovs.json", "/run/xdplab/test-hypervisor.json"
VARS = {
    "hypervisor_state_file": HV_STATE,
    "ovs_state_file": OVS_STATE,
    "ovs_bridges": [{"name": BRIDGE, "datapath_type": "auto",
                     "uplinks": [{"name": UPLINK, "peer": GEN_DEV, "peer_netns": GEN_NETNS,
                                  "peer_address": "198.19.2.1/24", "tx_checksum_offload": False}]}],
    "guests_vms": [{"name": GUEST, "vcpus": 1, "memory_mib": 384, "mgmt_address": GUEST_IP + "/24",
                    "data": [{"bridge": BRIDGE, "address": GUEST_DATA_IP + "/24", "model": "virtio",
                              "checksum_offload": False}]}],
    "guests_mgmt_bridge": MGMT,
    "guests_mgmt_host_address": "198.19.1.1/24",
    "guests_dir": GUESTS_DIR,
    "guests_ssh_timeout": 600,
}
SECOND = "xl-tg2"
# The guests role pins the image's host key here (its default: beside the lab's key, one file per VM host).
KNOWN_HOSTS = "/var/cache/xdplab/guest/ssh/known_hosts-localhost"
HOST_KEY = "/var/cache/xdplab/guest/host-key/ssh_host_ed25519_key"


def _libvirt():
    import libvirt  # imported late: python3-libvirt is installed by the hypervisor role
    return libvirt


def _force_cleanup():
    """Remove whatever the teardown left (it normally leaves nothing), by exact names and recorded PIDs."""
    try:
        libvirt = _libvirt()
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # libvirtd may be gone: no stderr noise
        conn = libvirt.open("qemu:///system")
        for dom in conn.listAllDomains():
            if dom.name() in (GUEST, SECOND):
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
        conn.close()
    except Exception:  # pylint: disable=broad-except  # libvirtd may be gone already
        pass
    if shutil.which("ovs-vsctl"):
        subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", BRIDGE], check=False,
                       capture_output=True)
    for link in (UPLINK, MGMT, GUEST + "-0", GUEST + "-1", SECOND + "-0"):
        if link in links():
            subprocess.run(["ip", "link", "del", link], check=False, capture_output=True)
    if GEN_NETNS in netns():
        subprocess.run(["ip", "netns", "del", GEN_NETNS], check=False, capture_output=True)
    stop_recorded_daemons((HV_STATE, OVS_STATE))
    shutil.rmtree(GUESTS_DIR, ignore_errors=True)


def _ssh(key, *cmd, known_hosts=KNOWN_HOSTS):
    """SSH to the guest with its host key pinned (the known_hosts file the guests role wrote)."""
    return subprocess.run(["ssh", "-i", key, "-o", "StrictHostKeyChecking=yes",
                           "-o", "UserKnownHostsFile=" + known_hosts, "-o", "GlobalKnownHostsFile=/dev/null",
                           "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
                           "-o", "ConnectTimeout=20", "root@" + GUEST_IP] + list(cmd),
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    # A snapshot of bpf/: the image's inputs must not change between the test's runs when bpf/
    # is being edited (the image digest covers file contents and relative paths, not where they are).
    snapshot = str(tmp_path_factory.mktemp("xl-tbpf") / "bpf")
    shutil.copytree(os.path.join(ROOT, "bpf"), snapshot, symlinks=True)
    VARS["guest_image_bpf_source"] = snapshot
    proc = run_playbook(PLAYBOOK, extra_vars=VARS, timeout=2400)
    info = {"proc": proc, "key": "/var/cache/xdplab/guest/ssh/id_ed25519",
            "hv": read_json(HV_STATE), "ovs": read_json(OVS_STATE)}
    try:
        yield info
    finally:
        if not info.get("torn_down"):
            run_playbook(PLAYBOOK, extra_vars=VARS, tags=["teardown"], timeout=600)
        _force_cleanup()


def _require(lab):
    proc = lab["proc"]
    assert proc.returncode == 0, "provisioning failed:\n%s\n%s" % (proc.stdout[-6000:], proc.stderr[-3000:])


def _guest_domain():
    libvirt = _libvirt()
    conn = libvirt.open("qemu:///system")
    dom = conn.lookupByName(GUEST)
    xml = dom.XMLDesc(0)
    conn.close()
    return xml


def test_provisioning_boots_a_guest_that_answers_over_ssh(lab):
    _require(lab)
    out = lab["proc"].stdout
    assert "%s: 6." % GUEST in out  # the check play printed the guest's kernel
    probe = read_json("/var/cache/xdplab/kvm-probe.json")
    print("\nKVM probe: %s" % probe)
    if probe and not probe.get("usable"):
        assert "<domain type='qemu'" in _guest_domain()
    res = _ssh(lab["key"], "cat", "/proc/sys/kernel/hostname")
    assert res.returncode == 0 and res.stdout.strip() == GUEST, res.stderr


def _key_of(text):
    return [" ".join(line.split()[1:3]) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_the_guest_host_key_is_the_image_key_pinned_and_another_key_is_refused(lab):
    _require(lab)
    key = " ".join(subprocess.run(["ssh-keygen", "-y", "-f", HOST_KEY], capture_output=True, text=True,
                                  check=True).stdout.split()[:2])
    # the known_hosts file names the guest's management address with the image's key
    found = subprocess.run(["ssh-keygen", "-F", GUEST_IP, "-f", KNOWN_HOSTS], capture_output=True, text=True,
                           check=False)
    assert found.returncode == 0 and _key_of(found.stdout) == [key], found.stdout
    # the image is named after that key, and the guest offers that key and no other
    image_dir = _guest_domain().split("<kernel>")[1].split("</kernel>")[0].rsplit("/", 1)[0]
    assert read_json(os.path.join(image_dir, "manifest.json"))["inputs"]["ssh_host_public_key"] == key
    scan = subprocess.run(["ssh-keyscan", "-T", "20", "-t", "rsa,ecdsa,ed25519", GUEST_IP], capture_output=True,
                          text=True, timeout=120, check=False)
    assert _key_of(scan.stdout) == [key], scan.stdout + scan.stderr
    # StrictHostKeyChecking=yes against the pinned file logs in (every _ssh call does) ...
    assert _ssh(lab["key"], "true").returncode == 0
    # ... and against a file with another key for the same address it is refused
    with tempfile.TemporaryDirectory(prefix="xl-tkh") as tmp:
        other = os.path.join(tmp, "other")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other], check=True)
        wrong = os.path.join(tmp, "known_hosts")
        with open(other + ".pub", encoding="utf-8") as pub, open(wrong, "w", encoding="utf-8") as out:
            out.write("%s %s\n" % (GUEST_IP, " ".join(pub.read().split()[:2])))
        res = _ssh(lab["key"], "true", known_hosts=wrong)
    assert res.returncode == 255 and "Host key verification failed" in res.stderr, (res.returncode, res.stderr)


def test_vnic_is_an_ovs_port_with_the_domains_identity_and_checksum_offload_off(lab):
    _require(lab)
    xml = _guest_domain()
    assert "<target dev='%s-1'/>" % GUEST in xml and "<host csum='off'/>" in xml
    ports = subprocess.run(["ovs-vsctl", "list-ports", BRIDGE], capture_output=True, text=True, check=True)
    assert set(ports.stdout.split()) == {UPLINK, GUEST + "-1"}
    ids = subprocess.run(["ovs-vsctl", "get", "Interface", GUEST + "-1", "external_ids"],
                         capture_output=True, text=True, check=True).stdout
    assert "attached-mac=" in ids and "iface-id=" in ids
    dp = subprocess.run(["ovs-vsctl", "get", "Bridge", BRIDGE, "datapath_type"], capture_output=True, text=True,
                        check=True).stdout.strip().strip('"')
    assert dp == ("system" if os.path.isdir("/sys/module/openvswitch") else "netdev")


def test_second_run_changes_nothing(lab):
    _require(lab)
    proc = run_playbook(PLAYBOOK, extra_vars=VARS, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert recap_changed(proc.stdout) == 0, proc.stdout[-6000:]


def _guest_rx(key, mac):
    script = ("for d in /sys/class/net/*; do if [ \"$(cat $d/address)\" = %s ]; then "
              "cat $d/statistics/rx_packets; fi; done" % mac)
    res = _ssh(key, "sh", "-c", "'%s'" % script)
    assert res.returncode == 0, res.stderr
    return int(res.stdout.strip())


def _data_mac():
    xml = _guest_domain()
    start = xml.index("<source bridge='%s'/>" % BRIDGE)
    head = xml[:start]
    return head[head.rindex("<mac address='") + len("<mac address='"):].split("'")[0]


def test_udp_from_the_generator_namespace_reaches_the_guest_through_ovs(lab):
    _require(lab)
    mac = _data_mac()
    # no ARP on the way (a UDP socket queues only a few packets while ARP is unresolved), and a
    # warm-up so that the datapath's flow exists before counting starts
    subprocess.run(["ip", "-n", GEN_NETNS, "neigh", "replace", GUEST_DATA_IP, "lladdr", mac, "dev", GEN_DEV,
                    "nud", "permanent"], check=True)
    send = ("import socket,sys,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            "for i in range(int(sys.argv[2])):\n"
            "    s.sendto(b'xdplab'*10,(sys.argv[1],9))\n"
            "    if i % 10 == 9: time.sleep(0.001)\n")
    subprocess.run(["ip", "netns", "exec", GEN_NETNS, "python3", "-c", send, GUEST_DATA_IP, "20"], check=True)
    time.sleep(1)
    count = 1000
    before = _guest_rx(lab["key"], mac)
    subprocess.run(["ip", "netns", "exec", GEN_NETNS, "python3", "-c", send, GUEST_DATA_IP, str(count)], check=True)
    deadline, after = time.monotonic() + 20, before
    while time.monotonic() < deadline and after - before < count:
        time.sleep(1)
        after = _guest_rx(lab["key"], mac)
    print("\nguest received %d of %d UDP packets sent from %s" % (after - before, count, GEN_NETNS))
    # OVS's userspace datapath may lose a few under load; a broken path delivers none
    assert after - before >= 0.95 * count, "guest saw %d of %d packets" % (after - before, count)


def test_xdp_program_runs_inside_the_guest_in_driver_and_generic_mode(lab):
    _require(lab)
    with tempfile.TemporaryDirectory(prefix="xl-t") as tmp:
        results = os.path.join(tmp, "xdp.json")
        proc = run_playbook(XDP_PLAYBOOK, extra_vars={
            "guest_name": GUEST, "guest_ip": GUEST_IP, "guest_key": lab["key"], "guest_data_mac": _data_mac(),
            "guest_data_ip": GUEST_DATA_IP, "gen_netns": GEN_NETNS, "gen_dev": GEN_DEV, "packets": 200,
            "results_file": results}, timeout=900)
        assert proc.returncode == 0, proc.stdout[-6000:]
        got = read_json(results)
    print("\nXDP in the guest: %s" % got)
    assert [m["attached_mode"] for m in got["modes"]] == ["driver", "generic"]
    for mode in got["modes"]:
        assert mode["dropped"] >= 200 and mode["prog_id"]
    res = _ssh(lab["key"], "ip", "-j", "link", "show", got["interface"])
    assert '"xdp"' not in res.stdout  # detached again


def test_vm_guest_keeps_a_real_domain_stable_and_shuts_it_down_over_acpi(lab):
    _require(lab)
    xml = _guest_domain()
    image_dir = xml.split("<kernel>")[1].split("</kernel>")[0].rsplit("/", 1)[0]
    disk = os.path.join(GUESTS_DIR, SECOND + ".qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", image_dir + "/disk.raw", disk],
                   check=True)
    hypervisor = "kvm" if "<domain type='kvm'" in xml else "qemu"
    args = dict(name=SECOND, hypervisor=hypervisor, memory=256, kernel=image_dir + "/vmlinuz",
                initrd=image_dir + "/initrd.img", disk=disk, console_log=os.path.join(GUESTS_DIR, SECOND + ".log"),
                cmdline="root=LABEL=xl-root rw init=/sbin/xl-init quiet console=ttyS0",
                interfaces=[{"bridge": BRIDGE, "checksum_offload": False, "vlan": 42}], state="defined")
    try:
        planned = run_module("vm_guest", args, check=True, diff=True)
        assert planned.changed and planned["actions"] == ["define"] and planned["state"] == "absent"
        first = run_module("vm_guest", args)
        assert first.changed and first["state"] == "shutoff", first
        again = run_module("vm_guest", args)
        assert not again.changed and again["interfaces"] == first["interfaces"], again

        started = run_module("vm_guest", dict(args, state="running"))
        assert started["actions"] == ["start"] and started["state"] == "running", started
        tag = subprocess.run(["ovs-vsctl", "get", "Port", SECOND + "-0", "tag"], capture_output=True, text=True,
                             check=True).stdout.strip()
        assert tag == "42"
        deadline = time.monotonic() + 300
        log = os.path.join(GUESTS_DIR, SECOND + ".log")
        while time.monotonic() < deadline:
            if os.path.exists(log) and "xl-init: ready" in open(log, errors="replace").read():
                break
            time.sleep(1)
        else:
            pytest.fail("%s did not reach xl-init within 300 s" % SECOND)
        stopped = run_module("vm_guest", dict(args, state="shutdown", shutdown_timeout=120))
        assert stopped["actions"] == ["shutdown"] and stopped["state"] == "shutoff", stopped
        assert "xl-init: powering off" in open(log, errors="replace").read()
        assert SECOND + "-0" not in links()

        gone = run_module("vm_guest", dict(args, state="absent"))
        assert gone.changed and gone["actions"] == ["undefine"]
        assert not run_module("vm_guest", dict(args, state="absent")).changed
    finally:
        run_module("vm_guest", dict(args, state="absent"))
        for path in (disk, args["console_log"]):
            if os.path.exists(path):
                os.unlink(path)


def test_vm_guest_refuses_a_missing_bridge_and_a_missing_kernel(lab):
    _require(lab)
    args = dict(name=SECOND, hypervisor="qemu", kernel="/nonexistent/xl-vmlinuz", state="defined")
    result = run_module("vm_guest", args)
    assert result.failed and result["msg"].startswith("kernel /nonexistent/xl-vmlinuz does not exist on this host")
    xml = _guest_domain()
    kernel = xml.split("<kernel>")[1].split("</kernel>")[0]
    result = run_module("vm_guest", dict(args, kernel=kernel, interfaces=[{"bridge": "xl-tnobr"}]))
    assert result.failed
    assert "bridge xl-tnobr is not an Open vSwitch bridge on this host" in result["msg"]


def test_teardown_removes_domains_taps_ports_bridges_namespace_and_started_daemons(lab):
    _require(lab)
    proc = run_playbook(PLAYBOOK, extra_vars=VARS, tags=["teardown"], timeout=600)
    lab["torn_down"] = True
    assert proc.returncode == 0, proc.stdout[-6000:]
    present = links()
    for name in (GUEST + "-0", GUEST + "-1", BRIDGE, MGMT, UPLINK):
        assert name not in present
    assert GEN_NETNS not in netns()
    assert not os.path.exists(HV_STATE) and not os.path.exists(OVS_STATE)
    for entry in lab["hv"].get("started", []) + lab["ovs"].get("started", []):
        assert not alive(entry["pid"], entry["name"]), entry
    if not lab["ovs"].get("started"):  # OVS was running before the test: the bridge must still be gone
        ports = subprocess.run(["ovs-vsctl", "--timeout=5", "br-exists", BRIDGE], capture_output=True, check=False)
        assert ports.returncode == 2
    if not lab["hv"].get("started"):
        libvirt = _libvirt()
        conn = libvirt.open("qemu:///system")
        assert GUEST not in [d.name() for d in conn.listAllDomains()]
        conn.close()
    assert not os.path.exists(GUESTS_DIR) or not os.listdir(GUESTS_DIR)
