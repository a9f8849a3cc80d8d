# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test frames in pure Python: Ethernet/IPv4 with UDP, a DNS query, a TCP SYN.

Every frame has full, valid checksums (IPv4 header, UDP, TCP), addresses from
198.18.0.0/15 and locally administered unicast MACs. The defaults match the
load generator (bpf/loadgen): 02:00:c6:12:00:01 / 198.18.0.1 sends to
02:00:c6:12:00:02 / 198.18.0.2.

``size`` is always the frame length without FCS (60 is a 64-byte frame on the
wire). A UDP frame fills it with payload (the UDP length covers it, like the
load generator); DNS query and TCP SYN frames keep their natural IP length and
are padded with an Ethernet trailer of zeros, as a NIC pads short frames.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import re
import struct

from ansible_collections.xdplab.offload.plugins.module_utils.safety import BENCH_NET

ETH_HLEN = 14
IPV4_HLEN = 20
UDP_HLEN = 8
TCP_HLEN = 20
DNS_HLEN = 12
ETH_P_IP = 0x0800
IPPROTO_TCP = 6
IPPROTO_UDP = 17

MIN_SIZE = 60     # frame length without FCS: a 64-byte frame on the wire
MAX_SIZE = 1518   # what a veth with MTU 1500 accepts (MTU + 14 + VLAN tag)
MIN_HEX_LEN = ETH_HLEN

SRC_MAC = "02:00:c6:12:00:01"
DST_MAC = "02:00:c6:12:00:02"
SRC_IP = "198.18.0.1"
DST_IP = "198.18.0.2"
# BENCH_NET (198.18.0.0/15) comes from safety.py, the one place that says where traffic may go.

KINDS = ("udp", "dns_query", "tcp")
QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "ANY": 255}


class PacketError(ValueError):
    """A frame that cannot be built as asked."""

    def __init__(self, msg):
        super(PacketError, self).__init__(msg)
        self.msg = msg


def internet_checksum(data):
    """RFC 1071 checksum of ``data`` (bytes), as the 16-bit value to store."""
    if len(data) % 2:
        data = bytes(data) + b"\0"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff


def mac_bytes(mac):
    """``02:00:c6:12:00:01`` (or with ``-``) as 6 bytes."""
    if isinstance(mac, (bytes, bytearray)) and len(mac) == 6:
        return bytes(mac)
    parts = re.split("[:-]", str(mac))
    try:
        raw = bytes(int(p, 16) for p in parts)
    except ValueError:
        raw = b""
    if len(parts) != 6 or len(raw) != 6 or any(len(p) not in (1, 2) for p in parts):
        raise PacketError("%r is not a MAC address (want six hex bytes like 02:00:c6:12:00:01)" % (mac,))
    return raw


def ipv4_bytes(addr, check_bench=True):
    """An IPv4 address as 4 bytes; by default only 198.18.0.0/15 is accepted."""
    try:
        ip = ipaddress.IPv4Address(addr)
    except ValueError:
        raise PacketError("%r is not an IPv4 address" % (addr,))
    if check_bench and ip not in BENCH_NET and not ip.is_loopback:
        raise PacketError("%s is outside 198.18.0.0/15 (the benchmarking range the lab uses)" % ip)
    return ip.packed


def ethernet_header(src_mac=SRC_MAC, dst_mac=DST_MAC, ethertype=ETH_P_IP):
    return mac_bytes(dst_mac) + mac_bytes(src_mac) + struct.pack("!H", ethertype)


def ipv4_header(src_ip, dst_ip, protocol, payload_len, ident=0, ttl=64, tos=0):
    """A 20-byte IPv4 header (DF set) with a valid header checksum."""
    total = IPV4_HLEN + payload_len
    if total > 0xffff:
        raise PacketError("IPv4 datagram of %d bytes is too long" % total)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, tos, total, ident, 0x4000, ttl, protocol, 0,
                      ipv4_bytes(src_ip), ipv4_bytes(dst_ip))
    return hdr[:10] + struct.pack("!H", internet_checksum(hdr)) + hdr[12:]


def _pseudo_header(src_ip, dst_ip, protocol, length):
    return ipv4_bytes(src_ip) + ipv4_bytes(dst_ip) + struct.pack("!BBH", 0, protocol, length)


def udp_segment(src_ip, dst_ip, sport, dport, payload):
    """A UDP header + payload with the full checksum (0 is sent as 0xffff)."""
    length = UDP_HLEN + len(payload)
    seg = struct.pack("!HHHH", sport, dport, length, 0) + payload
    check = internet_checksum(_pseudo_header(src_ip, dst_ip, IPPROTO_UDP, length) + seg) or 0xffff
    return seg[:6] + struct.pack("!H", check) + seg[8:]


def tcp_segment(src_ip, dst_ip, sport, dport, seq=0, ack=0, flags=0x02, window=64240, options=b"", payload=b""):
    """A TCP header (+ options, payload) with the full checksum."""
    if len(options) % 4:
        raise PacketError("TCP options must be a multiple of 4 bytes long")
    offset = (TCP_HLEN + len(options)) // 4
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, offset << 4, flags, window, 0, 0) + options + payload
    check = internet_checksum(_pseudo_header(src_ip, dst_ip, IPPROTO_TCP, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", check) + seg[18:]


def _port(value, what):
    if not isinstance(value, int) or not 0 <= value <= 0xffff:
        raise PacketError("%s %r is not a port number (0..65535)" % (what, value))
    return value


def _check_size(size, natural, kind):
    if size is None:
        return max(natural, MIN_SIZE)
    if not isinstance(size, int) or isinstance(size, bool):
        raise PacketError("size must be an integer number of bytes, got %r" % (size,))
    if size < natural:
        raise PacketError("size %d is too small for a %s frame (at least %d bytes)" % (size, kind, natural))
    if size > MAX_SIZE:
        raise PacketError("size %d is larger than %d bytes (MTU 1500 + Ethernet header + VLAN tag)"
                          % (size, MAX_SIZE))
    return size


def _pad(frame, size):
    return frame + b"\0" * (size - len(frame))


def udp_frame(size=None, src_mac=SRC_MAC, dst_mac=DST_MAC, src_ip=SRC_IP, dst_ip=DST_IP,
              sport=9, dport=9, payload=None):
    """An Ethernet/IPv4/UDP frame of exactly ``size`` bytes (default 60).

    Without ``payload`` the payload is the byte pattern 0, 1, 2, ... filling
    the frame; with one it must fit and the rest stays zero-padded inside UDP.
    """
    natural = ETH_HLEN + IPV4_HLEN + UDP_HLEN + (len(payload) if payload else 0)
    size = _check_size(size, natural, "UDP")
    room = size - (ETH_HLEN + IPV4_HLEN + UDP_HLEN)
    if payload is None:
        body = bytes(i & 0xff for i in range(room))
    else:
        body = bytes(payload).ljust(room, b"\0")
    seg = udp_segment(src_ip, dst_ip, _port(sport, "sport"), _port(dport, "dport"), body)
    return ethernet_header(src_mac, dst_mac) + ipv4_header(src_ip, dst_ip, IPPROTO_UDP, len(seg)) + seg


def encode_qname(name):
    """``example.com`` as DNS labels (``\\x07example\\x03com\\x00``)."""
    name = str(name).rstrip(".")
    out = b""
    if name:
        for label in name.split("."):
            try:
                raw = label.encode("ascii")
            except UnicodeError:
                try:
                    raw = label.encode("idna")
                except UnicodeError:
                    raw = b""
            if not raw or len(raw) > 63:
                raise PacketError("%r is not a DNS name: every label must be 1..63 bytes" % (name,))
            out += struct.pack("!B", len(raw)) + raw
    out += b"\0"
    if len(out) > 255:
        raise PacketError("%r is not a DNS name: longer than 255 bytes on the wire" % (name,))
    return out


def dns_query(qname="example.com", qtype="A", txid=0x584c, recursion_desired=True):
    """A DNS query message (QR=0, opcode QUERY, one question, class IN)."""
    if isinstance(qtype, str):
        if qtype.upper() not in QTYPES:
            raise PacketError("unknown DNS query type %r (known: %s)" % (qtype, ", ".join(sorted(QTYPES))))
        qtype = QTYPES[qtype.upper()]
    flags = 0x0100 if recursion_desired else 0x0000
    header = struct.pack("!HHHHHH", txid & 0xffff, flags, 1, 0, 0, 0)
    return header + encode_qname(qname) + struct.pack("!HH", qtype, 1)


def dns_query_frame(qname="example.com", qtype="A", size=None, src_mac=SRC_MAC, dst_mac=DST_MAC,
                    src_ip=SRC_IP, dst_ip=DST_IP, sport=40000, dport=53, txid=0x584c):
    """An Ethernet/IPv4/UDP frame carrying a DNS query for ``qname``.

    The IP and UDP lengths are the query's own; a larger ``size`` (default:
    at least 60) adds an Ethernet trailer of zeros.
    """
    msg = dns_query(qname, qtype, txid)
    seg = udp_segment(src_ip, dst_ip, _port(sport, "sport"), _port(dport, "dport"), msg)
    frame = ethernet_header(src_mac, dst_mac) + ipv4_header(src_ip, dst_ip, IPPROTO_UDP, len(seg)) + seg
    return _pad(frame, _check_size(size, len(frame), "DNS query"))


def tcp_syn_frame(size=None, src_mac=SRC_MAC, dst_mac=DST_MAC, src_ip=SRC_IP, dst_ip=DST_IP,
                  sport=40000, dport=80, seq=0x584c0001, mss=1460):
    """An Ethernet/IPv4/TCP SYN (with an MSS option), Ethernet-padded to ``size``."""
    options = struct.pack("!BBH", 2, 4, mss) if mss else b""
    seg = tcp_segment(src_ip, dst_ip, _port(sport, "sport"), _port(dport, "dport"), seq=seq, flags=0x02,
                      options=options)
    frame = ethernet_header(src_mac, dst_mac) + ipv4_header(src_ip, dst_ip, IPPROTO_TCP, len(seg)) + seg
    return _pad(frame, _check_size(size, len(frame), "TCP SYN"))


_HEX_SEPARATORS = re.compile(r"[\s:.\-]")


def parse_hex(text):
    """A frame given as hex (``0x`` prefix, whitespace, ``:``, ``-``, ``.`` allowed)."""
    raw = _HEX_SEPARATORS.sub("", str(text))
    if raw[:2].lower() == "0x":
        raw = raw[2:]
    if not raw or len(raw) % 2 or re.search("[^0-9a-fA-F]", raw):
        raise PacketError("packet %r is neither a known kind (%s) nor an even number of hex digits"
                          % (_short(text), ", ".join(KINDS)))
    data = bytes.fromhex(raw)
    if len(data) < MIN_HEX_LEN:
        raise PacketError("a hex packet needs at least %d bytes (an Ethernet header), got %d"
                          % (MIN_HEX_LEN, len(data)))
    return data


def _short(text, limit=40):
    text = str(text)
    return text if len(text) <= limit else text[:limit] + "..."


def build(packet, size=None, qname="example.com", dst_ip=None):
    """The frame for ``packet``: a kind from KINDS or a hex string.

    Returns ``(kind, frame)``; kind is ``hex`` for a hex frame (``size`` must
    then be empty or equal to its length, and ``dst_ip`` empty). ``dst_ip``
    replaces the default destination address of a built frame.
    """
    kind = str(packet).strip()
    dst = dst_ip or DST_IP
    if kind == "udp":
        return kind, udp_frame(size, dst_ip=dst)
    if kind == "dns_query":
        return kind, dns_query_frame(qname, size=size, dst_ip=dst)
    if kind == "tcp":
        return kind, tcp_syn_frame(size, dst_ip=dst)
    data = parse_hex(kind)
    if dst_ip:
        raise PacketError("dst_ip is for built packets (udp, dns_query, tcp), not for a hex packet: "
                          "write the address into the hex frame")
    if size is not None and size != len(data):
        raise PacketError("size %d does not match the %d bytes of the hex packet (leave size out)"
                          % (size, len(data)))
    return "hex", data
