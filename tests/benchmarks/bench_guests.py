# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: guest image build (cold, cached), guest boot-to-SSH, OVS forwarding generator -> guest.

Everything runs through the collection's own playbook (playbooks/guests.yml)
with names ``xl-b...`` and addresses from 198.19.0.0/16, and is removed
afterwards (``--tags teardown``; the image cache of the cold build too unless
``--keep-image``).

* Image build, cold: the guest_image role into an empty cache directory
  (debootstrap, kernel, initramfs, pip, bpf/ build, mkfs.ext4 -d). Wall time of
  the play and the role's own ``build_seconds`` from the image's manifest.
  Cached: the same play again (inputs unchanged: a snapshot of bpf/ is used).
* Boot to SSH: the guest is forced off and started with libvirt; time from
  ``virDomainCreate`` to the SSH banner on the management address, and to a
  completed SSH login that runs the guest's Python (what Ansible needs).
* OVS forwarding: xl-loadgen (XDP live frames) in the generator's namespace
  sends 60-byte UDP frames into the uplink veth; an XDP_PASS program on the
  OVS end of that veth makes veth hand the redirected frames to the stack,
  where ovs-vswitchd (userspace datapath) reads them and forwards them to the
  guest's tap. The guest drops them with the collection's drop program in
  virtio-net's driver. Counted over the generator's send window: frames the
  OVS end received, frames OVS handed to the guest's tap, frames QEMU took from
  the tap (tap tx_packets) and its drops, frames the guest's NIC received.
  Baseline in the same run: the same generator and bridge, but the frames go
  to a plain veth port (no VM) whose far end drops them with XDP.

Prints numbers only; asserts only that they were measured. Run as root:

    .venv/bin/python -m pytest tests/benchmarks/bench_guests.py -m benchmark -s
    .venv/bin/python tests/benchmarks/bench_guests.py [--seconds 5] [--rounds 3] [--keep-image]
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, ".ansible", "collections"))

import pytest  # noqa: E402

from lib.modrun import run_playbook  # noqa: E402

GUEST, MGMT_IP, DATA_IP, GEN_IP = "xl-bg1", "198.19.11.10", "198.19.12.10", "198.19.12.1"
BRIDGE, MGMT, UPLINK, GEN_NETNS, GEN_DEV = "xl-bbr0", "xl-bmgmt", "xl-bvmup0", "xl-bvmlg", "xl-bvmlg0"
SINK_PORT, SINK_NETNS, SINK_DEV = "xl-bsink0", "xl-bsink", "xl-bsink1"
CACHE = "/var/cache/xdplab/bench-guest"
KEY = "/var/cache/xdplab/guest/ssh/id_ed25519"
LOADGEN = os.path.join(ROOT, "bpf", "loadgen", "build", "xl-loadgen")
XDP_SRC = ('#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n'
           'SEC("xdp") int xl_b%s(struct xdp_md *ctx) { return XDP_%s; }\n'
           'char LICENSE[] SEC("license") = "GPL";\n')


def bench_vars(bpf_snapshot):
    return {
        "hypervisor_state_file": "/run/xdplab/bench-hypervisor.json",
        "ovs_state_file": "/run/xdplab/bench-ovs.json",
        "ovs_bridges": [{"name": BRIDGE, "datapath_type": "auto",
                         "uplinks": [{"name": UPLINK, "peer": GEN_DEV, "peer_netns": GEN_NETNS,
                                      "peer_address": GEN_IP + "/24", "tx_checksum_offload": False},
                                     {"name": SINK_PORT, "peer": SINK_DEV, "peer_netns": SINK_NETNS,
                                      "peer_address": "198.19.12.20/24", "tx_checksum_offload": False}]}],
        "guest_image_cache": CACHE,
        "guest_image_bpf_source": bpf_snapshot,
        "guests_vms": [{"name": GUEST, "vcpus": 1, "memory_mib": 384, "mgmt_address": MGMT_IP + "/24",
                        "data": [{"bridge": BRIDGE, "address": DATA_IP + "/24", "model": "virtio",
                                  "checksum_offload": False}]}],
        "guests_mgmt_bridge": MGMT,
        "guests_mgmt_host_address": "198.19.11.1/24",
        "guests_dir": "/var/lib/xdplab/bench-guests",
    }


IMAGE_PLAY = """---
- name: Guest image only
  hosts: vm_hosts
  gather_facts: false
  roles:
    - role: xdplab.offload.guest_image
"""


def timed_playbook(path, extra_vars, tags=None):
    t0 = time.monotonic()
    proc = run_playbook(path, extra_vars=extra_vars, tags=tags, timeout=3000)
    elapsed = time.monotonic() - t0
    if proc.returncode != 0:
        raise RuntimeError("%s failed:\n%s\n%s" % (path, proc.stdout[-5000:], proc.stderr[-2000:]))
    return elapsed


def ssh(*cmd, timeout=60):
    return subprocess.run(["ssh", "-i", KEY, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                           "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                           "root@" + MGMT_IP] + list(cmd), capture_output=True, text=True, timeout=timeout,
                          check=False)


def banner(host, deadline):
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, 22), timeout=1) as sock:
                sock.settimeout(2)
                if sock.recv(64).startswith(b"SSH-"):
                    return time.monotonic()
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("no SSH banner from %s" % host)


def boot_to_ssh(rounds):
    import libvirt
    conn = libvirt.open("qemu:///system")
    dom = conn.lookupByName(GUEST)
    out = []
    for dummy in range(rounds):
        if dom.isActive():
            dom.destroy()
        t0 = time.monotonic()
        dom.create()
        t_banner = banner(MGMT_IP, t0 + 600)
        while ssh("python3", "-c", "pass").returncode != 0:
            if time.monotonic() - t0 > 600:
                raise RuntimeError("no SSH login into %s" % GUEST)
            time.sleep(0.2)
        out.append({"banner_s": t_banner - t0, "login_python_s": time.monotonic() - t0})
    conn.close()
    return out


def link_stat(dev, field, netns=None):
    path = "/sys/class/net/%s/statistics/%s" % (dev, field)
    if netns:
        res = subprocess.run(["ip", "netns", "exec", netns, "cat", path], capture_output=True, text=True, check=True)
        return int(res.stdout)
    with open(path) as handle:
        return int(handle.read())


def guest_data_dev(mac):
    res = ssh("ip", "-j", "link", "show")
    return next(link["ifname"] for link in json.loads(res.stdout) if link.get("address") == mac)


def guest_rx(dev):
    return int(ssh("cat", "/sys/class/net/%s/statistics/rx_packets" % dev).stdout)


def data_mac():
    import libvirt
    conn = libvirt.open("qemu:///system")
    xml = conn.lookupByName(GUEST).XMLDesc(0)
    conn.close()
    head = xml[:xml.index("<source bridge='%s'/>" % BRIDGE)]
    return head[head.rindex("<mac address='") + len("<mac address='"):].split("'")[0]


def send(dst_mac, dst_ip, seconds, rate):
    cmd = [LOADGEN, "--netns", GEN_NETNS, "--interface", GEN_DEV, "--dst-mac", dst_mac, "--src-ip", GEN_IP,
           "--dst-ip", dst_ip, "--duration", str(seconds), "--size", "60", "--cpu", "0"]
    if rate:
        cmd += ["--rate", str(rate), "--burst", "16"]  # small bursts: OVS reads through a socket buffer
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if res.returncode != 0:
        raise RuntimeError("xl-loadgen failed: %s" % res.stderr.strip())
    return json.loads(res.stdout)


def forwarding(seconds, rates, workdir):
    objs = {}
    arch = "/usr/include/%s-linux-gnu" % os.uname().machine
    for verdict in ("PASS", "DROP"):
        src = os.path.join(workdir, "xl_b%s.c" % verdict.lower())
        with open(src, "w") as handle:
            handle.write(XDP_SRC % (verdict.lower(), verdict))
        objs[verdict] = src[:-2] + ".o"
        subprocess.run(["clang", "-O2", "-g", "-target", "bpf", "-I" + arch, "-c", src, "-o", objs[verdict]],
                       check=True)
    # veth hands redirected frames to its peer only when the peer runs XDP (LAB-FACTS)
    for dev in (UPLINK, SINK_PORT):
        subprocess.run(["ip", "link", "set", "dev", dev, "xdpdrv", "obj", objs["PASS"], "sec", "xdp"], check=True)
    subprocess.run(["ip", "netns", "exec", SINK_NETNS, "ip", "link", "set", "dev", SINK_DEV, "xdpdrv", "obj",
                    objs["DROP"], "sec", "xdp"], check=True)
    mac = data_mac()
    dev = guest_data_dev(mac)
    attach = ssh("ip", "link", "set", "dev", dev, "xdpdrv", "obj", "/opt/xdplab/bpf/build/drop.o", "sec", "xdp")
    guest_xdp = "driver (drop.o)" if attach.returncode == 0 else "none (%s)" % attach.stderr.strip()
    sink_mac = subprocess.run(["ip", "netns", "exec", SINK_NETNS, "cat", "/sys/class/net/%s/address" % SINK_DEV],
                              capture_output=True, text=True, check=True).stdout.strip()
    tap = GUEST + "-1"
    rows = []
    for rate in rates:
        for target in ("veth (baseline)", "guest"):
            before = {"up_rx": link_stat(UPLINK, "rx_packets"),
                      "tap_tx": link_stat(tap, "tx_packets"), "tap_drop": link_stat(tap, "tx_dropped"),
                      "sink_rx": link_stat(SINK_DEV, "rx_packets", SINK_NETNS),
                      "guest_rx": guest_rx(dev) if target == "guest" else 0}
            gen = send(mac if target == "guest" else sink_mac, DATA_IP if target == "guest" else "198.19.12.20",
                       seconds, rate)
            time.sleep(0.5)
            after = {"up_rx": link_stat(UPLINK, "rx_packets"),
                     "tap_tx": link_stat(tap, "tx_packets"), "tap_drop": link_stat(tap, "tx_dropped"),
                     "sink_rx": link_stat(SINK_DEV, "rx_packets", SINK_NETNS),
                     "guest_rx": guest_rx(dev) if target == "guest" else 0}
            d = {k: after[k] - before[k] for k in before}
            window = gen["duration_s"]
            row = {"target": target, "rate_pps": rate or "max", "offered_pps": gen["packets_sent"] / window,
                   "uplink_rx_pps": d["up_rx"] / window}
            if target == "guest":
                row.update(qemu_took_pps=d["tap_tx"] / window,
                           tap_dropped_pps=d["tap_drop"] / window, delivered_pps=d["guest_rx"] / window)
            else:
                row.update(delivered_pps=d["sink_rx"] / window)
            rows.append(row)
    return guest_xdp, rows


def fmt(value):
    return "%10.0f" % value if isinstance(value, (int, float)) else "%10s" % value


def run(seconds=5.0, rounds=3, keep_image=False):
    results = {}
    with tempfile.TemporaryDirectory(prefix="xl-bench-") as tmp:
        snapshot = os.path.join(tmp, "bpf")
        shutil.copytree(os.path.join(ROOT, "bpf"), snapshot, symlinks=True)
        evars = bench_vars(snapshot)
        play = os.path.join(tmp, "image.yml")
        with open(play, "w") as handle:
            handle.write(IMAGE_PLAY)
        try:
            shutil.rmtree(CACHE, ignore_errors=True)
            results["image_cold_s"] = timed_playbook(play, evars)
            manifest = next(os.path.join(CACHE, d, "manifest.json") for d in os.listdir(CACHE)
                            if len(d) == 16 and os.path.isfile(os.path.join(CACHE, d, "manifest.json")))
            with open(manifest) as handle:
                results["image_build_seconds"] = json.load(handle)["build_seconds"]
            results["image_cached_s"] = [timed_playbook(play, evars) for dummy in range(2)]
            results["provision_s"] = timed_playbook("playbooks/guests.yml", evars)
            results["boot"] = boot_to_ssh(rounds)
            if os.path.exists(LOADGEN):
                results["guest_xdp"], results["forwarding"] = forwarding(seconds, [20000, 50000, 100000, 0], tmp)
            else:
                results["forwarding"] = "skipped: %s is not built (make -C bpf/loadgen)" % LOADGEN
        finally:
            teardown = run_playbook("playbooks/guests.yml", extra_vars=evars, tags=["teardown"], timeout=600)
            if teardown.returncode != 0:
                print("teardown failed:\n" + teardown.stdout[-3000:])
            if not keep_image:
                shutil.rmtree(CACHE, ignore_errors=True)
    report(results)
    return results


def report(r):
    print("\n== guest image (guest_image role; debootstrap %s) ==" % "bookworm")
    print("cold build        : %6.1f s wall (role's own build_seconds %.1f)"
          % (r["image_cold_s"], r["image_build_seconds"]))
    print("cached            : %s s wall (same inputs, nothing rebuilt)" %
          ", ".join("%.1f" % s for s in r["image_cached_s"]))
    print("provision all     : %6.1f s (hypervisor + ovs + image from cache + guest boot + SSH + Python)"
          % r["provision_s"])
    banners = [b["banner_s"] for b in r["boot"]]
    logins = [b["login_python_s"] for b in r["boot"]]
    print("\n== boot to SSH (%d rounds, libvirt start -> ...) ==" % len(r["boot"]))
    print("SSH banner        : median %5.1f s  (min %.1f, max %.1f)"
          % (statistics.median(banners), min(banners), max(banners)))
    print("login + python3   : median %5.1f s  (min %.1f, max %.1f)"
          % (statistics.median(logins), min(logins), max(logins)))
    if isinstance(r["forwarding"], str):
        print("\n== OVS forwarding ==\n" + r["forwarding"])
        return
    print("\n== OVS forwarding (userspace datapath), 60-byte UDP, xl-loadgen; guest XDP: %s ==" % r["guest_xdp"])
    cols = ["target", "rate_pps", "offered_pps", "uplink_rx_pps", "qemu_took_pps", "tap_dropped_pps",
            "delivered_pps"]
    print("(pps; uplink_rx: the OVS end of the generator's veth; qemu_took / tap_dropped: the guest's tap;")
    print(" delivered: rx_packets of the guest's data NIC, or of the baseline veth's far end)")
    print(" ".join("%16s" % c if c == "target" else "%10s" % c.replace("_pps", "")[:10] for c in cols))
    for row in r["forwarding"]:
        print(" ".join("%16s" % row[c] if c == "target" else fmt(row.get(c, "-")) for c in cols))


@pytest.mark.benchmark
@pytest.mark.slow
@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_bench_guests():
    r = run()
    assert r["image_cold_s"] > 0 and r["boot"] and r["forwarding"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep-image", action="store_true")
    args = parser.parse_args()
    run(args.seconds, args.rounds, args.keep_image)
