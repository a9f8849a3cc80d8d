# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small ctypes binding of the system libbpf (libbpf.so.1, >= 1.0).

Only what the collection needs: open/load an ELF object (with the verifier log
kept), pin and fetch objects in bpffs, read program/map info, run
BPF_PROG_TEST_RUN and read per-CPU array maps. Every failure raises
``BpfError`` carrying errno and, for loads, the verifier log.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ctypes
import ctypes.util
import errno as errno_mod
import os

LIBBPF_NAMES = ("libbpf.so.1", "libbpf.so")
BPF_PROG_TYPE_XDP = 6
BPF_F_TEST_XDP_LIVE_FRAMES = 1 << 1
VERIFIER_LOG_SIZE = 4 * 1024 * 1024

_lib = None


class BpfError(Exception):
    """A libbpf or bpf() syscall failure."""

    def __init__(self, msg, err=0, log=""):
        super(BpfError, self).__init__(msg)
        self.msg = msg
        self.errno = abs(err)
        self.log = log


class _TestRunOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p),
        ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p),
        ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


class _XdpMd(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_uint32),
        ("data_end", ctypes.c_uint32),
        ("data_meta", ctypes.c_uint32),
        ("ingress_ifindex", ctypes.c_uint32),
        ("rx_queue_index", ctypes.c_uint32),
        ("egress_ifindex", ctypes.c_uint32),
    ]


# struct bpf_prog_info / bpf_map_info: read into a zeroed buffer of the kernel's
# size and pick the fields by their uapi offsets (stable ABI).
_PROG_INFO_SIZE = 232
_MAP_INFO_SIZE = 88


def _load_lib():
    global _lib
    if _lib is not None:
        return _lib
    names = list(LIBBPF_NAMES)
    found = ctypes.util.find_library("bpf")
    if found:
        names.append(found)
    last = None
    for name in names:
        try:
            lib = ctypes.CDLL(name, use_errno=True)
            break
        except OSError as exc:
            last = exc
    else:
        raise BpfError("libbpf is not installed (no libbpf.so.1): install the libbpf1 package (%s)" % last,
                       errno_mod.ENOENT)
    sig = {
        "bpf_object__open_file": (ctypes.c_void_p, [ctypes.c_char_p, ctypes.c_void_p]),
        "bpf_object__load": (ctypes.c_int, [ctypes.c_void_p]),
        "bpf_object__close": (None, [ctypes.c_void_p]),
        "bpf_object__next_program": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_void_p]),
        "bpf_object__next_map": (ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_void_p]),
        "bpf_object__pin_maps": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p]),
        "bpf_program__name": (ctypes.c_char_p, [ctypes.c_void_p]),
        "bpf_program__section_name": (ctypes.c_char_p, [ctypes.c_void_p]),
        "bpf_program__fd": (ctypes.c_int, [ctypes.c_void_p]),
        "bpf_program__type": (ctypes.c_int, [ctypes.c_void_p]),
        "bpf_program__set_autoload": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_bool]),
        "bpf_program__set_ifindex": (None, [ctypes.c_void_p, ctypes.c_uint32]),
        "bpf_program__set_log_buf": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]),
        "bpf_program__set_log_level": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_uint32]),
        "bpf_map__name": (ctypes.c_char_p, [ctypes.c_void_p]),
        "bpf_map__fd": (ctypes.c_int, [ctypes.c_void_p]),
        "bpf_map__set_ifindex": (None, [ctypes.c_void_p, ctypes.c_uint32]),
        "bpf_obj_pin": (ctypes.c_int, [ctypes.c_int, ctypes.c_char_p]),
        "bpf_obj_get": (ctypes.c_int, [ctypes.c_char_p]),
        "bpf_obj_get_info_by_fd": (ctypes.c_int, [ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)]),
        "bpf_prog_get_fd_by_id": (ctypes.c_int, [ctypes.c_uint32]),
        "bpf_prog_test_run_opts": (ctypes.c_int, [ctypes.c_int, ctypes.POINTER(_TestRunOpts)]),
        "bpf_map_lookup_elem": (ctypes.c_int, [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]),
        "bpf_map_update_elem": (ctypes.c_int, [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64]),
        "libbpf_num_possible_cpus": (ctypes.c_int, []),
    }
    for name, (restype, argtypes) in sig.items():
        func = getattr(lib, name)
        func.restype = restype
        func.argtypes = argtypes
    _lib = lib
    return lib


def _fail(what, ret=None):
    err = ctypes.get_errno() if ret is None or ret == -1 else -ret
    raise BpfError("%s: %s" % (what, os.strerror(err) if err else "unknown error"), err)


def _text(value):
    return value.decode("utf-8", "replace") if value else ""


class LoadedObject:
    """An ELF object loaded into the kernel; one XDP program selected."""

    def __init__(self, obj, prog, log):
        self._obj = obj
        self._prog = prog
        self.verifier_log = log

    @property
    def prog_fd(self):
        return _load_lib().bpf_program__fd(self._prog)

    @property
    def prog_name(self):
        return _text(_load_lib().bpf_program__name(self._prog))

    @property
    def map_fds(self):
        lib = _load_lib()
        maps = {}
        cur = lib.bpf_object__next_map(self._obj, None)
        while cur:
            maps[_text(lib.bpf_map__name(cur))] = lib.bpf_map__fd(cur)
            cur = lib.bpf_object__next_map(self._obj, cur)
        return maps

    def pin_maps(self, directory):
        """Pin every map of the object as ``directory/<map name>``."""
        ret = _load_lib().bpf_object__pin_maps(self._obj, directory.encode())
        if ret:
            _fail("cannot pin the maps under %s" % directory, ret)

    def close(self):
        if self._obj:
            _load_lib().bpf_object__close(self._obj)
            self._obj = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _programs(lib, obj):
    cur = lib.bpf_object__next_program(obj, None)
    while cur:
        yield cur
        cur = lib.bpf_object__next_program(obj, cur)


def load_object(path, prog_name=None, ifindex=None, log_level=0):
    """Open and load ``path``; select ``prog_name`` (default: the first program).

    With ``ifindex`` the program and its maps are bound to that device
    (hardware offload). The verifier log is kept; on a rejection it is
    attached to the raised BpfError.
    """
    lib = _load_lib()
    ctypes.set_errno(0)
    obj = lib.bpf_object__open_file(path.encode(), None)
    if not obj:
        _fail("cannot open BPF object %s" % path)
    try:
        progs = list(_programs(lib, obj))
        names = [_text(lib.bpf_program__name(p)) for p in progs]
        if not progs:
            raise BpfError("BPF object %s contains no program" % path, errno_mod.ENOENT)
        if prog_name is None:
            chosen = progs[0]
        elif prog_name in names:
            chosen = progs[names.index(prog_name)]
        else:
            raise BpfError("BPF object %s has no program named %s (it has: %s)"
                           % (path, prog_name, ", ".join(names)), errno_mod.ENOENT)
        for prog in progs:
            if prog != chosen:
                lib.bpf_program__set_autoload(prog, False)
        logbuf = ctypes.create_string_buffer(VERIFIER_LOG_SIZE)
        lib.bpf_program__set_log_buf(chosen, logbuf, VERIFIER_LOG_SIZE)
        lib.bpf_program__set_log_level(chosen, log_level if log_level else 0)
        if ifindex:
            lib.bpf_program__set_ifindex(chosen, ifindex)
            cur = lib.bpf_object__next_map(obj, None)
            while cur:
                lib.bpf_map__set_ifindex(cur, ifindex)
                cur = lib.bpf_object__next_map(obj, cur)
        ret = lib.bpf_object__load(obj)
        log = _text(logbuf.value)
        if ret:
            err = -ret
            if not log and log_level == 0 and err in (errno_mod.EACCES, errno_mod.EINVAL):
                # The kernel only fills a log when asked for one: reload verbosely.
                lib.bpf_object__close(obj)
                obj = None
                return load_object(path, prog_name, ifindex, log_level=1)
            raise BpfError("the kernel rejected program %s from %s: %s"
                           % (_text(lib.bpf_program__name(chosen)), path, os.strerror(err)), err, log)
        return LoadedObject(obj, chosen, log)
    except BaseException:
        if obj:
            lib.bpf_object__close(obj)
        raise


def obj_pin(fd, path):
    ret = _load_lib().bpf_obj_pin(fd, path.encode())
    if ret:
        _fail("cannot pin to %s" % path, ret)


def obj_get(path):
    """Return a new fd for the object pinned at ``path``."""
    ctypes.set_errno(0)
    fd = _load_lib().bpf_obj_get(path.encode())
    if fd < 0:
        _fail("cannot open pinned object %s" % path, fd)
    return fd


def prog_fd_by_id(prog_id):
    fd = _load_lib().bpf_prog_get_fd_by_id(prog_id)
    if fd < 0:
        _fail("no BPF program with id %d" % prog_id, fd)
    return fd


def _info(fd, size):
    buf = ctypes.create_string_buffer(size)
    length = ctypes.c_uint32(size)
    ret = _load_lib().bpf_obj_get_info_by_fd(fd, buf, ctypes.byref(length))
    if ret:
        _fail("cannot read info of BPF object fd %d" % fd, ret)
    return buf.raw


def _u32(raw, off):
    return int.from_bytes(raw[off:off + 4], "little")


def _u64(raw, off):
    return int.from_bytes(raw[off:off + 8], "little")


def prog_info(fd):
    """Id, tag, name, type, device binding and run statistics of a program."""
    raw = _info(fd, _PROG_INFO_SIZE)
    return {
        "type": _u32(raw, 0),
        "id": _u32(raw, 4),
        "tag": raw[8:16].hex(),
        "xlated_prog_len": _u32(raw, 20),
        "load_time": _u64(raw, 40),
        "name": raw[64:80].split(b"\0", 1)[0].decode("utf-8", "replace"),
        "ifindex": _u32(raw, 80),
        "run_time_ns": _u64(raw, 192),
        "run_cnt": _u64(raw, 200),
        "verified_insns": _u32(raw, 216),
    }


def map_info(fd):
    raw = _info(fd, _MAP_INFO_SIZE)
    return {
        "type": _u32(raw, 0),
        "id": _u32(raw, 4),
        "key_size": _u32(raw, 8),
        "value_size": _u32(raw, 12),
        "max_entries": _u32(raw, 16),
        "name": raw[24:40].split(b"\0", 1)[0].decode("utf-8", "replace"),
    }


class TestRunResult:
    def __init__(self, retval, data_out, duration_ns):
        self.retval = retval
        self.data_out = data_out
        self.duration_ns = duration_ns

    def __repr__(self):
        return "TestRunResult(retval=%d, %d bytes, %d ns)" % (self.retval, len(self.data_out), self.duration_ns)


def test_run(prog_fd, data, repeat=1, flags=0, batch_size=0, ingress_ifindex=0, data_out_size=None):
    """BPF_PROG_TEST_RUN of an XDP program on ``data``.

    ``duration_ns`` is the kernel's average per repetition. With
    ``flags=BPF_F_TEST_XDP_LIVE_FRAMES`` the frames really leave (redirect/TX).
    """
    lib = _load_lib()
    data_in = ctypes.create_string_buffer(bytes(data), len(data))
    live = bool(flags & BPF_F_TEST_XDP_LIVE_FRAMES)
    out_size = 0 if live else (data_out_size or len(data) + 256)
    data_out = ctypes.create_string_buffer(out_size) if out_size else None
    opts = _TestRunOpts()
    opts.sz = ctypes.sizeof(_TestRunOpts)
    opts.data_in = ctypes.cast(data_in, ctypes.c_void_p)
    opts.data_size_in = len(data)
    if data_out is not None:
        opts.data_out = ctypes.cast(data_out, ctypes.c_void_p)
        opts.data_size_out = out_size
    ctx = None
    if ingress_ifindex or live:
        ctx = _XdpMd(0, len(data), 0, ingress_ifindex, 0, 0)
        opts.ctx_in = ctypes.cast(ctypes.byref(ctx), ctypes.c_void_p)
        opts.ctx_size_in = ctypes.sizeof(_XdpMd)
    opts.repeat = repeat
    opts.flags = flags
    opts.batch_size = batch_size
    ret = lib.bpf_prog_test_run_opts(prog_fd, ctypes.byref(opts))
    if ret:
        _fail("BPF_PROG_TEST_RUN failed", ret)
    out = data_out.raw[:opts.data_size_out] if data_out is not None else b""
    return TestRunResult(opts.retval, out, opts.duration)


def num_possible_cpus():
    n = _load_lib().libbpf_num_possible_cpus()
    if n <= 0:
        raise BpfError("cannot determine the number of possible CPUs", -n)
    return n


def _round8(n):
    return (n + 7) & ~7


def map_lookup_percpu(map_fd, key, value_size):
    """Values of a per-CPU map entry: one ``bytes`` of ``value_size`` per possible CPU."""
    ncpu = num_possible_cpus()
    stride = _round8(value_size)
    buf = ctypes.create_string_buffer(stride * ncpu)
    k = ctypes.c_uint32(key)
    ret = _load_lib().bpf_map_lookup_elem(map_fd, ctypes.byref(k), buf)
    if ret:
        _fail("cannot read key %d of map fd %d" % (key, map_fd), ret)
    raw = buf.raw
    return [raw[i * stride:i * stride + value_size] for i in range(ncpu)]


def map_lookup(map_fd, key, value_size):
    """The value of a (not per-CPU) array map entry."""
    buf = ctypes.create_string_buffer(value_size)
    k = ctypes.c_uint32(key)
    ret = _load_lib().bpf_map_lookup_elem(map_fd, ctypes.byref(k), buf)
    if ret:
        _fail("cannot read key %d of map fd %d" % (key, map_fd), ret)
    return buf.raw


def map_update(map_fd, key, value):
    """Write one value into a (not per-CPU) array map entry."""
    buf = ctypes.create_string_buffer(bytes(value), len(value))
    k = ctypes.c_uint32(key)
    ret = _load_lib().bpf_map_update_elem(map_fd, ctypes.byref(k), buf, 0)
    if ret:
        _fail("cannot write key %d of map fd %d" % (key, map_fd), ret)


def map_update_percpu(map_fd, key, values, value_size):
    """Write one ``bytes`` per possible CPU into a per-CPU map entry."""
    ncpu = num_possible_cpus()
    stride = _round8(value_size)
    if len(values) != ncpu:
        raise BpfError("need %d per-CPU values, got %d" % (ncpu, len(values)), errno_mod.EINVAL)
    raw = b"".join(bytes(v).ljust(stride, b"\0") for v in values)
    buf = ctypes.create_string_buffer(raw, len(raw))
    k = ctypes.c_uint32(key)
    ret = _load_lib().bpf_map_update_elem(map_fd, ctypes.byref(k), buf, 0)
    if ret:
        _fail("cannot write key %d of map fd %d" % (key, map_fd), ret)


def close_fd(fd):
    if fd is not None and fd >= 0:
        os.close(fd)
