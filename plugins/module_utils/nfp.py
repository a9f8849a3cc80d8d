# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Netronome NFP (Agilio SmartNIC) knowledge and firmware selection.

Pure Python, no Ansible import. Two halves:

* **Firmware** (used by the ``nfp_firmware`` module): find the card in sysfs,
  derive the names the ``nfp`` driver asks the firmware loader for, in the
  driver's own order (``nfp_net_fw_find()`` in drivers/net/ethernet/netronome/
  nfp/nfp_main.c)::

      netronome/serial-<6 serial bytes>-<2 interface bytes>.nffw
      netronome/pci-<domain:bus:dev.fn>.nffw
      netronome/nic_<part number>_<media>.nffw      e.g. nic_AMDA0096-0001_2x10.nffw

  (each also as ``.zst``/``.xz`` where the kernel decompresses firmware), and
  point one of them at a flavour's file (``netronome/bpf/``, ``nic/``,
  ``flower/``, ``nic-sriov/`` as linux-firmware and Debian's
  firmware-netronome ship them). Every path is taken below ``root`` so that
  tests run against a fixture tree. Commands (ethtool, devlink, modprobe)
  go through ``NfpHost.run`` (one argument list each), the only boundary
  unit tests replace.

* **Offload capabilities** (used by the experiment matrix and xdp_program):
  what the NFP's BPF offload cannot do, as data (``NFP_OFFLOAD``) plus
  ``cell_support()`` that says whether an experiment cell can run at a
  location on this card and why not, and ``classify_offload_error()`` that
  turns the driver's rejection messages into a reason.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import os
import re
import struct
import time

# --------------------------------------------------------------------- data

#: PCI vendor ids of NFP devices (Netronome, Corigine).
VENDOR_IDS = ("0x19ee", "0x1da8")
#: Physical-function device ids the nfp driver binds as a PF.
PF_DEVICE_IDS = {"0x4000": "NFP4000", "0x5000": "NFP5000", "0x6000": "NFP6000", "0x6010": "NFP6000",
                 "0x3800": "NFP3800"}
#: Virtual functions (nfp_netvf): never a firmware target.
VF_DEVICE_IDS = ("0x6003", "0x3803")

#: Firmware flavours: sub-directory under netronome/ and the application name
#: the driver reports as the last word of ``ethtool -i``'s firmware-version
#: (nfp_app_name(): "nic" core NIC, "ebpf" BPF offload, "flower" OVS-TC).
FLAVOURS = {
    "bpf": {"dir": "bpf", "app": "ebpf", "description": "BPF offload (XDP/cls_bpf on the NIC)"},
    "nic": {"dir": "nic", "app": "nic", "description": "basic NIC (CoreNIC)"},
    "flower": {"dir": "flower", "app": "flower", "description": "OVS-TC flower offload"},
    "nic-sriov": {"dir": "nic-sriov", "app": "nic", "description": "basic NIC with SR-IOV VFs"},
}

#: Cards and the media configurations their firmware files exist for
#: (file names nic_<part>_<media>.nffw; the first is the usual default).
CARDS = {
    "AMDA0096-0001": {"name": "Agilio CX 2x10GbE", "media": ["2x10"]},
    "AMDA0099-0001": {"name": "Agilio CX 2x25GbE", "media": ["2x25", "2x10", "1x10_1x25"]},
    "AMDA0097-0001": {"name": "Agilio CX 2x40GbE", "media": ["2x40", "4x10_1x40", "8x10"]},
    "AMDA0081-0001": {"name": "Agilio CX 1x40GbE", "media": ["1x40", "4x10"]},
    "AMDA0058-0011": {"name": "Agilio LX 2x40GbE", "media": ["2x40"]},
    "AMDA0058-0012": {"name": "Agilio LX 2x40GbE", "media": ["2x40"]},
    "AMDA0078-0011": {"name": "Agilio LX 1x100GbE", "media": ["1x100"]},
}

#: Who ships the flavour directories (for "firmware file missing" errors).
FIRMWARE_PACKAGES = ("Debian: firmware-netronome (component non-free-firmware); "
                     "Ubuntu: linux-firmware; Fedora/RHEL: netronome-firmware or linux-firmware; "
                     "or linux-firmware.git's netronome/ directory")

#: What the kernel's firmware loader tries after the plain name.
COMPRESSION_SUFFIXES = ("", ".zst", ".xz")
LINK_KINDS = ("serial", "pci", "part")
RELOAD_METHODS = ("pci_rescan", "module", "none")
FW_LOAD_POLICIES = ("driver", "flash", "disk")

_BDF_RE = re.compile(r"^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$")
_PART_RE = re.compile(r"^AMDA\d{4}-\d{4}$")
_MEDIA_RE = re.compile(r"^\d+x\d+(?:_\d+x\d+)*$")
PCI_EXT_CAP_DSN = 0x0003


class NfpError(Exception):
    """A failure with one actionable sentence in ``msg`` and details."""

    def __init__(self, msg, **details):
        super(NfpError, self).__init__(msg)
        self.msg = msg
        self.details = details


# ------------------------------------------------------------ names & paths

def normalize_bdf(value):
    """``02:00.0`` or ``0000:02:00.0`` -> ``0000:02:00.0`` (lower case)."""
    match = _BDF_RE.match((value or "").strip())
    if not match:
        raise NfpError("%r is not a PCI address: use domain:bus:device.function, e.g. 0000:02:00.0" % (value,))
    domain, bus, dev, fn = match.groups()
    return ("%s:%s:%s.%s" % (domain or "0000", bus, dev, fn)).lower()


def host_path(root, path):
    """``path`` (absolute on the managed host) below ``root``."""
    return os.path.join(root or "/", path.lstrip("/"))


def pci_dir(root, bdf):
    return host_path(root, "/sys/bus/pci/devices/%s" % bdf)


def serial_fw_name(dsn):
    """netronome/serial-... name from the PCIe Device Serial Number (64-bit).

    The driver (nfp6000_read_serial/get_interface) takes the serial as the
    six bytes above the low 16 bits, big endian, and the interface as the low
    16 bits: ``serial-%pMF-%02x-%02x.nffw``.
    """
    serial = struct.pack(">IH", (dsn >> 32) & 0xffffffff, (dsn >> 16) & 0xffff)
    interface = dsn & 0xffff
    return "serial-%s-%02x-%02x.nffw" % ("-".join("%02x" % b for b in serial), interface >> 8, interface & 0xff)


def pci_fw_name(bdf):
    return "pci-%s.nffw" % bdf


def part_fw_name(part_number, media):
    return "nic_%s_%s.nffw" % (part_number, media)


def parse_dsn(config):
    """The Device Serial Number from a PCI config space dump (bytes), or None.

    Walks the PCIe extended capability list from offset 0x100 (only there
    when the dump has the extended space, i.e. was read as root).
    """
    offset, seen = 0x100, set()
    while offset and offset + 12 <= len(config) and offset not in seen:
        seen.add(offset)
        header = struct.unpack_from("<I", config, offset)[0]
        if header in (0, 0xffffffff):
            return None
        if header & 0xffff == PCI_EXT_CAP_DSN:
            low, high = struct.unpack_from("<II", config, offset + 4)
            return (high << 32) | low
        offset = (header >> 20) & 0xffc
    return None


def firmware_search_dirs(root, firmware_dir, release=None, custom_path=None):
    """Directories the kernel's firmware loader searches, in its order.

    firmware_class.path (if set), then <dir>/updates/<release>, <dir>/updates,
    <dir>/<release>, <dir> (drivers/base/firmware_loader/main.c).
    """
    dirs = []
    if custom_path:
        dirs.append(host_path(root, custom_path))
    base = host_path(root, firmware_dir)
    if release:
        dirs.append(os.path.join(base, "updates", release))
    dirs.append(os.path.join(base, "updates"))
    if release:
        dirs.append(os.path.join(base, release))
    dirs.append(base)
    return dirs


def find_firmware(search_dirs, name):
    """Where the loader finds firmware ``name`` (e.g. netronome/pci-...nffw).

    The loader tries the plain name in every directory first, then each
    compressed suffix: returns (path, suffix) or (None, None).
    """
    for suffix in COMPRESSION_SUFFIXES:
        for directory in search_dirs:
            path = os.path.join(directory, name + suffix)
            if os.path.exists(path):
                return path, suffix
    return None, None


def lookup_names(bdf, part_number=None, media=None, dsn=None):
    """[(kind, 'netronome/<name>')] in the order the nfp driver asks for them."""
    names = []
    if dsn is not None:
        names.append(("serial", "netronome/" + serial_fw_name(dsn)))
    names.append(("pci", "netronome/" + pci_fw_name(bdf)))
    if part_number and media:
        names.append(("part", "netronome/" + part_fw_name(part_number, media)))
    return names


def effective_firmware(search_dirs, names):
    """The first name the driver would find: dict(kind, name, path, target) or None."""
    for kind, name in names:
        path, suffix = find_firmware(search_dirs, name)
        if path:
            return {"kind": kind, "name": name + suffix, "path": path, "target": os.path.realpath(path)}
    return None


def flavour_file(netronome_dir, flavour, part_number, media):
    """(absolute path, suffix) of the flavour's firmware for the card; NfpError if missing."""
    info = FLAVOURS[flavour]
    base = os.path.join(netronome_dir, info["dir"], part_fw_name(part_number, media))
    for suffix in COMPRESSION_SUFFIXES:
        if os.path.exists(base + suffix):
            return base + suffix, suffix
    raise NfpError("firmware file %s (flavour %s for %s, media %s) does not exist: install the Netronome "
                   "firmware (%s)" % (base, flavour, part_number, media, FIRMWARE_PACKAGES),
                   firmware_file=base, flavor=flavour)


def media_choices(netronome_dir, flavour, part_number):
    """Media configurations with a file for this part in the flavour directory."""
    directory = os.path.join(netronome_dir, FLAVOURS[flavour]["dir"])
    prefix = "nic_%s_" % part_number
    found = set()
    if os.path.isdir(directory):
        for fname in os.listdir(directory):
            for suffix in COMPRESSION_SUFFIXES[1:]:
                if fname.endswith(suffix):
                    fname = fname[:-len(suffix)]
            if fname.startswith(prefix) and fname.endswith(".nffw"):
                found.add(fname[len(prefix):-len(".nffw")])
    return sorted(m for m in found if _MEDIA_RE.match(m))


def choose_media(netronome_dir, flavour, part_number, media=None):
    """The media string: given, the card's only one, or the only file present."""
    if media:
        if not _MEDIA_RE.match(media):
            raise NfpError("media %r is not of the form <ports>x<Gbps>[_<ports>x<Gbps>], e.g. 2x10" % media)
        return media
    known = CARDS.get(part_number, {}).get("media", [])
    if len(known) == 1:
        return known[0]
    present = media_choices(netronome_dir, flavour, part_number)
    if len(present) == 1:
        return present[0]
    choices = sorted(set(known) | set(present))
    raise NfpError("cannot tell which media configuration %s uses (%s): set media to one of %s"
                   % (part_number, CARDS.get(part_number, {}).get("name", "unknown card"),
                      ", ".join(choices) or "the suffix of its nic_%s_*.nffw file" % part_number),
                   media_choices=choices)


def check_part_number(part_number, netronome_dir):
    """Refuse a malformed or unknown part number (unknown = no table entry and no file)."""
    if not part_number or not _PART_RE.match(part_number):
        raise NfpError("part number %r is not of the form AMDAxxxx-xxxx (e.g. AMDA0096-0001 for the "
                       "Agilio CX 2x10GbE)" % (part_number,))
    if part_number in CARDS:
        return CARDS[part_number]["name"]
    for flavour in FLAVOURS:
        if media_choices(netronome_dir, flavour, part_number):
            return "unlisted card"
    raise NfpError("unknown part number %s: no firmware for it under %s and not a known card (%s)"
                   % (part_number, netronome_dir, ", ".join("%s %s" % (p, c["name"]) for p, c in sorted(CARDS.items()))),
                   part_number=part_number)


# ----------------------------------------------------------- parsing output

def parse_ethtool_info(text):
    """``ethtool -i`` -> dict(driver, firmware_version, bus_info, app)."""
    info = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip().replace("-", "_")] = value.strip()
    info["app"] = app_from_fw_version(info.get("firmware_version", ""))
    return info


def app_from_fw_version(fw_version):
    """The nfp driver's firmware-version is '<vNIC> <NSP> <app firmware> <app name>'."""
    words = (fw_version or "").split()
    return words[-1] if len(words) >= 2 else None


def parse_devlink_info(text, bdf):
    """``devlink -j dev info pci/<bdf>`` -> dict(board_id, fw_app, serial_number, ...)."""
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    dev = (data.get("info") or {}).get("pci/%s" % bdf) or {}
    versions = dev.get("versions") or {}
    fixed, running, stored = (versions.get(k) or {} for k in ("fixed", "running", "stored"))
    return {"driver": dev.get("driver"), "serial_number": dev.get("serial_number"),
            "board_id": fixed.get("board.id"), "fw_app": running.get("fw.app"),
            "stored_fw_app": stored.get("fw.app"), "fw_mgmt": running.get("fw.mgmt")}


def parse_devlink_param(text, bdf, name, cmode="permanent"):
    """Value of a devlink parameter from ``devlink -j dev param show``, or None."""
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return None
    for param in (data.get("param") or {}).get("pci/%s" % bdf) or []:
        if param.get("name") != name:
            continue
        for value in param.get("values") or []:
            if value.get("cmode") == cmode:
                return value.get("value")
    return None


def app_matches(flavour, ethtool_app=None, devlink_app=None):
    """Does the running app belong to ``flavour``? ethtool's app name decides;
    devlink's fw.app (e.g. 'nic-22.09.0') only where ethtool has none."""
    want = FLAVOURS[flavour]["app"]
    if ethtool_app:
        return ethtool_app == want
    if devlink_app:
        prefix = devlink_app.split("-", 1)[0].lower()
        return prefix in ({"bpf", "ebpf"} if want == "ebpf" else {want})
    return False


# ---------------------------------------------------------------- the host

class NfpHost:
    """The managed host as seen by the firmware logic.

    ``run(argv)`` -> (rc, stdout, stderr) is the only way out to commands
    (AnsibleModule.run_command in the module, a fake in tests); files are
    read and written below ``root``.
    """

    def __init__(self, run, root="/", sleep=None, clock=None):
        self._run = run
        self.root = root or "/"
        self._sleep = sleep
        self._clock = clock
        self.commands = []

    def sleep(self, seconds):
        (self._sleep or time.sleep)(seconds)

    def clock(self):
        return (self._clock or time.monotonic)()

    def run(self, argv, check=False):
        self.commands.append(" ".join(argv))
        rc, out, err = self._run(list(argv))
        if check and rc != 0:
            raise NfpError("%s failed (exit %d): %s" % (" ".join(argv), rc, (err or out or "").strip()),
                           command=list(argv), rc=rc, stderr=err)
        return rc, out, err

    def path(self, path):
        return host_path(self.root, path)

    def read(self, path, default=None):
        try:
            with open(self.path(path)) as handle:
                return handle.read().strip()
        except (IOError, OSError):
            return default

    def write_sysfs(self, path, value):
        """Write ``value`` to a sysfs attribute (recorded like a command)."""
        self.commands.append("echo %s > %s" % (value, path))
        try:
            with open(self.path(path), "w") as handle:
                handle.write(value)
        except (IOError, OSError) as exc:
            raise NfpError("cannot write %s to %s: %s" % (value, path, exc.strerror or exc), path=path)

    # ---- cards

    def cards(self):
        """Every NFP physical function in sysfs: [dict(bdf, device, driver, netdevs)]."""
        base = self.path("/sys/bus/pci/devices")
        found = []
        for bdf in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            card = self.card_info(bdf)
            if card["vendor"] in VENDOR_IDS and card["device"] in PF_DEVICE_IDS:
                found.append(card)
        return found

    def card_info(self, bdf):
        rel = "/sys/bus/pci/devices/%s" % bdf
        driver_link = self.path(rel + "/driver")
        net = self.path(rel + "/net")
        return {
            "bdf": bdf,
            "vendor": (self.read(rel + "/vendor") or "").lower(),
            "device": (self.read(rel + "/device") or "").lower(),
            "driver": os.path.basename(os.readlink(driver_link)) if os.path.islink(driver_link) else None,
            "netdevs": sorted(os.listdir(net)) if os.path.isdir(net) else [],
        }

    def find_card(self, pci=None, interface=None):
        """The card to act on, by PCI address, interface, or the only one present."""
        if interface:
            link = self.path("/sys/class/net/%s/device" % interface)
            if not os.path.exists(link):
                raise NfpError("interface %s does not exist or is not a PCI device" % interface, interface=interface)
            bdf = os.path.basename(os.path.realpath(link))
            if pci and normalize_bdf(pci) != bdf:
                raise NfpError("interface %s belongs to %s, not %s" % (interface, bdf, normalize_bdf(pci)))
            pci = bdf
        if pci:
            bdf = normalize_bdf(pci)
            if not os.path.isdir(pci_dir(self.root, bdf)):
                raise NfpError("no PCI device %s (%s missing)" % (bdf, "/sys/bus/pci/devices/" + bdf), pci=bdf)
            card = self.card_info(bdf)
            if card["vendor"] not in VENDOR_IDS:
                raise NfpError("%s is not an NFP card (vendor %s; Netronome is 0x19ee, Corigine 0x1da8)"
                               % (bdf, card["vendor"] or "unknown"), pci=bdf)
            if card["device"] not in PF_DEVICE_IDS:
                raise NfpError("%s is an NFP %s, not a physical function: firmware is loaded through the PF"
                               % (bdf, "virtual function" if card["device"] in VF_DEVICE_IDS else
                                  "device " + card["device"]), pci=bdf)
            return card
        cards = self.cards()
        if not cards:
            raise NfpError("no Netronome/Corigine NFP card found under /sys/bus/pci/devices: check lspci -d 19ee: "
                           "and that the nfp module is loaded")
        if len(cards) > 1:
            raise NfpError("%d NFP cards found (%s): choose one with pci or interface"
                           % (len(cards), ", ".join(c["bdf"] for c in cards)), cards=[c["bdf"] for c in cards])
        return cards[0]

    def dsn(self, bdf):
        try:
            with open(os.path.join(pci_dir(self.root, bdf), "config"), "rb") as handle:
                return parse_dsn(handle.read(4096))
        except (IOError, OSError):
            return None

    def firmware_class_path(self):
        return self.read("/sys/module/firmware_class/parameters/path") or None

    # ---- what runs

    def ethtool_info(self, netdev):
        rc, out, dummy = self.run(["ethtool", "-i", netdev])
        return parse_ethtool_info(out) if rc == 0 else {}

    def devlink_info(self, bdf):
        rc, out, dummy = self.run(["devlink", "-j", "dev", "info", "pci/" + bdf])
        return parse_devlink_info(out, bdf) if rc == 0 else {}

    def running_app(self, bdf):
        """dict(ethtool_app, devlink_app, firmware_version, netdevs) of the card now."""
        card = self.card_info(bdf)
        state = {"netdevs": card["netdevs"], "driver": card["driver"], "ethtool_app": None,
                 "devlink_app": None, "firmware_version": None}
        for netdev in card["netdevs"]:
            info = self.ethtool_info(netdev)
            if info.get("app"):
                state["ethtool_app"] = info["app"]
                state["firmware_version"] = info.get("firmware_version")
                break
        state["board_id"] = None
        if card["driver"]:
            info = self.devlink_info(bdf)
            state["devlink_app"] = info.get("fw_app")
            state["board_id"] = info.get("board_id")
        return state

    def fw_load_policy(self, bdf):
        rc, out, dummy = self.run(["devlink", "-j", "dev", "param", "show", "pci/" + bdf, "name", "fw_load_policy"])
        return parse_devlink_param(out, bdf, "fw_load_policy") if rc == 0 else None

    def set_fw_load_policy(self, bdf, value):
        self.run(["devlink", "dev", "param", "set", "pci/" + bdf, "name", "fw_load_policy",
                  "value", value, "cmode", "permanent"], check=True)

    def flash(self, bdf, firmware_name):
        """devlink dev flash: the file name is looked up like any firmware (netronome/...)."""
        self.run(["devlink", "dev", "flash", "pci/" + bdf, "file", firmware_name], check=True)

    # ---- reload

    @staticmethod
    def reload_steps(method, bdf):
        """What a reload does, as readable steps (check mode shows them)."""
        if method == "pci_rescan":
            return ["echo 1 > /sys/bus/pci/devices/%s/remove" % bdf, "echo 1 > /sys/bus/pci/rescan"]
        if method == "module":
            return ["modprobe -r nfp", "modprobe nfp"]
        return []

    def reload(self, method, bdf):
        if method == "pci_rescan":
            self.write_sysfs("/sys/bus/pci/devices/%s/remove" % bdf, "1")
            self.write_sysfs("/sys/bus/pci/rescan", "1")
        elif method == "module":
            self.run(["modprobe", "-r", "nfp"], check=True)
            self.run(["modprobe", "nfp"], check=True)

    def wait_for_card(self, bdf, timeout):
        """Wait until the driver is bound and the card has a netdev again."""
        deadline = self.clock() + timeout
        while True:
            card = self.card_info(bdf) if os.path.isdir(pci_dir(self.root, bdf)) else None
            if card and card["driver"] and card["netdevs"]:
                return card
            if self.clock() >= deadline:
                raise NfpError("%s did not come back with a network interface within %d s after the reload: "
                               "see dmesg for the nfp driver's firmware messages" % (bdf, timeout),
                               pci=bdf, errno=errno.ETIMEDOUT)
            self.sleep(1.0)


# ------------------------------------------------------------- link changes

def read_link(path):
    """(kind, target): ('symlink', target), ('file', None) or (None, None)."""
    if os.path.islink(path):
        return "symlink", os.readlink(path)
    if os.path.exists(path):
        return "file", None
    return None, None


def replace_symlink(path, target):
    """Point ``path`` at ``target`` atomically (symlink, then rename over)."""
    tmp = "%s.xl-tmp-%d" % (path, os.getpid())
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.rename(tmp, path)


def restore_link(path, kind, target):
    """Put back what ``read_link`` saw (a symlink or nothing)."""
    if kind == "symlink":
        replace_symlink(path, target)
    elif kind is None and os.path.lexists(path):
        os.unlink(path)


# ---------------------------------------------------- offload capabilities

#: What the NFP BPF offload (nfp driver + BPF firmware) supports; facts from
#: the driver's verifier/JIT (drivers/net/ethernet/netronome/nfp/bpf/).
NFP_OFFLOAD = {
    # offload.c: only these map types can live on the card (no per-CPU maps,
    # no LRU, no DEVMAP/CPUMAP/XSKMAP); perf event arrays stay on the host.
    "map_types": ("array", "hash", "perf_event_array"),
    # XDP_REDIRECT needs a host-side map (devmap/xskmap): not on the card.
    "actions": ("XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX"),
    # verifier.c nfp_bpf_check_helper_call(): everything else is
    # "unsupported function id"; some depend on firmware capabilities.
    "helpers": ("map_lookup_elem", "map_update_elem", "map_delete_elem", "get_prandom_u32",
                "perf_event_output", "xdp_adjust_head", "xdp_adjust_tail"),
    # Map values may be read or atomically added to, never written with a
    # plain store ("map writes not supported"): counters use atomic adds.
    "map_value_writes": "atomic_add_only",
    # Program length and stack size are limits the firmware reports at run
    # time (NFP_NET_CFG_BPF_MAX_LEN, NFP_NET_CFG_BPF_STACK_SZ x 64 bytes).
    "limits": ("max_nfp_instructions (firmware)", "stack_bytes (firmware)",
               "packet access below the firmware's packet split boundary (MTU)"),
    # AF_XDP on the nfp's driver path (XSK zero-copy, nfp_net_xsk.c) arrived
    # in Linux 5.18; before that AF_XDP on the card needs generic XDP.
    "afxdp_native_since_kernel": (5, 18),
}

#: Features of the built-in programs as the offload build (-DXL_OFFLOAD) has them.
PROGRAM_FEATURES = {
    "drop": {"actions": ("XDP_DROP",), "map_types": ("array",), "helpers": ("map_lookup_elem",)},
    "loop": {"actions": ("XDP_DROP",), "map_types": ("array",), "helpers": ("map_lookup_elem",),
             "bounded_loop": True},
    "checksum": {"actions": ("XDP_DROP",), "map_types": ("array",), "helpers": ("map_lookup_elem",),
                 "bounded_loop": True, "stack_bytes": 120},
    "dns_nxdomain": {"actions": ("XDP_PASS", "XDP_TX"), "map_types": ("array",), "helpers": ("map_lookup_elem",)},
}

#: Locations an experiment cell can name, and where the program runs.
OFFLOAD_LOCATIONS = ("offload",)
AFXDP_LOCATIONS = ("afxdp",)

_OFFLOAD_ERRORS = (
    (r"program too long", "the program is longer than the NFP's instruction store "
                          "(firmware limit NFP_NET_CFG_BPF_MAX_LEN)"),
    (r"stack too large", "the program's stack is larger than the NFP firmware's stack"),
    (r"map writes not supported", "the program writes map values with plain stores; the NFP only "
                                  "reads them or adds atomically (build with -DXL_OFFLOAD)"),
    (r"unsupported function id|not supported by FW",
     "the program calls a helper the NFP does not implement (supported: %s)" % ", ".join(NFP_OFFLOAD["helpers"])),
    (r"instruction \S+ not supported", "the program uses a BPF instruction the NFP JIT does not translate"),
    (r"packet split boundary", "the program reads packet bytes beyond the NFP's packet split boundary "
                               "(lower the MTU or read less of the packet)"),
    (r"map type|unsupported map|PERCPU",
     "the program uses a map type the NFP cannot hold (supported: %s)" % ", ".join(NFP_OFFLOAD["map_types"])),
)


def classify_offload_error(*texts):
    """A reason sentence for an NFP offload rejection (message, verifier log, ...), or None."""
    joined = "\n".join(t for t in texts if t)
    for pattern, reason in _OFFLOAD_ERRORS:
        if re.search(pattern, joined, re.IGNORECASE):
            return reason
    return None


def _kernel_tuple(release):
    match = re.match(r"^(\d+)\.(\d+)", release or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def cell_support(location, program, features=None, nic_app=None, kernel=None, caps=None):
    """Can a cell run ``program`` at ``location`` on an NFP lab? -> dict.

    Returns ``{'status': 'ok'|'unsupported', 'reason': str|None, 'xdp_mode': str|None}``.

    * ``offload``: the card must run the BPF firmware (``nic_app`` 'ebpf', when
      known) and the program's features (``PROGRAM_FEATURES`` for built-ins,
      or ``features`` for your own) must fit ``NFP_OFFLOAD``; ``caps`` may
      give firmware limits measured on the card (``stack_bytes``).
    * ``afxdp``: the XDP program redirects into an XSKMAP, which never runs on
      the card; on the nfp driver it is native XDP from Linux 5.18 on
      (``kernel`` release string), generic XDP before.
    * anything else (driver, generic): ok.
    """
    caps = caps or {}
    if location in AFXDP_LOCATIONS:
        since = NFP_OFFLOAD["afxdp_native_since_kernel"]
        release = _kernel_tuple(kernel)
        if release is not None and release < since:
            return {"status": "ok", "xdp_mode": "generic",
                    "reason": "the nfp driver before Linux %d.%d has no XDP_REDIRECT/AF_XDP support in driver "
                              "mode: the AF_XDP redirect program runs in generic XDP" % since}
        return {"status": "ok", "xdp_mode": "driver", "reason": None}
    if location not in OFFLOAD_LOCATIONS:
        return {"status": "ok", "xdp_mode": location, "reason": None}
    if nic_app is not None and nic_app != FLAVOURS["bpf"]["app"]:
        return {"status": "unsupported", "xdp_mode": None,
                "reason": "the card runs the %r firmware app, not 'ebpf': load the BPF firmware with "
                          "xdplab.offload.nfp_firmware (flavor: bpf)" % nic_app}
    feats = features if features is not None else PROGRAM_FEATURES.get(program)
    if feats is None:
        return {"status": "ok", "xdp_mode": "offload",
                "reason": "no feature list for %s: the card's verifier decides at load time" % program}
    problems = []
    bad = sorted(set(feats.get("actions", ())) - set(NFP_OFFLOAD["actions"]))
    if bad:
        problems.append("returns %s, which the NFP cannot execute (AF_XDP/redirect needs the host: use "
                        "location driver or generic)" % "/".join(bad))
    bad = sorted(set(feats.get("map_types", ())) - set(NFP_OFFLOAD["map_types"]))
    if bad:
        problems.append("uses %s maps, which cannot be offloaded (supported: %s)"
                        % ("/".join(bad), ", ".join(NFP_OFFLOAD["map_types"])))
    bad = sorted(set(feats.get("helpers", ())) - set(NFP_OFFLOAD["helpers"]))
    if bad:
        problems.append("calls %s, not implemented on the NFP" % ", ".join(bad))
    stack = feats.get("stack_bytes")
    if stack and caps.get("stack_bytes") and stack > caps["stack_bytes"]:
        problems.append("needs %d bytes of stack, the firmware offers %d" % (stack, caps["stack_bytes"]))
    if problems:
        return {"status": "unsupported", "xdp_mode": None, "reason": "%s %s" % (program, "; ".join(problems))}
    return {"status": "ok", "xdp_mode": "offload", "reason": None}


# ------------------------------------------------- firmware: want/have/apply

class FirmwarePlan:
    """What ``nfp_firmware`` wants, what the card has, and what would change."""

    def __init__(self):
        self.card = None
        self.bdf = None
        self.part_number = None
        self.card_name = None
        self.media = None
        self.flavor = None
        self.method = None
        self.before = {}
        self.running = {}
        self.link_path = None        # on the managed host (below root)
        self.link_target = None      # relative symlink target
        self.link_have = (None, None)
        self.stale_links = []        # [(path, kind, target)] other suffixes of the same name
        self.firmware_file = None
        self.firmware_name = None    # netronome/<dir>/<file> (what devlink flash asks for)
        self.policy_have = None
        self.policy_want = None
        self.changes = []            # readable steps
        self.warnings = []
        self.reload_needed = False


def _display(host, path):
    """A path below root as the managed host names it."""
    root = os.path.abspath(host.root)
    path = os.path.abspath(path)
    if root != "/" and (path == root or path.startswith(root + os.sep)):
        return "/" + os.path.relpath(path, root) if path != root else "/"
    return path


def _shadow(search_dirs, names, our_kind, link_path, ignore):
    """A firmware file the driver would load instead of ``link_path``, or None."""
    for kind, name in names:
        if kind != our_kind:
            path, dummy = find_firmware(search_dirs, name)
            if path:
                return path
            continue
        for suffix in COMPRESSION_SUFFIXES:
            for directory in search_dirs:
                path = os.path.join(directory, name + suffix)
                if path == link_path:
                    return None
                if os.path.lexists(path) and path not in ignore:
                    return path
        return None
    return None


def plan_firmware(host, params, release=None):
    """Read the card and compute the plan; raises NfpError with a clear message.

    params: pci, interface, flavor, part_number, media, firmware_dir, link,
    reload, method, fw_load_policy.
    """
    plan = FirmwarePlan()
    plan.flavor = params["flavor"]
    plan.method = params.get("method") or "load"
    if plan.flavor not in FLAVOURS:
        raise NfpError("unknown flavour %s (known: %s)" % (plan.flavor, ", ".join(sorted(FLAVOURS))))
    plan.card = host.find_card(params.get("pci"), params.get("interface"))
    plan.bdf = bdf = plan.card["bdf"]
    if not plan.card["driver"]:
        plan.warnings.append("%s is not bound to a driver (is the nfp module loaded?); the running app is unknown"
                             % bdf)
    plan.running = host.running_app(bdf)
    plan.part_number = params.get("part_number") or plan.running.get("board_id")
    if not plan.part_number:
        raise NfpError("cannot detect the part number of %s (devlink dev info shows no board.id): set "
                       "part_number, e.g. AMDA0096-0001 for the Agilio CX 2x10GbE" % bdf, pci=bdf)
    firmware_dir = params.get("firmware_dir") or "/lib/firmware"
    base = host.path(firmware_dir)
    netronome = os.path.join(base, "netronome")
    plan.card_name = check_part_number(plan.part_number, netronome)
    plan.media = choose_media(netronome, plan.flavor, plan.part_number, params.get("media"))
    plan.firmware_file, suffix = flavour_file(netronome, plan.flavor, plan.part_number, plan.media)
    plan.firmware_name = "netronome/%s/%s" % (FLAVOURS[plan.flavor]["dir"],
                                              part_fw_name(plan.part_number, plan.media))
    app_ok = app_matches(plan.flavor, plan.running.get("ethtool_app"), plan.running.get("devlink_app"))
    plan.before = {"app": plan.running.get("ethtool_app") or plan.running.get("devlink_app")}

    # devlink fw_load_policy: where the management firmware takes the app from.
    plan.policy_want = params.get("fw_load_policy")
    if plan.card["driver"] and (plan.policy_want or plan.method == "load"):
        plan.policy_have = host.fw_load_policy(bdf)
    plan.before["fw_load_policy"] = plan.policy_have
    if plan.policy_want:
        if plan.policy_have is None:
            plan.warnings.append("devlink has no fw_load_policy parameter for %s (old driver or management "
                                 "firmware): left as it is" % bdf)
            plan.policy_want = None
        elif plan.policy_have != plan.policy_want:
            plan.changes.append("devlink dev param set pci/%s name fw_load_policy value %s cmode permanent"
                                % (bdf, plan.policy_want))
    policy = plan.policy_want or plan.policy_have

    if plan.method == "load":
        if policy == "flash":
            raise NfpError("%s loads its application firmware from flash (devlink fw_load_policy=flash), so a "
                           "file under %s would be ignored: set fw_load_policy: disk (or driver), or use "
                           "method: flash" % (bdf, firmware_dir), pci=bdf, fw_load_policy=policy)
        link_kind = params.get("link") or "pci"
        dsn = host.dsn(bdf)
        names = lookup_names(bdf, plan.part_number, plan.media, dsn)
        by_kind = dict(names)
        if link_kind not in by_kind:
            raise NfpError("cannot read the PCIe serial number of %s (config space needs root and the card's "
                           "Device Serial Number capability): use link: pci" % bdf, pci=bdf)
        plan.link_path = os.path.join(base, by_kind[link_kind] + suffix)
        plan.link_target = os.path.relpath(plan.firmware_file, os.path.dirname(plan.link_path))
        plan.link_have = read_link(plan.link_path)
        if plan.link_have[0] == "file":
            raise NfpError("%s is a regular file, not a link this module manages: move it away (the nfp driver "
                           "loads it for %s)" % (_display(host, plan.link_path), bdf), link=_display(host, plan.link_path))
        plan.before["link_target"] = plan.link_have[1]
        for other in COMPRESSION_SUFFIXES:
            path = os.path.join(base, by_kind[link_kind] + other)
            if other != suffix and os.path.lexists(path):
                kind, target = read_link(path)
                if kind == "file":
                    raise NfpError("%s is a regular file that competes with the link %s: move it away"
                                   % (_display(host, path), _display(host, plan.link_path)))
                plan.stale_links.append((path, kind, target))
                plan.changes.append("rm %s" % _display(host, path))
        dirs = firmware_search_dirs(host.root, firmware_dir, release, host.firmware_class_path())
        shadow = _shadow(dirs, names, link_kind, plan.link_path, set(entry[0] for entry in plan.stale_links))
        if shadow:
            raise NfpError("%s takes precedence over %s (the nfp driver looks for serial-, then pci-, then nic_ "
                           "names, plain before compressed, updates/ first): remove it or choose it with link"
                           % (_display(host, shadow), _display(host, plan.link_path)),
                           shadowed_by=_display(host, shadow))
        if plan.link_have[1] != plan.link_target:
            plan.changes.append("ln -sfn %s %s" % (plan.link_target, _display(host, plan.link_path)))
        if plan.changes or not app_ok:
            plan.reload_needed = True
    else:
        if policy and policy != "flash":
            plan.warnings.append("%s has fw_load_policy=%s: the flashed image runs only when the card loads from "
                                 "flash (set fw_load_policy: flash)" % (bdf, policy))
        if not app_ok:
            plan.changes.append("devlink dev flash pci/%s file %s" % (bdf, plan.firmware_name))
            plan.reload_needed = True
        elif plan.changes:
            plan.reload_needed = True
    reload_method = params.get("reload") or "pci_rescan"
    if plan.reload_needed and reload_method != "none":
        plan.changes.extend(NfpHost.reload_steps(reload_method, bdf))
    return plan


def plan_removal(host, params):
    """state=absent: remove the link this module manages (pci- or serial- name)."""
    plan = FirmwarePlan()
    plan.method = "remove"
    link_kind = params.get("link") or "pci"
    if link_kind == "part":
        raise NfpError("link: part is the firmware package's own nic_<part>_<media>.nffw link: point it back with "
                       "flavor: nic (state: present) instead of removing it")
    plan.card = host.find_card(params.get("pci"), params.get("interface"))
    plan.bdf = bdf = plan.card["bdf"]
    plan.running = host.running_app(bdf)
    plan.before = {"app": plan.running.get("ethtool_app") or plan.running.get("devlink_app")}
    base = host.path(params.get("firmware_dir") or "/lib/firmware")
    if link_kind == "serial":
        dsn = host.dsn(bdf)
        if dsn is None:
            raise NfpError("cannot read the PCIe serial number of %s to name its serial- link: use link: pci" % bdf)
        name = "netronome/" + serial_fw_name(dsn)
    else:
        name = "netronome/" + pci_fw_name(bdf)
    plan.link_path = os.path.join(base, name)
    plan.link_have = read_link(plan.link_path)
    plan.before["link_target"] = plan.link_have[1]
    for suffix in COMPRESSION_SUFFIXES:
        path = plan.link_path + suffix
        kind, target = read_link(path)
        if kind == "file":
            raise NfpError("%s is a regular file, not a link this module made: remove it by hand if it should go"
                           % _display(host, path))
        if kind == "symlink":
            plan.stale_links.append((path, kind, target))
            plan.changes.append("rm %s" % _display(host, path))
    if plan.changes:
        plan.reload_needed = True
        reload_method = params.get("reload") or "pci_rescan"
        if reload_method != "none":
            plan.changes.extend(NfpHost.reload_steps(reload_method, bdf))
    return plan


def apply_removal(host, plan, reload_method="pci_rescan", timeout=120):
    """Remove the links and reload; the card comes back with whatever the driver finds next."""
    if not plan.changes:
        return plan.running
    for path, dummy, dummy2 in plan.stale_links:
        os.unlink(path)
    if reload_method == "none":
        return plan.running
    host.reload(reload_method, plan.bdf)
    host.wait_for_card(plan.bdf, timeout)
    return host.running_app(plan.bdf)


def _undo(host, plan, reload_method, timeout):
    """Put the link (and policy) back and reload; returns the app afterwards."""
    restore_link(plan.link_path, *plan.link_have)
    for path, kind, target in plan.stale_links:
        restore_link(path, kind, target)
    if plan.policy_want and plan.policy_have and plan.policy_want != plan.policy_have:
        host.set_fw_load_policy(plan.bdf, plan.policy_have)
    if reload_method == "none":
        return None
    host.reload(reload_method, plan.bdf)
    host.wait_for_card(plan.bdf, timeout)
    return host.running_app(plan.bdf)


def apply_firmware(host, plan, reload_method="pci_rescan", verify=True, timeout=120):
    """Carry out ``plan``; verify the app; roll back the link if verification fails.

    Returns the card's state afterwards (``running_app``).
    """
    if not plan.changes:
        return plan.running
    if plan.method == "load":
        for path, dummy, dummy2 in plan.stale_links:
            os.unlink(path)
        if plan.link_have[1] != plan.link_target:
            os.makedirs(os.path.dirname(plan.link_path), exist_ok=True)
            replace_symlink(plan.link_path, plan.link_target)
    try:
        if plan.policy_want and plan.policy_have != plan.policy_want:
            host.set_fw_load_policy(plan.bdf, plan.policy_want)
        if plan.method == "flash" and any(step.startswith("devlink dev flash") for step in plan.changes):
            host.flash(plan.bdf, plan.firmware_name)
        if reload_method == "none" or not plan.reload_needed:
            return plan.running
        host.reload(reload_method, plan.bdf)
        host.wait_for_card(plan.bdf, timeout)
    except NfpError:
        if plan.method == "load":
            restore_link(plan.link_path, *plan.link_have)
            for path, kind, target in plan.stale_links:
                restore_link(path, kind, target)
        raise
    after = host.running_app(plan.bdf)
    if not verify or app_matches(plan.flavor, after.get("ethtool_app"), after.get("devlink_app")):
        return after
    seen = after.get("ethtool_app") or after.get("devlink_app") or "no app"
    want = FLAVOURS[plan.flavor]["app"]
    details = {"expected_app": want, "running_app": seen, "firmware_version": after.get("firmware_version"),
               "pci": plan.bdf}
    if plan.method == "flash":
        raise NfpError("%s runs %s after flashing %s and reloading, not %s: the flash keeps the new image; "
                       "flash the nic flavour back (method: flash, flavor: nic) if the card misbehaves"
                       % (plan.bdf, seen, plan.firmware_name, want), rolled_back=False, **details)
    rollback_app = None
    try:
        rolled = _undo(host, plan, reload_method, timeout)
        rollback_app = rolled and (rolled.get("ethtool_app") or rolled.get("devlink_app"))
    except NfpError as exc:
        details["rollback_error"] = exc.msg
    raise NfpError("%s runs %s after loading %s, not %s: rolled the link %s back to %s and reloaded (now %s); "
                   "see dmesg for the nfp driver's firmware messages"
                   % (plan.bdf, seen, plan.firmware_name, want, _display(host, plan.link_path),
                      plan.link_have[1] or "nothing", rollback_app or "unknown"),
                   rolled_back=True, rollback_app=rollback_app, **details)
