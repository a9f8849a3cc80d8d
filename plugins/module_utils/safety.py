# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection refuses, in one place: names that become path parts or
command arguments, paths it writes or deletes as root, and where traffic may go.

Every check raises ``UnsafeInput`` whose message names the option and the rule,
so a module can hand it to ``fail_json`` as it is. Pure functions: unit-tested
without root.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import os
import re

# RFC 2544's benchmarking range: the only destinations the lab sends to unless
# an inventory allows more explicitly (plus loopback).
BENCH_NET = ipaddress.ip_network("198.18.0.0/15")

# Interface names as the kernel allows them (dev_valid_name: 1..15 bytes, not
# "." or "..", no "/", ":" or white space), further limited to characters that
# are safe on any command line.
_IFNAME_RE = re.compile(r"[A-Za-z0-9_.@+-]{1,15}")
# Namespace names, run ids, cell ids, guest and experiment names: a path part
# without a leading dot (at most NAME_MAX characters; a file name may add a suffix).
_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
NAME_MAX = 200
# Names people type and read back (namespaces, run ids, experiments): 64 at most.
SHORT_NAME_MAX = 64


class UnsafeInput(ValueError):
    """A refused input; ``msg`` names the option and the rule, ``option`` the option."""

    def __init__(self, msg, option=None):
        super(UnsafeInput, self).__init__(msg)
        self.msg = msg
        self.option = option


def interface_name(value, option="interface"):
    """``value`` if it is a valid interface name, else UnsafeInput."""
    if not isinstance(value, str) or not _IFNAME_RE.fullmatch(value) or value in (".", ".."):
        raise UnsafeInput("%s %r is not an interface name: 1 to 15 of the characters A-Z a-z 0-9 _ . @ + -, "
                          "not '.' or '..'" % (option, value), option)
    return value


def name(value, option, what="name", max_len=NAME_MAX):
    """``value`` if it is a safe path part (netns, run id, cell id, guest, experiment), else UnsafeInput."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value) or len(value) > max_len:
        raise UnsafeInput("%s %r is not a valid %s: 1 to %d of the characters A-Z a-z 0-9 _ . -, "
                          "not starting with a dot" % (option, value, what, max_len), option)
    return value


def netns_name(value, option="netns"):
    """An optional network namespace name: empty/None means the host's namespace."""
    if value in (None, ""):
        return value
    return name(value, option, "network namespace name", SHORT_NAME_MAX)


def run_id(value, option="run_id"):
    return name(value, option, "run id", SHORT_NAME_MAX)


def confined(path, root, option):
    """The resolved ``path`` if it is ``root`` or lies under it, else UnsafeInput.

    Both are resolved (symbolic links, ``..``) before they are compared, so a
    link or a ``..`` cannot lead out of ``root``.
    """
    if not isinstance(path, str) or not path:
        raise UnsafeInput("%s must be a path under %s" % (option, root), option)
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise UnsafeInput("%s %r resolves to %s, which is outside %s: the collection writes and deletes "
                          "only under its own directories" % (option, path, real, real_root), option)
    return real


def strictly_under(path, root, option):
    """Like ``confined`` but ``root`` itself is refused (for paths that get deleted)."""
    real = confined(path, root, option)
    if real == os.path.realpath(root):
        raise UnsafeInput("%s %r is %s itself: name a directory below it" % (option, path, root), option)
    return real


def allowed_networks(values, option="allowed_destinations"):
    """Parse an allow-list of networks (CIDR strings) into ip_network objects."""
    nets = []
    for value in values or ():
        try:
            nets.append(ipaddress.ip_network(str(value), strict=False))
        except ValueError:
            raise UnsafeInput("%s entry %r is not an IP network (like 192.0.2.0/24)" % (option, value), option)
    return nets


def destination(value, option="dst_ip", allowed=()):
    """``value`` if traffic may be sent there: 198.18.0.0/15, loopback, or an allowed network."""
    try:
        addr = ipaddress.ip_address(str(value))
    except ValueError:
        raise UnsafeInput("%s %r is not an IP address" % (option, value), option)
    if addr in BENCH_NET or addr.is_loopback:
        return value
    if any(addr in net for net in allowed_networks(allowed)):
        return value
    raise UnsafeInput("%s %s is outside 198.18.0.0/15 (RFC 2544's benchmarking range) and loopback; the "
                      "collection sends traffic nowhere else unless the inventory lists the testbed's networks "
                      "in traffic_allowed_destinations" % (option, value), option)
