# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build, load, attach and pin one XDP program on one interface.

The xdp_program module is a thin wrapper over this file: ``load_program``
builds and loads what is wanted (object or BCC), ``attached_program`` reads
what is attached, ``deploy``/``remove_pins`` act and keep bpffs pins exact, and
``ensure_attached``/``ensure_detached`` (``..._on`` to open netlink too) decide
and do what the module's ``state`` asks.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import contextlib
import ctypes
import errno
import hashlib
import os
import shutil
import tempfile
import time

from ansible_collections.xdplab.offload.plugins.module_utils import libbpf, nfp, programs, safety, xdp
from ansible_collections.xdplab.offload.plugins.module_utils.counters import BPFFS, PIN_ROOT, PROG_PIN, default_pin_path

# Compile-time switch of bpf/include/xdplab/kern.h for device-bound builds.
OFFLOAD_DEFINE = "XL_OFFLOAD"
# Names of the programs the collection itself loads (the kernel keeps 15 characters of a name):
# the built-in experiment programs and the AF_XDP worker's redirect program.
OWN_PROG_NAMES = frozenset(["xl_" + name for name in programs.BUILTIN_PROGRAMS] + ["xl_afxdp_redir"])


class DeployError(Exception):
    def __init__(self, msg, **details):
        super(DeployError, self).__init__(msg)
        self.msg = msg
        self.details = details


def _within(path, directory):
    """True if ``path`` is ``directory`` or below it, compared by path components (not by string prefix)."""
    directory = directory.rstrip(os.sep) or os.sep
    return path == directory or path.startswith(directory if directory == os.sep else directory + os.sep)


def bpffs_mounted(path=BPFFS):
    """True if the file system that holds ``path`` (the innermost mount point above it) is a bpffs."""
    path = os.path.realpath(path)
    fstype = None
    best = -1
    with open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 2 and _within(path, fields[1]) and len(fields[1]) >= best:
                best, fstype = len(fields[1]), fields[2]
    return fstype == "bpf"


@contextlib.contextmanager
def captured_stderr():
    """Collect what C code (BCC, libbpf) writes to fd 2 while the block runs."""
    holder = {"text": ""}
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield holder
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            holder["text"] = tmp.read().decode("utf-8", "replace")


class LoadedProgram:
    """A program loaded (not attached) in the kernel, with its maps."""

    def __init__(self, prog_fd, map_fds, info, closer, object_path=None, program_hash=None, load_time_ms=0.0):
        self.prog_fd = prog_fd
        self.map_fds = map_fds
        self.info = info
        self._closer = closer
        self.object_path = object_path
        self.program_hash = program_hash
        self.load_time_ms = load_time_ms

    @property
    def tag(self):
        return self.info["tag"]

    def close(self):
        if self._closer:
            self._closer()
            self._closer = None


def _load_object(source, defines, bpf_dir, build_dir, clang, function, ifindex):
    if source.kind == "o":
        if defines:
            raise DeployError("defines apply to C sources only; %s is a compiled object" % source.source_path)
        obj_path = source.source_path
        with open(obj_path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
    else:
        include_dirs = [os.path.join(bpf_dir, "include")]
        try:
            obj_path = programs.build_object(source.source_path, defines, include_dirs, build_dir, clang=clang)
        except programs.BuildError as exc:
            raise DeployError("%s does not compile: %s" % (source.source_path, exc.msg),
                              compiler_output=exc.compiler_output)
        digest = programs.program_hash(source.source_path, defines, include_dirs)
    started = time.monotonic()
    try:
        loaded = libbpf.load_object(obj_path, prog_name=function or source.function, ifindex=ifindex)
    except libbpf.BpfError as exc:
        details = dict(verifier_log=exc.log, errno=exc.errno, object_path=obj_path)
        if ifindex:
            details["offload_reason"] = nfp.classify_offload_error(exc.msg, exc.log)
        raise DeployError("the kernel rejected %s (%s)" % (source.name, exc.msg), **details)
    load_ms = (time.monotonic() - started) * 1000.0
    return LoadedProgram(loaded.prog_fd, loaded.map_fds, libbpf.prog_info(loaded.prog_fd), loaded.close,
                         object_path=obj_path, program_hash=digest, load_time_ms=load_ms)


def _load_bcc(source, defines, bpf_dir, function, ifindex):
    try:
        from bcc import BPF, libbcc
    except ImportError:
        raise DeployError("loader bcc needs BCC's Python bindings (Debian package python3-bpfcc) in the "
                          "interpreter running the module; use loader object or install python3-bpfcc "
                          "and a venv with --system-site-packages")
    if source.kind != "c":
        raise DeployError("loader bcc compiles C sources; %s is a compiled object (use loader object)"
                          % source.source_path)
    func = function or source.function
    if not func:
        raise DeployError("loader bcc needs the name of the XDP function in %s (option function)"
                          % source.source_path)
    try:
        text, cflags = programs.bcc_source(source.source_path, defines, [os.path.join(bpf_dir, "include")])
    except programs.ProgramError as exc:
        raise DeployError(str(exc))
    text = text.encode()
    func = func.encode()
    started = time.monotonic()
    with captured_stderr() as err:
        try:
            bpf = BPF(text=text, cflags=cflags, device=ifindex) if ifindex else BPF(text=text, cflags=cflags)
        except Exception:
            bpf = None
    if bpf is None:
        raise DeployError("%s does not compile with BCC" % source.source_path, compiler_output=err["text"])
    failure = ""
    with captured_stderr() as err:
        try:
            fn = bpf.load_func(func, BPF.XDP, device=ifindex) if ifindex else bpf.load_func(func, BPF.XDP)
        except Exception as exc:
            fn = None
            failure = str(exc)
    if fn is None:
        bpf.cleanup()
        details = dict(verifier_log=err["text"])
        if ifindex:
            details["offload_reason"] = nfp.classify_offload_error(failure, err["text"])
        raise DeployError("the kernel rejected %s loaded with BCC (%s)" % (source.name, failure.strip()),
                          **details)
    load_ms = (time.monotonic() - started) * 1000.0
    maps = {}
    # BCC's binding leaves these restypes at int, which would truncate the name pointer.
    libbcc.lib.bpf_num_tables.restype = ctypes.c_ulonglong
    libbcc.lib.bpf_num_tables.argtypes = [ctypes.c_void_p]
    libbcc.lib.bpf_table_name.restype = ctypes.c_char_p
    libbcc.lib.bpf_table_name.argtypes = [ctypes.c_void_p, ctypes.c_ulonglong]
    for i in range(libbcc.lib.bpf_num_tables(bpf.module)):
        name = libbcc.lib.bpf_table_name(bpf.module, i)
        maps[name.decode()] = libbcc.lib.bpf_table_fd(bpf.module, name)
    return LoadedProgram(fn.fd, maps, libbpf.prog_info(fn.fd), bpf.cleanup,
                         program_hash=programs.program_hash(source.source_path, defines,
                                                            [os.path.join(bpf_dir, "include")]),
                         load_time_ms=load_ms)


def load_program(program, defines=None, loader="object", bpf_dir="", build_dir="", clang="clang",
                 function=None, ifindex=None):
    """Build (if needed) and load the wanted program; the caller closes it."""
    try:
        source = programs.resolve_program(program, bpf_dir)
    except programs.ProgramError as exc:
        raise DeployError(exc.msg if hasattr(exc, "msg") else str(exc))
    defines = defines or {}
    if ifindex and source.kind == "c":
        # Device-bound (offload) build: kern.h makes xl_stats a shared ARRAY
        # updated with atomic adds, the only counters the NFP can hold.
        defines = dict(defines, **{OFFLOAD_DEFINE: 1})
    if loader == "bcc":
        return source, _load_bcc(source, defines, bpf_dir, function, ifindex)
    return source, _load_object(source, defines, bpf_dir, build_dir, clang, function, ifindex)


def _prog_identity(prog_id):
    """(tag, name) of a loaded program, (None, None) if it is gone meanwhile."""
    try:
        fd = libbpf.prog_fd_by_id(prog_id)
    except libbpf.BpfError:
        return None, None
    try:
        info = libbpf.prog_info(fd)
    finally:
        os.close(fd)
    return info["tag"], info["name"]


def attached_program(ipr, ifindex):
    """What is attached now: mode, id, tag, name (all None when nothing is), and ``modes``.

    ``modes`` maps every attached mode to ``{"prog_id", "name"}`` (more than one
    when offload is combined with a host mode).
    """
    state = xdp.query(ipr, ifindex)
    have = {"mode": state["mode"], "prog_id": state["prog_id"] or None, "tag": None, "name": None, "modes": {}}
    for mode, prog_id in state["modes"].items():
        tag, name = _prog_identity(prog_id)
        have["modes"][mode] = {"prog_id": prog_id, "name": name}
        if prog_id == state["prog_id"]:
            have["tag"], have["name"] = tag, name
    return have


def foreign_programs(have, pin_path):
    """The attached programs the collection did not attach: [{mode, prog_id, name}].

    A program is the collection's if the program pinned in ``pin_path`` (under
    the pin root) is that very program, or if its name is one of the
    collection's own program names.
    """
    pinned = pinned_prog_id(pin_path)
    foreign = []
    for mode, prog in sorted(have.get("modes", {}).items()):
        if prog["prog_id"] == pinned or prog["name"] in OWN_PROG_NAMES:
            continue
        foreign.append({"mode": mode, "prog_id": prog["prog_id"], "name": prog["name"]})
    return foreign


def pinned_prog_id(pin_path):
    path = os.path.join(pin_path, PROG_PIN)
    if not os.path.exists(path):
        return None
    try:
        fd = libbpf.obj_get(path)
    except libbpf.BpfError:
        return None
    try:
        return libbpf.prog_info(fd)["id"]
    finally:
        os.close(fd)


def confined_pin_path(pin_path, root=PIN_ROOT, option="pin_path"):
    """``pin_path`` resolved (symbolic links, ``..``); DeployError unless it lies strictly under ``root``."""
    try:
        return safety.strictly_under(pin_path, root, option)
    except safety.UnsafeInput as exc:
        raise DeployError(exc.msg, option=exc.option)


def remove_pins(pin_path, root=PIN_ROOT):
    """Remove the pin directory (bpffs entries are unlinked like files).

    Only a directory strictly under ``root`` (after resolving links and ``..``)
    is removed; anything else raises DeployError. Parent directories under
    ``root`` that become empty go too, so a detach leaves /sys/fs/bpf/xdplab
    as it found it.
    """
    pin_path = confined_pin_path(pin_path, root)
    if not os.path.isdir(pin_path):
        return False
    shutil.rmtree(pin_path)
    root = os.path.realpath(root)
    parent = os.path.dirname(pin_path)
    while _within(parent, root):
        try:
            os.rmdir(parent)
        except OSError:
            break
        parent = os.path.dirname(parent)
    return True


def pin(loaded, pin_path):
    """Pin the program and its maps under ``pin_path`` (replacing older pins)."""
    remove_pins(pin_path)
    os.makedirs(pin_path, mode=0o700)
    libbpf.obj_pin(loaded.prog_fd, os.path.join(pin_path, PROG_PIN))
    pinned = {}
    for name, fd in sorted(loaded.map_fds.items()):
        if name.startswith(".") or fd < 0:  # .rodata/.bss internal maps stay unpinned
            continue
        path = os.path.join(pin_path, name)
        libbpf.obj_pin(fd, path)
        pinned[name] = path
    return pinned


def deploy(ipr, ifindex, loaded, mode, have, pin_path, ifname="", netns=None):
    """Attach ``loaded`` in ``mode`` (replacing what ``have`` describes), then pin.

    The caller has checked that what ``have`` describes may be replaced (the
    collection's own program, or ``force``). On failure neither the new program
    nor those in ``have`` stay attached and no pin is left behind; a program
    someone attached meanwhile is left alone.
    """
    replaceable = set(prog["prog_id"] for prog in have.get("modes", {}).values())
    if have.get("prog_id"):
        replaceable.add(have["prog_id"])
    replaceable.add(loaded.info["id"])
    started = time.monotonic()
    try:
        if have["mode"] and have["mode"] != mode:
            _detach_ids(ipr, ifindex, replaceable, ifname, netns)
        xdp.attach(ipr, ifindex, loaded.prog_fd, mode, ifname, netns)
    except xdp.XdpError as exc:
        remove_pins(pin_path)
        _detach_quietly(ipr, ifindex, replaceable)
        raise DeployError(exc.msg, errno=exc.errno)
    attach_ms = (time.monotonic() - started) * 1000.0
    try:
        maps = pin(loaded, pin_path)
    except (libbpf.BpfError, OSError) as exc:
        _detach_quietly(ipr, ifindex, replaceable)
        remove_pins(pin_path)
        raise DeployError("attached, but cannot pin under %s (%s); detached again" % (pin_path, exc))
    return attach_ms, maps


def _detach_ids(ipr, ifindex, prog_ids, ifname="", netns=None):
    """Detach, mode by mode, only the attached programs whose id is in ``prog_ids``."""
    detached = []
    for mode, prog_id in sorted(xdp.query(ipr, ifindex)["modes"].items()):
        if prog_id in prog_ids:
            xdp.detach(ipr, ifindex, mode, ifname, netns)
            detached.append(mode)
    return detached


def detach_programs(ipr, ifindex, have, ifname="", netns=None):
    """Detach the programs ``have`` describes (checked by the caller), and nothing attached since."""
    ids = set(prog["prog_id"] for prog in have.get("modes", {}).values())
    return _detach_ids(ipr, ifindex, ids, ifname, netns)


def _detach_quietly(ipr, ifindex, prog_ids):
    try:
        _detach_ids(ipr, ifindex, prog_ids)
    except xdp.XdpError:
        pass


def check_bpffs(pin_path):
    if not bpffs_mounted(pin_path):
        raise DeployError("bpffs is not mounted at %s (needed for %s): run the xdplab.offload.lab_host role "
                          "or mount -t bpf bpf %s" % (BPFFS, pin_path, BPFFS), errno=errno.ENOENT)


# The options of the xdp_program module (and of anything that deploys a program the same way) that
# have defaults; ensure_attached/ensure_detached fill in what ``params`` leaves out (or sets to None).
ATTACH_DEFAULTS = {
    "netns": None,
    "program": None,
    "defines": {},
    "mode": "driver",
    "loader": "object",
    "function": None,
    "bpf_dir": "/opt/xdplab/bpf",
    "build_dir": "/var/cache/xdplab/bpf",
    "clang": "clang",
    "force": False,
}


def _with_defaults(params):
    """``params`` over ATTACH_DEFAULTS (None counts as not given, as in Ansible)."""
    p = dict(ATTACH_DEFAULTS, defines={})
    p.update((key, value) for key, value in params.items() if value is not None)
    return p


def _describe(state):
    return {k: state.get(k) for k in ("mode", "prog_id", "tag", "name")} if state.get("mode") else {}


def _refuse_foreign(p, have, pin_path, action):
    """DeployError if a program the collection did not attach would be replaced or detached (and no force)."""
    foreign = foreign_programs(have, pin_path)
    if not foreign or p["force"]:
        return
    where = "%s in namespace %s" % (p["interface"], p["netns"]) if p["netns"] else p["interface"]
    progs = ", ".join("id %s (name %s, %s mode)" % (f["prog_id"], f["name"] or "unknown", f["mode"]) for f in foreign)
    raise DeployError("%s has an XDP program this collection did not attach: %s; it is neither pinned at %s nor "
                      "named like the collection's programs, so it is not %s. Detach it yourself, or set force: true "
                      "to %s it anyway" % (where, progs, pin_path, action, action),
                      prog_id=foreign[0]["prog_id"], foreign_programs=foreign, option="force")


def _planned(p, ifindex, have, pin_path):
    """Check mode of state=attached: what would change, from what can be read (no build, no load)."""
    try:
        source = programs.resolve_program(p["program"], p["bpf_dir"])
        defines = dict(p["defines"] or {}, **{OFFLOAD_DEFINE: 1}) if (
            p["mode"] == "offload" and source.kind == "c") else (p["defines"] or {})
        if source.kind == "o" and p["defines"]:
            raise DeployError("defines apply to C sources only; %s is a compiled object" % source.source_path,
                              option="defines")
        program_hash = programs.program_hash(source.source_path, defines, [os.path.join(p["bpf_dir"], "include")])
    except programs.ProgramError as exc:
        raise DeployError(exc.msg)
    want_name = (p["function"] or source.function or "")[:15] or None
    result = dict(ifindex=ifindex, pin_path=pin_path, program=source.name, loader=p["loader"],
                  program_hash=program_hash, prog_id=have["prog_id"], tag=None, mode=p["mode"], maps={},
                  load_time_ms=0.0, attach_time_ms=0.0, changed=True, tag_known=False)
    ours = have["prog_id"] and pinned_prog_id(pin_path) == have["prog_id"]
    if not have["mode"]:
        reason = "no XDP program is attached"
    elif have["mode"] != p["mode"]:
        reason = "the attached program runs in mode %s, not %s" % (have["mode"], p["mode"])
    elif not ours:
        reason = "the attached program (id %s) is not the one pinned at %s" % (have["prog_id"], pin_path)
    elif want_name and have["name"] and have["name"] != want_name:
        reason = "the attached program is %s, not %s" % (have["name"], want_name)
    else:
        reason = ("check mode neither compiles nor loads, so the tag of the wanted program is unknown: the "
                  "attached program (id %s, tag %s) is reported as changed, which may be conservative"
                  % (have["prog_id"], have["tag"]))
    result["check_mode_reason"] = reason
    after = {"mode": p["mode"], "name": want_name, "tag": None, "prog_id": None}
    result["diff"] = {"before": _describe(have), "after": after}
    return result


def ensure_attached(params, ipr, ifindex, have, pin_path, check_mode=False):
    """Make ``params['program']`` run on ``ifindex`` in ``params['mode']``, pinned at ``pin_path``.

    ``params`` holds the xdp_program module's options (missing ones from
    ATTACH_DEFAULTS), ``have`` is ``attached_program(ipr, ifindex)`` and
    ``pin_path`` is already confined. Returns the module's result (with
    ``changed`` and ``diff``); raises DeployError or xdp.XdpError. In check mode
    nothing is built, loaded, attached or pinned.
    """
    p = _with_defaults(params)
    offload = p["mode"] == "offload"
    _refuse_foreign(p, have, pin_path, "replaced")
    if check_mode:
        return _planned(p, ifindex, have, pin_path)
    try:
        source, loaded = load_program(p["program"], p["defines"], p["loader"], p["bpf_dir"], p["build_dir"],
                                      p["clang"], p["function"], ifindex=ifindex if offload else None)
    except DeployError as exc:
        if offload and exc.details.get("offload_reason"):
            raise DeployError("the NIC refused to run %s offloaded on %s: %s"
                              % (p["program"], p["interface"], exc.details["offload_reason"]), **exc.details)
        if offload and "compiler_output" not in exc.details:
            raise DeployError("mode offload needs an offload-capable NIC (e.g. a Netronome Agilio with the BPF "
                              "firmware): the kernel refused to bind the program to %s (%s)"
                              % (p["interface"], xdp.link_kind(ipr, ifindex) or "no offload support"),
                              **exc.details)
        raise
    try:
        want = {"mode": p["mode"], "tag": loaded.tag, "name": loaded.info["name"]}
        same = (have["mode"] == want["mode"] and have["tag"] == want["tag"]
                and pinned_prog_id(pin_path) == have["prog_id"])
        result = dict(ifindex=ifindex, pin_path=pin_path, program=source.name, loader=p["loader"],
                      program_hash=loaded.program_hash, object_path=loaded.object_path,
                      load_time_ms=round(loaded.load_time_ms, 3), attach_time_ms=0.0)
        if same:
            maps = {n: os.path.join(pin_path, n) for n in loaded.map_fds
                    if os.path.exists(os.path.join(pin_path, n))}
            result.update(changed=False, prog_id=have["prog_id"], tag=have["tag"], mode=have["mode"], maps=maps)
            return result
        after = dict(want, prog_id=loaded.info["id"])
        result.update(changed=True, diff={"before": _describe(have), "after": after})
        check_bpffs(pin_path)
        attach_ms, maps = deploy(ipr, ifindex, loaded, p["mode"], have, pin_path, p["interface"], p["netns"])
        result.update(prog_id=loaded.info["id"], tag=loaded.tag, mode=p["mode"], maps=maps,
                      attach_time_ms=round(attach_ms, 3))
        return result
    finally:
        loaded.close()


def ensure_detached(params, ipr, ifindex, have, pin_path, check_mode=False):
    """Detach the collection's XDP program from ``ifindex`` and remove its pins (see ensure_attached)."""
    p = _with_defaults(params)
    _refuse_foreign(p, have, pin_path, "detached")
    pins = os.path.isdir(pin_path)
    result = dict(ifindex=ifindex, pin_path=pin_path, prog_id=None, tag=None, mode=None,
                  changed=bool(have["mode"]) or pins)
    if result["changed"]:
        result["diff"] = {"before": _describe(have), "after": {}}
    if result["changed"] and not check_mode:
        if have["mode"]:
            detach_programs(ipr, ifindex, have, p["interface"], p["netns"])
        remove_pins(pin_path)
    return result


def target_pin_path(params, pin_path=None):
    """The confined pin directory for ``params``' interface and namespace (``pin_path`` or the default).

    Checks the interface and namespace names first (safety.UnsafeInput), then
    confines the directory under PIN_ROOT (DeployError), like the module does
    before it reads or removes anything.
    """
    p = _with_defaults(params)
    safety.interface_name(p["interface"], "interface")
    safety.netns_name(p["netns"], "netns")
    return confined_pin_path(pin_path or default_pin_path(p["interface"], p["netns"]), PIN_ROOT, "pin_path")


def _ensure_on(ensure, params, pin_path, check_mode):
    p = _with_defaults(params)
    pin_path = target_pin_path(p, pin_path)
    with xdp.open_netlink(p["netns"]) as ipr:
        ifindex = xdp.lookup(ipr, p["interface"], p["netns"])
        have = attached_program(ipr, ifindex)
        return ensure(p, ipr, ifindex, have, pin_path, check_mode)


def ensure_attached_on(params, pin_path=None, check_mode=False):
    """ensure_attached on ``params['interface']`` in ``params['netns']``: opens netlink, reads what is attached.

    Raises safety.UnsafeInput (interface or netns name), DeployError or xdp.XdpError.
    """
    return _ensure_on(ensure_attached, params, pin_path, check_mode)


def ensure_detached_on(params, pin_path=None, check_mode=False):
    """ensure_detached on ``params['interface']`` in ``params['netns']`` (see ensure_attached_on)."""
    return _ensure_on(ensure_detached, params, pin_path, check_mode)
