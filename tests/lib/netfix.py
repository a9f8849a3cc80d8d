"""Real network namespaces and veth pairs for tests, always removed afterwards.

Every object carries the ``xl-`` prefix; addresses are from 198.18.0.0/15.
"""
import os
import uuid

from pyroute2 import IPRoute, netns


def unique(prefix):
    """A short unique name (interface names are limited to 15 characters)."""
    return "%s%s" % (prefix, uuid.uuid4().hex[:6])


class VethPair(object):
    """A veth pair: ``a`` stays in the root namespace unless ``ns_a`` is given."""

    def __init__(self, name_a, name_b, ns_a=None, ns_b=None):
        self.name_a, self.name_b, self.ns_a, self.ns_b = name_a, name_b, ns_a, ns_b
        self.namespaces = [n for n in (ns_a, ns_b) if n]

    def create(self):
        for ns in self.namespaces:
            if ns not in netns.listnetns():
                netns.create(ns)
        with IPRoute() as ipr:
            ipr.link("add", ifname=self.name_a, kind="veth", peer={"ifname": self.name_b})
            for name, ns in ((self.name_a, self.ns_a), (self.name_b, self.ns_b)):
                if ns:
                    idx = ipr.link_lookup(ifname=name)[0]
                    ipr.link("set", index=idx, net_ns_fd=ns)
        for name, ns in ((self.name_a, self.ns_a), (self.name_b, self.ns_b)):
            with IPRoute(netns=ns) if ns else IPRoute() as ipr:
                idx = ipr.link_lookup(ifname=name)[0]
                ipr.link("set", index=idx, state="up")
        return self

    def destroy(self):
        for name, ns in ((self.name_a, self.ns_a), (self.name_b, self.ns_b)):
            try:
                with IPRoute(netns=ns) if ns else IPRoute() as ipr:
                    found = ipr.link_lookup(ifname=name)
                    if found:
                        ipr.link("del", index=found[0])
                        break
            except Exception:  # the namespace may already be gone
                pass
        for ns in self.namespaces:
            if ns in netns.listnetns():
                netns.remove(ns)


def ifindex(name, ns=None):
    with IPRoute(netns=ns) if ns else IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        return found[0] if found else None


def is_root():
    return os.geteuid() == 0
