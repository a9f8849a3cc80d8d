# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Libvirt guests for the lab: the desired domain, its XML, and the libvirt calls.

The vm_guest module is a thin want/have/change skeleton over this file:

* ``build_want(params)`` validates the module's parameters and returns the
  desired domain as a plain dict, with a uuid, MACs, OVS interface ids and tap
  names derived from the guest's name (stable: a re-run reports no change).
* ``render(want)`` turns that dict into domain XML through a Jinja2 template;
  ``parse(xml)`` reads the same fields back from any domain XML (libvirt's own
  inactive XML included), so ``parse(render(want))`` is comparable with
  ``parse(<libvirt's XML>)`` and the difference is exactly what would change.
* ``Hypervisor`` wraps one libvirt connection: connect with a clear error,
  check that the hypervisor offers the wanted domain type, look up, define,
  start, shut down, destroy and undefine.

Nothing here imports Ansible; libvirt and Jinja2 imports are guarded.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import os
import re
import stat
import time
import uuid
import xml.etree.ElementTree as ET

try:
    import jinja2
    HAS_JINJA2 = True
    JINJA2_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the host
    HAS_JINJA2 = False
    JINJA2_IMPORT_ERROR = exc

try:
    import libvirt
    HAS_LIBVIRT = True
    LIBVIRT_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the host
    libvirt = None
    HAS_LIBVIRT = False
    LIBVIRT_IMPORT_ERROR = exc

# Namespace of the derived identities. Changing it changes every uuid/MAC.
XDPLAB_NS = uuid.UUID("6d0c3f7e-2b1a-5c55-8f0e-7864706c6162")
METADATA_NS = "https://xdplab.invalid/offload/vm_guest/1"
MANAGED_BY = "xdplab.offload.vm_guest"

HYPERVISORS = ("xen", "qemu", "kvm")
VIRT_TYPES = ("pv", "hvm")
STATES = ("defined", "running", "shutdown", "destroyed", "absent")
# vNIC models each kind of guest can use, the first one is the default.
NIC_MODELS = {
    ("xen", "pv"): ("netfront",),
    ("xen", "hvm"): ("netfront", "e1000", "rtl8139"),
    ("qemu", None): ("virtio", "e1000", "rtl8139", "e1000e"),
    ("kvm", None): ("virtio", "e1000", "rtl8139", "e1000e"),
}
ALL_MODELS = ("netfront", "virtio", "e1000", "e1000e", "rtl8139")
MAC_PREFIX = {"xen": "00:16:3e", "qemu": "52:54:00", "kvm": "52:54:00"}
DISK_FORMATS = ("raw", "qcow2")
DEFAULT_URI = {"xen": "xen:///system", "qemu": "qemu:///system", "kvm": "qemu:///system"}
IFNAMSIZ = 15

MEMORY_UNITS_KIB = {"b": 1.0 / 1024, "bytes": 1.0 / 1024, "k": 1, "kib": 1, "kb": 1000.0 / 1024,
                    "m": 1024, "mib": 1024, "mb": 1000.0 * 1000 / 1024,
                    "g": 1024 * 1024, "gib": 1024 * 1024, "gb": 1000.0 ** 3 / 1024,
                    "t": 1024 ** 3, "tib": 1024 ** 3, "tb": 1000.0 ** 4 / 1024}


class VmError(Exception):
    """An error with one actionable sentence (``msg``) and details for the result."""

    def __init__(self, msg, **details):
        super(VmError, self).__init__(msg)
        self.msg = msg
        self.details = details


# --------------------------------------------------------------- identities

def stable_uuid(name, *parts):
    """A uuid derived from the guest name (and optional parts, e.g. a NIC index)."""
    return str(uuid.uuid5(XDPLAB_NS, "/".join((name,) + tuple(str(p) for p in parts))))


def stable_mac(name, index, hypervisor):
    """A MAC in the hypervisor's usual range, derived from the guest name and NIC index."""
    digest = hashlib.sha256(("%s/nic%d" % (name, index)).encode("utf-8")).digest()
    return "%s:%02x:%02x:%02x" % (MAC_PREFIX[hypervisor], digest[0], digest[1], digest[2])


def tap_name(name, index):
    """The host-side device of NIC ``index``: ``xl-<name>-<index>`` or, if too long, a hash."""
    base = name[3:] if name.startswith("xl-") else name
    cand = "xl-%s-%d" % (base, index)
    if len(cand) <= IFNAMSIZ and re.match(r"^[A-Za-z0-9_.-]+$", cand):
        return cand
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()
    return "xl-%s-%d" % (digest[:IFNAMSIZ - 5 - len(str(index))], index)


def normalize_mac(value, what):
    if not re.match(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$", value or ""):
        raise VmError("%s %r is not a MAC address (use the form 52:54:00:12:34:56)" % (what, value))
    mac = value.lower().replace("-", ":")
    if int(mac[:2], 16) & 1:
        raise VmError("%s %s is a multicast address: a NIC needs a unicast MAC" % (what, mac))
    return mac


# --------------------------------------------------------------- the wanted domain

def _cpuset(value, what):
    if value is None:
        return None
    value = str(value).strip()
    if not re.match(r"^\^?\d+(-\d+)?(,\^?\d+(-\d+)?)*$", value):
        raise VmError("%s %r is not a CPU list (use the form 0-1,3)" % (what, value))
    return value


def model_choices(hypervisor, virt_type):
    return NIC_MODELS[(hypervisor, virt_type if hypervisor == "xen" else None)]


def _guest_kind(hypervisor, virt_type):
    if hypervisor == "xen":
        return "Xen %s guest" % virt_type.upper()
    return "%s guest" % ("KVM" if hypervisor == "kvm" else "QEMU (TCG)")


def _interface(item, index, name, hypervisor, virt_type):
    what = "interfaces[%d]" % index
    if not isinstance(item, dict):
        raise VmError("%s must be a dict with at least a bridge" % what)
    unknown = set(item) - {"bridge", "virtualport", "vlan", "model", "mac", "checksum_offload",
                           "target", "interfaceid"}
    if unknown:
        raise VmError("%s has unknown keys %s (known: bridge, virtualport, vlan, model, mac, "
                      "checksum_offload, target, interfaceid)" % (what, ", ".join(sorted(unknown))))
    bridge = item.get("bridge")
    if not bridge:
        raise VmError("%s needs a bridge (the OVS or Linux bridge the vNIC is plugged into)" % what)
    if len(bridge) > IFNAMSIZ:
        raise VmError("%s bridge %r is longer than %d characters" % (what, bridge, IFNAMSIZ))
    choices = model_choices(hypervisor, virt_type)
    model = item.get("model") or choices[0]
    if model not in ALL_MODELS:
        raise VmError("%s model %r is not a vNIC model this module knows (one of %s)"
                      % (what, model, ", ".join(ALL_MODELS)))
    if model not in choices:
        if hypervisor == "xen" and virt_type == "pv":
            hint = "a Xen PV guest has no emulated devices: use model netfront, or virt_type hvm"
        elif hypervisor == "xen":
            hint = "Xen HVM guests get netfront, e1000 or rtl8139"
        else:
            hint = "netfront is Xen's paravirtual NIC: use virtio, e1000 or rtl8139 with hypervisor %s" % hypervisor
        raise VmError("%s model %s cannot be used by a %s: %s" % (what, model, _guest_kind(hypervisor, virt_type), hint))
    virtualport = item.get("virtualport", "openvswitch")
    if virtualport not in ("openvswitch", None, "none"):
        raise VmError("%s virtualport must be openvswitch or none, not %r" % (what, virtualport))
    virtualport = None if virtualport in (None, "none") else virtualport
    vlan = item.get("vlan")
    tags = []
    if vlan is not None:
        tags = vlan if isinstance(vlan, list) else [vlan]
        try:
            tags = [int(t) for t in tags]
        except (TypeError, ValueError):
            raise VmError("%s vlan %r is not a VLAN id (0-4095) or a list of them" % (what, vlan))
        if any(t < 0 or t > 4095 for t in tags):
            raise VmError("%s vlan %r is outside 0-4095" % (what, vlan))
        if tags and not virtualport:
            raise VmError("%s has a vlan but no virtualport: VLAN tags need virtualport openvswitch" % what)
    mac = normalize_mac(item["mac"], "%s mac" % what) if item.get("mac") else stable_mac(name, index, hypervisor)
    target = item.get("target") or tap_name(name, index)
    if len(target) > IFNAMSIZ or target.startswith(("vnet", "vif", "macvtap", "macvlan")):
        raise VmError("%s target %r must be at most %d characters and not start with vnet, vif or macvtap "
                      "(libvirt reserves those)" % (what, target, IFNAMSIZ))
    csum = item.get("checksum_offload")
    if isinstance(csum, str):
        csum = {"on": True, "true": True, "yes": True, "off": False, "false": False, "no": False}.get(csum.lower(), csum)
    if csum not in (None, True, False):
        raise VmError("%s checksum_offload must be true, false or null, not %r" % (what, csum))
    if csum is not None and model != "virtio":
        raise VmError("%s checksum_offload applies to virtio vNICs only (model is %s): leave it unset" % (what, model))
    interfaceid = None
    if virtualport:
        interfaceid = item.get("interfaceid") or stable_uuid(name, "nic%d" % index)
        try:
            interfaceid = str(uuid.UUID(str(interfaceid)))
        except ValueError:
            raise VmError("%s interfaceid %r is not a uuid" % (what, item.get("interfaceid")))
    return {
        "bridge": bridge,
        "virtualport": virtualport,
        "interfaceid": interfaceid,
        "vlan": tags,
        "model": model,
        "mac": mac,
        "target": target,
        "host_csum": None if csum is None else ("on" if csum else "off"),
        # no PXE option ROM: the lab boots kernels directly, and the ROM costs seconds under TCG
        "rom": False if hypervisor != "xen" else None,
    }


def _disk_format(path, fmt):
    if fmt:
        return fmt
    return "qcow2" if path.endswith(".qcow2") else "raw"


def _check_name(name):
    if not name or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$", name):
        raise VmError("name %r is not a usable domain name (letters, digits, '_', '.', '+', '-')" % (name,))


def _check_uuid(params, name):
    want_uuid = params.get("uuid") or stable_uuid(name)
    try:
        return str(uuid.UUID(str(want_uuid)))
    except ValueError:
        raise VmError("uuid %r is not a uuid" % (params.get("uuid"),))


def build_identity(params):
    """Just what removing a domain needs: its name, uuid and hypervisor."""
    _check_name(params["name"])
    return {"name": params["name"], "uuid": _check_uuid(params, params["name"]),
            "domain_type": params.get("hypervisor") or "qemu"}


def build_want(params):
    """Validate the module parameters; return the desired domain as a dict."""
    name = params["name"]
    _check_name(name)
    hypervisor = params.get("hypervisor") or "qemu"
    if hypervisor not in HYPERVISORS:
        raise VmError("hypervisor %r is not one of %s" % (hypervisor, ", ".join(HYPERVISORS)))
    virt_type = params.get("virt_type")
    if hypervisor == "xen":
        virt_type = virt_type or "pv"
        if virt_type not in VIRT_TYPES:
            raise VmError("virt_type %r is not one of pv, hvm" % (virt_type,))
    elif virt_type not in (None, "hvm"):
        raise VmError("virt_type %s applies to Xen only; %s guests are always hvm" % (virt_type, hypervisor))
    else:
        virt_type = "hvm"
    memory = params.get("memory")
    if not isinstance(memory, int) or memory < 16:
        raise VmError("memory must be a number of MiB of at least 16, not %r" % (memory,))
    vcpus = params.get("vcpus") or 1
    if not isinstance(vcpus, int) or vcpus < 1:
        raise VmError("vcpus must be a positive number, not %r" % (vcpus,))
    pins = params.get("cpu_pinning") or []
    if len(pins) > vcpus:
        raise VmError("cpu_pinning lists %d CPU sets for %d vCPUs: give at most one per vCPU" % (len(pins), vcpus))
    vcpu_pins = [{"vcpu": i, "cpuset": _cpuset(p, "cpu_pinning[%d]" % i)} for i, p in enumerate(pins)]

    kernel, initrd, cmdline, disk = (params.get(k) for k in ("kernel", "initrd", "cmdline", "disk"))
    if not kernel and (initrd or cmdline):
        raise VmError("initrd and cmdline need a kernel (direct kernel boot)")
    if not kernel and not disk:
        raise VmError("give a kernel (direct kernel boot) or a disk image to boot from")
    disks = []
    if disk:
        fmt = _disk_format(disk, params.get("disk_format"))
        if fmt not in DISK_FORMATS:
            raise VmError("disk_format %r is not one of %s" % (fmt, ", ".join(DISK_FORMATS)))
        if hypervisor == "xen":
            target, bus = "xvda", "xen"
        else:
            target, bus = "vda", "virtio"
        disks.append({"source": disk, "format": fmt, "target": target, "bus": bus})
        if hypervisor == "xen" and disk.startswith("/dev/"):
            # A block device goes to the guest through dom0's blkback (libxl's phy backend):
            # no device model in dom0. libxl would pick qdisk (QEMU) for driver name qemu.
            if fmt != "raw":
                raise VmError("disk %s is a block device: its format is raw, not %s" % (disk, fmt))
            disks[-1].update({"device_type": "block", "driver": "phy"})
    if hypervisor == "xen" and virt_type == "pv" and disk and not kernel:
        raise VmError("a Xen PV guest boots a kernel: give kernel (and initrd), or use virt_type hvm to boot the disk")

    interfaces = [_interface(item, i, name, hypervisor, virt_type)
                  for i, item in enumerate(params.get("interfaces") or [])]
    seen = {}
    for i, nic in enumerate(interfaces):
        for key in ("mac", "target"):
            if (key, nic[key]) in seen:
                raise VmError("interfaces[%d] and interfaces[%d] have the same %s %s"
                              % (seen[(key, nic[key])], i, key, nic[key]))
            seen[(key, nic[key])] = i

    want_uuid = _check_uuid(params, name)

    if hypervisor == "xen":
        os_type = "xen" if virt_type == "pv" else "hvm"
        machine = "xenpv" if virt_type == "pv" else "xenfv"
    else:
        os_type, machine = "hvm", None
    hvm = os_type == "hvm"
    console_log = params.get("console_log")
    return {
        "name": name,
        "uuid": want_uuid,
        "domain_type": hypervisor,
        "os_type": os_type,
        "machine": machine,
        "arch": "x86_64",
        "memory_kib": memory * 1024,
        "vcpus": vcpus,
        "cpuset": _cpuset(params.get("cpuset"), "cpuset"),
        "vcpu_pins": vcpu_pins,
        "emulator_cpuset": _cpuset(params.get("emulator_cpuset"), "emulator_cpuset"),
        "kernel": kernel,
        "initrd": initrd,
        "cmdline": cmdline,
        "boot": "hd" if (disk and not kernel) else None,
        "features": ["acpi", "apic"] if hvm else [],
        "cpu_mode": "host-passthrough" if hypervisor == "kvm" else None,
        "disks": disks,
        "interfaces": interfaces,
        "serial": hypervisor != "xen" or virt_type == "hvm",
        "console_log": console_log,
        "on_poweroff": "destroy",
        "on_reboot": "restart",
        "on_crash": params.get("on_crash") or "destroy",
        "managed": True,
    }


# --------------------------------------------------------------- XML

DOMAIN_TEMPLATE = r"""<domain type='{{ d.domain_type }}'>
  <name>{{ d.name }}</name>
  <uuid>{{ d.uuid }}</uuid>
{% if d.managed %}
  <metadata>
    <xl:guest xmlns:xl='{{ metadata_ns }}' managed-by='{{ managed_by }}'/>
  </metadata>
{% endif %}
  <memory unit='KiB'>{{ d.memory_kib }}</memory>
  <currentMemory unit='KiB'>{{ d.memory_kib }}</currentMemory>
  <vcpu placement='static'{% if d.cpuset %} cpuset='{{ d.cpuset }}'{% endif %}>{{ d.vcpus }}</vcpu>
{% if d.vcpu_pins or d.emulator_cpuset %}
  <cputune>
{% for pin in d.vcpu_pins %}
    <vcpupin vcpu='{{ pin.vcpu }}' cpuset='{{ pin.cpuset }}'/>
{% endfor %}
{% if d.emulator_cpuset %}
    <emulatorpin cpuset='{{ d.emulator_cpuset }}'/>
{% endif %}
  </cputune>
{% endif %}
  <os>
    <type arch='{{ d.arch }}'{% if d.machine %} machine='{{ d.machine }}'{% endif %}>{{ d.os_type }}</type>
{% if d.kernel %}
    <kernel>{{ d.kernel }}</kernel>
{% endif %}
{% if d.initrd %}
    <initrd>{{ d.initrd }}</initrd>
{% endif %}
{% if d.cmdline %}
    <cmdline>{{ d.cmdline }}</cmdline>
{% endif %}
{% if d.boot %}
    <boot dev='{{ d.boot }}'/>
{% endif %}
  </os>
{% if d.features %}
  <features>
{% for feature in d.features %}
    <{{ feature }}/>
{% endfor %}
  </features>
{% endif %}
{% if d.cpu_mode %}
  <cpu mode='{{ d.cpu_mode }}'/>
{% endif %}
  <on_poweroff>{{ d.on_poweroff }}</on_poweroff>
  <on_reboot>{{ d.on_reboot }}</on_reboot>
  <on_crash>{{ d.on_crash }}</on_crash>
  <devices>
{% for disk in d.disks %}
{% if disk.device_type | default('file') == 'block' %}
    <disk type='block' device='disk'>
      <driver name='{{ disk.driver }}' type='{{ disk.format }}'/>
      <source dev='{{ disk.source }}'/>
{% else %}
    <disk type='file' device='disk'>
      <driver name='qemu' type='{{ disk.format }}'/>
      <source file='{{ disk.source }}'/>
{% endif %}
      <target dev='{{ disk.target }}' bus='{{ disk.bus }}'/>
    </disk>
{% endfor %}
{% for nic in d.interfaces %}
    <interface type='bridge'>
      <mac address='{{ nic.mac }}'/>
      <source bridge='{{ nic.bridge }}'/>
{% if nic.vlan %}
      <vlan{% if nic.vlan | length > 1 %} trunk='yes'{% endif %}>
{% for tag in nic.vlan %}
        <tag id='{{ tag }}'/>
{% endfor %}
      </vlan>
{% endif %}
{% if nic.virtualport %}
      <virtualport type='{{ nic.virtualport }}'>
        <parameters interfaceid='{{ nic.interfaceid }}'/>
      </virtualport>
{% endif %}
      <target dev='{{ nic.target }}'/>
      <model type='{{ nic.model }}'/>
{% if nic.rom is false %}
      <rom enabled='no'/>
{% endif %}
{% if nic.host_csum %}
      <driver>
        <host csum='{{ nic.host_csum }}'/>
      </driver>
{% endif %}
    </interface>
{% endfor %}
{% if d.serial %}
    <serial type='pty'>
{% if d.console_log %}
      <log file='{{ d.console_log }}' append='off'/>
{% endif %}
    </serial>
{% endif %}
    <console type='pty'/>
  </devices>
</domain>
"""


def render(want):
    """Domain XML for a want dict (as returned by ``build_want`` or ``parse``)."""
    if not HAS_JINJA2:
        raise VmError("the Python library jinja2 is needed to render the domain XML: "
                      "install python3-jinja2", exception=str(JINJA2_IMPORT_ERROR))
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    return env.from_string(DOMAIN_TEMPLATE).render(d=want, metadata_ns=METADATA_NS, managed_by=MANAGED_BY)


def _text(node, path):
    found = node.find(path)
    if found is None or found.text is None:
        return None
    return found.text.strip()


def _memory_kib(node):
    if node is None or node.text is None:
        return None
    unit = (node.get("unit") or "KiB").lower()
    factor = MEMORY_UNITS_KIB.get(unit)
    if factor is None:
        return None
    return int(round(int(node.text.strip()) * factor))


def parse(xml):
    """The fields this module manages, read from any domain XML (same shape as ``build_want``)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise VmError("libvirt returned domain XML that does not parse: %s" % exc, xml=xml)
    os_node = root.find("os")
    type_node = os_node.find("type") if os_node is not None else None
    domain_type = root.get("type")
    vcpu = root.find("vcpu")
    pins = []
    for pin in root.findall("cputune/vcpupin"):
        pins.append({"vcpu": int(pin.get("vcpu")), "cpuset": pin.get("cpuset")})
    pins.sort(key=lambda p: p["vcpu"])
    emulatorpin = root.find("cputune/emulatorpin")
    boot = os_node.find("boot") if os_node is not None else None
    features = []
    for tag in ("acpi", "apic", "pae"):
        if root.find("features/" + tag) is not None:
            features.append(tag)
    cpu = root.find("cpu")
    disks = []
    for disk in root.findall("devices/disk"):
        if disk.get("device", "disk") != "disk":
            continue
        driver, source, target = disk.find("driver"), disk.find("source"), disk.find("target")
        disks.append({
            "source": source.get("file") or source.get("dev") if source is not None else None,
            "format": driver.get("type") if driver is not None else None,
            "target": target.get("dev") if target is not None else None,
            "bus": target.get("bus") if target is not None else None,
        })
        if disk.get("type") == "block":
            disks[-1].update({"device_type": "block", "driver": driver.get("name") if driver is not None else None})
    interfaces = []
    for nic in root.findall("devices/interface"):
        vport = nic.find("virtualport")
        params = vport.find("parameters") if vport is not None else None
        model = nic.find("model")
        host = nic.find("driver/host")
        interfaces.append({
            "bridge": nic.find("source").get("bridge") if nic.find("source") is not None else None,
            "virtualport": vport.get("type") if vport is not None else None,
            "interfaceid": params.get("interfaceid") if params is not None else None,
            "vlan": [int(t.get("id")) for t in nic.findall("vlan/tag")],
            "model": model.get("type") if model is not None else None,
            "mac": (nic.find("mac").get("address") or "").lower() if nic.find("mac") is not None else None,
            "target": nic.find("target").get("dev") if nic.find("target") is not None else None,
            "host_csum": host.get("csum") if host is not None else None,
            "rom": False if nic.find("rom") is not None and nic.find("rom").get("enabled") == "no" else None,
        })
    serial = root.find("devices/serial")
    log = serial.find("log") if serial is not None else None
    marker = root.find("metadata/{%s}guest" % METADATA_NS)
    return {
        "name": _text(root, "name"),
        "uuid": _text(root, "uuid"),
        "domain_type": domain_type,
        # libvirt writes Xen PV's os type as 'linux', its old name
        "os_type": {"linux": "xen"}.get(type_node.text.strip(), type_node.text.strip())
        if type_node is not None and type_node.text else None,
        # qemu expands its machine alias (pc -> pc-i440fx-7.2): only Xen's machine is managed
        "machine": type_node.get("machine") if type_node is not None and domain_type == "xen" else None,
        "arch": type_node.get("arch") if type_node is not None else None,
        "memory_kib": _memory_kib(root.find("memory")),
        "vcpus": int(vcpu.text.strip()) if vcpu is not None and vcpu.text else 1,
        "cpuset": vcpu.get("cpuset") if vcpu is not None else None,
        "vcpu_pins": pins,
        "emulator_cpuset": emulatorpin.get("cpuset") if emulatorpin is not None else None,
        "kernel": _text(root, "os/kernel"),
        "initrd": _text(root, "os/initrd"),
        "cmdline": _text(root, "os/cmdline"),
        # libvirt adds <boot dev='hd'/> to kernel-booted domains too; it matters only without a kernel
        "boot": boot.get("dev") if boot is not None and not _text(root, "os/kernel") else None,
        "features": features,
        # libvirt writes the default CPU of TCG domains out as mode='custom' (qemu64): not managed
        "cpu_mode": cpu.get("mode") if cpu is not None and cpu.get("mode") != "custom" else None,
        "disks": disks,
        "interfaces": interfaces,
        "serial": serial is not None,
        "console_log": log.get("file") if log is not None else None,
        "on_poweroff": _text(root, "on_poweroff") or "destroy",
        "on_reboot": _text(root, "on_reboot") or "restart",
        "on_crash": _text(root, "on_crash") or "destroy",
        "managed": marker is not None and marker.get("managed-by") == MANAGED_BY,
    }


def compare(want, have):
    """Names of the managed fields that differ (``interfaces[1].vlan``, ``memory_kib``, ...)."""
    changes = []
    for key in sorted(want):
        a, b = want[key], have.get(key)
        if key in ("interfaces", "disks") and isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                changes += ["%s[%d].%s" % (key, i, k) for k in sorted(x) if x[k] != y.get(k)]
        elif a != b:
            changes.append(key)
    return changes


def summary(want):
    """What the module returns about a domain's NICs and disks."""
    return {
        "interfaces": [{k: nic[k] for k in ("bridge", "mac", "target", "model", "interfaceid", "vlan")}
                       for nic in want["interfaces"]],
        "disks": [dict(d) for d in want["disks"]],
    }


# --------------------------------------------------------------- the host side

def uri_is_local(uri):
    """True for URIs naming this machine (no host part), e.g. qemu:///system."""
    match = re.match(r"^[a-z0-9+]+://([^/]*)/", uri or "")
    return bool(match) and match.group(1) in ("", "localhost")


def uri_driver(uri):
    match = re.match(r"^([a-z0-9]+)", uri or "")
    return match.group(1) if match else ""


def check_local_files(want):
    """The kernel, initrd and disk must exist on this host (local, non-test URIs only)."""
    for key in ("kernel", "initrd"):
        if want[key] and not os.path.isfile(want[key]):
            raise VmError("%s %s does not exist on this host: build the guest image first "
                          "(role xdplab.offload.guest_image) or fix the path" % (key, want[key]), path=want[key])
    for disk in want["disks"]:
        if disk.get("device_type") == "block":
            if not (os.path.exists(disk["source"]) and stat.S_ISBLK(os.stat(disk["source"]).st_mode)):
                raise VmError("disk %s is not a block device on this host" % disk["source"], path=disk["source"])
        elif not os.path.isfile(disk["source"]):
            raise VmError("disk image %s does not exist on this host" % disk["source"], path=disk["source"])


def check_bridges(want, run):
    """Every vNIC's bridge must exist: OVS bridges via ovs-vsctl, Linux bridges via sysfs.

    ``run(argv)`` returns (rc, stdout, stderr), e.g. AnsibleModule.run_command.
    """
    for i, nic in enumerate(want["interfaces"]):
        bridge = nic["bridge"]
        if nic["virtualport"] == "openvswitch":
            try:
                rc, _out, err = run(["ovs-vsctl", "--timeout=10", "br-exists", bridge])
            except OSError as exc:
                raise VmError("interfaces[%d] wants Open vSwitch bridge %s, but ovs-vsctl cannot run (%s): "
                              "install and start Open vSwitch (role xdplab.offload.ovs)" % (i, bridge, exc),
                              bridge=bridge)
            if rc == 2:
                raise VmError("interfaces[%d] bridge %s is not an Open vSwitch bridge on this host: create it "
                              "(role xdplab.offload.ovs) or fix the bridge name" % (i, bridge), bridge=bridge)
            if rc != 0:
                raise VmError("interfaces[%d] cannot check Open vSwitch bridge %s: ovs-vsctl failed; is "
                              "ovsdb-server running? (role xdplab.offload.ovs)" % (i, bridge),
                              bridge=bridge, stderr=err)
        elif not os.path.isdir("/sys/class/net/%s/bridge" % bridge):
            raise VmError("interfaces[%d] bridge %s is not a Linux bridge on this host: create it, or set "
                          "virtualport: openvswitch for an Open vSwitch bridge" % (i, bridge), bridge=bridge)


STATE_NAMES = {
    0: "nostate", 1: "running", 2: "blocked", 3: "paused", 4: "shutdown", 5: "shutoff", 6: "crashed", 7: "pmsuspended",
}


def _ignore_errors(_ctx, _err):
    """libvirt prints every error on stderr by default; the module reports them itself."""


class Hypervisor:
    """One libvirt connection and the domain operations the module needs."""

    def __init__(self, uri):
        if not HAS_LIBVIRT:
            raise VmError("the Python bindings of libvirt are missing: install python3-libvirt "
                          "(role xdplab.offload.hypervisor)", exception=str(LIBVIRT_IMPORT_ERROR))
        self.uri = uri
        libvirt.registerErrorHandler(_ignore_errors, None)
        try:
            self.conn = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            raise VmError("cannot connect to the hypervisor at %s: %s; start its daemon (role "
                          "xdplab.offload.hypervisor) or fix the uri" % (uri, _reason(exc)),
                          uri=uri, libvirt_error=str(exc))
        if self.conn is None:
            raise VmError("cannot connect to the hypervisor at %s" % uri, uri=uri)

    def close(self):
        try:
            self.conn.close()
        except Exception:  # pylint: disable=broad-except
            pass

    @property
    def driver(self):
        return uri_driver(self.uri)

    def domain_types(self, arch="x86_64"):
        """Domain types (qemu, kvm, xen, ...) the hypervisor offers for ``arch``."""
        caps = ET.fromstring(self.conn.getCapabilities())
        types = set()
        for guest in caps.findall("guest"):
            arch_node = guest.find("arch")
            if arch_node is None or arch_node.get("name") != arch:
                continue
            types.update(d.get("type") for d in arch_node.findall("domain"))
        return types

    def check_domain_type(self, want):
        if self.driver == "test":
            return  # libvirt's test driver accepts any domain type's XML
        offered = self.domain_types(want["arch"])
        if want["domain_type"] not in offered:
            hint = ""
            if want["domain_type"] == "kvm":
                hint = ": KVM is not usable on this host, use hypervisor qemu (TCG)"
            elif want["domain_type"] == "xen":
                hint = ": connect to a Xen host's libvirt (uri xen:///system there)"
            raise VmError("the hypervisor at %s cannot run %s domains for %s (it offers %s)%s"
                          % (self.uri, want["domain_type"], want["arch"],
                             ", ".join(sorted(offered)) or "none", hint), uri=self.uri)

    def lookup(self, name):
        try:
            return self.conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise VmError("cannot look up domain %s at %s: %s" % (name, self.uri, _reason(exc)),
                          uri=self.uri, libvirt_error=str(exc))

    def lookup_uuid(self, uuid_str):
        try:
            return self.conn.lookupByUUIDString(uuid_str)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise VmError("cannot look up uuid %s at %s: %s" % (uuid_str, self.uri, _reason(exc)),
                          uri=self.uri, libvirt_error=str(exc))

    @staticmethod
    def inactive_xml(dom):
        return dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE)

    @staticmethod
    def state(dom):
        return STATE_NAMES.get(dom.state()[0], "unknown")

    def define(self, xml, name):
        flags = getattr(libvirt, "VIR_DOMAIN_DEFINE_VALIDATE", 0)
        try:
            return self.conn.defineXMLFlags(xml, flags)
        except libvirt.libvirtError as exc:
            raise VmError("libvirt at %s rejected the domain XML of %s: %s" % (self.uri, name, _reason(exc)),
                          uri=self.uri, libvirt_error=str(exc), xml=xml)

    def _act(self, what, name, call):
        try:
            call()
        except libvirt.libvirtError as exc:
            raise VmError("cannot %s domain %s at %s: %s" % (what, name, self.uri, _reason(exc)),
                          uri=self.uri, libvirt_error=str(exc))

    def start(self, dom):
        self._act("start", dom.name(), dom.create)

    def resume(self, dom):
        self._act("resume", dom.name(), dom.resume)

    def destroy(self, dom):
        if dom.isActive():
            self._act("destroy (force off)", dom.name(), dom.destroy)

    def shutdown(self, dom, timeout):
        """Ask the guest to shut down (ACPI / Xen control); wait up to ``timeout`` s for it to be off."""
        self._act("shut down", dom.name(), dom.shutdown)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not dom.isActive():
                return
            time.sleep(0.2)
        raise VmError("domain %s did not shut down within %d s: the guest may ignore ACPI shutdown requests; "
                      "use state destroyed to force it off" % (dom.name(), timeout),
                      uri=self.uri, timeout=timeout)

    def undefine(self, dom):
        """Undefine with its managed save, snapshot metadata and NVRAM; fewer flags where a driver refuses them."""
        names = ("VIR_DOMAIN_UNDEFINE_MANAGED_SAVE", "VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA",
                 "VIR_DOMAIN_UNDEFINE_NVRAM")
        flags = [getattr(libvirt, n, 0) for n in names]
        attempts = [flags[0] | flags[1] | flags[2], flags[0] | flags[1], 0]
        for i, mask in enumerate(attempts):
            try:
                if mask:
                    dom.undefineFlags(mask)
                else:
                    dom.undefine()
                return
            except libvirt.libvirtError as exc:
                refused = exc.get_error_code() in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_INVALID_ARG)
                if not refused or i == len(attempts) - 1:
                    raise VmError("cannot undefine domain %s at %s: %s" % (dom.name(), self.uri, _reason(exc)),
                                  uri=self.uri, libvirt_error=str(exc))


def _reason(exc):
    msg = exc.get_error_message() if hasattr(exc, "get_error_message") else None
    return (msg or str(exc)).strip().rstrip(".")
