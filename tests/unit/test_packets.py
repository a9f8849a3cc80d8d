"""Packet builders: lengths, fields and checksums, verified by an independent parser.

The checks below never call the builders' own checksum function: they parse the
frame with struct and verify each checksum the way a receiver does (the one's
complement sum over the covered bytes, checksum included, is 0xffff, i.e. the
plain integer sum of the 16-bit words is a multiple of 0xffff).
"""
import ipaddress
import struct

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import packets

BENCH = ipaddress.ip_network("198.18.0.0/15")


def words_sum(data):
    if len(data) % 2:
        data += b"\0"
    return sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))


def checksum_ok(data):
    """Receiver-side check, by modular arithmetic instead of carry folding."""
    total = words_sum(data)
    return total != 0 and total % 0xffff == 0


def parse(frame):
    """Independent parse of Ethernet/IPv4 and the L4 header."""
    dst, src, ethertype = frame[0:6], frame[6:12], int.from_bytes(frame[12:14], "big")
    ip = frame[14:]
    ver_ihl, _tos, tot_len, _ident, frag, ttl, proto, _check = struct.unpack("!BBHHHBBH", ip[:12])
    ihl = (ver_ihl & 0xf) * 4
    return dict(dst=dst, src=src, ethertype=ethertype, version=ver_ihl >> 4, ihl=ihl, tot_len=tot_len,
                frag=frag, ttl=ttl, proto=proto, saddr=ip[12:16], daddr=ip[16:20],
                ip_header=ip[:ihl], l4=ip[ihl:tot_len], trailer=ip[tot_len:])


def pseudo(p):
    return p["saddr"] + p["daddr"] + bytes([0, p["proto"]]) + len(p["l4"]).to_bytes(2, "big")


def assert_common(frame):
    p = parse(frame)
    assert p["ethertype"] == 0x0800
    for mac in (p["dst"], p["src"]):
        assert mac[0] & 0x02, "locally administered bit set"
        assert not mac[0] & 0x01, "unicast"
    assert p["version"] == 4 and p["ihl"] == 20
    assert checksum_ok(p["ip_header"]), "IPv4 header checksum"
    assert ipaddress.IPv4Address(p["saddr"]) in BENCH
    assert ipaddress.IPv4Address(p["daddr"]) in BENCH
    assert p["frag"] == 0x4000  # DF, not a fragment
    return p


def test_rfc1071_worked_example():
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement),
    # so the checksum to store is its complement.
    assert packets.internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0xffff - 0xddf2


def test_checksum_of_odd_length_pads_with_zero():
    assert packets.internet_checksum(b"\x01") == packets.internet_checksum(b"\x01\x00")


@pytest.mark.parametrize("size", [42, 60, 61, 128, 1000, 1518])
def test_udp_frame_has_exact_size_and_valid_checksums(size):
    frame = packets.udp_frame(size)
    assert len(frame) == size
    p = assert_common(frame)
    assert p["proto"] == 17
    assert p["tot_len"] == size - 14 and p["trailer"] == b""
    sport, dport, length, check = struct.unpack("!HHHH", p["l4"][:8])
    assert (sport, dport) == (9, 9)
    assert length == size - 34
    assert check != 0
    assert checksum_ok(pseudo(p) + p["l4"]), "UDP checksum over pseudo header"
    assert p["l4"][8:] == bytes(i & 0xff for i in range(size - 42))


def test_udp_default_is_a_64_byte_wire_frame():
    assert len(packets.udp_frame()) == 60


def test_udp_payload_and_addresses_are_taken():
    frame = packets.udp_frame(100, src_ip="198.19.1.2", dst_ip="198.18.255.1", sport=1234, dport=53,
                              payload=b"hello", src_mac="02:aa:bb:cc:dd:ee")
    p = assert_common(frame)
    assert p["saddr"] == bytes([198, 19, 1, 2]) and p["daddr"] == bytes([198, 18, 255, 1])
    assert p["src"] == bytes.fromhex("02aabbccddee")
    assert p["l4"][8:13] == b"hello" and set(p["l4"][13:]) == {0}
    assert checksum_ok(pseudo(p) + p["l4"])


def test_many_udp_payloads_keep_valid_checksums():
    # includes payloads whose sum folds to 0 or 0xffff
    for n in range(256):
        frame = packets.udp_frame(60, payload=bytes([n, 255 - n]) * 3, sport=n, dport=65535 - n)
        p = parse(frame)
        assert checksum_ok(pseudo(p) + p["l4"]), n
        assert checksum_ok(p["ip_header"])


def test_udp_checksum_zero_is_sent_as_all_ones():
    # find a datagram whose computed checksum is 0 by solving for the last payload word
    base = packets.udp_segment("198.18.0.1", "198.18.0.2", 9, 9, b"\0\0")
    p_src, p_dst = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
    ph = p_src + p_dst + bytes([0, 17]) + (10).to_bytes(2, "big")
    partial = words_sum(ph + base[:6] + b"\0\0" + base[8:])
    # want the one's complement sum to be 0xffff so that the checksum (its complement) is 0
    word = (0xffff - partial % 0xffff) % 0xffff
    seg = packets.udp_segment("198.18.0.1", "198.18.0.2", 9, 9, word.to_bytes(2, "big"))
    assert seg[6:8] == b"\xff\xff"
    assert checksum_ok(ph + seg)


def parse_dns(msg):
    txid, flags, qd, an, ns, ar = struct.unpack("!6H", msg[:12])
    pos, labels = 12, []
    while msg[pos]:
        n = msg[pos]
        labels.append(msg[pos + 1:pos + 1 + n].decode())
        pos += 1 + n
    qtype, qclass = struct.unpack("!HH", msg[pos + 1:pos + 5])
    return dict(id=txid, flags=flags, counts=(qd, an, ns, ar), name=".".join(labels), qtype=qtype,
                qclass=qclass, end=pos + 5)


@pytest.mark.parametrize("qname", ["example.com", "www.example.org.", "a.b.c.d.e.f.xdplab.test"])
def test_dns_query_frame_is_a_real_query(qname):
    frame = packets.dns_query_frame(qname)
    p = assert_common(frame)
    assert p["proto"] == 17
    sport, dport, length, _check = struct.unpack("!HHHH", p["l4"][:8])
    assert dport == 53 and sport == 40000
    assert length == len(p["l4"])
    assert checksum_ok(pseudo(p) + p["l4"])
    dns = parse_dns(p["l4"][8:])
    assert not dns["flags"] & 0x8000, "QR=0: a query"
    assert (dns["flags"] >> 11) & 0xf == 0, "opcode QUERY"
    assert dns["flags"] & 0x0100, "recursion desired"
    assert dns["counts"] == (1, 0, 0, 0)
    assert dns["name"] == qname.rstrip(".")
    assert (dns["qtype"], dns["qclass"]) == (1, 1)
    assert dns["end"] == len(p["l4"]) - 8, "nothing after the question"
    assert len(frame) == max(60, 14 + p["tot_len"])


def test_short_dns_query_is_padded_with_an_ethernet_trailer():
    frame = packets.dns_query_frame(".")  # the root: the shortest query, 59 bytes
    p = parse(frame)
    assert parse_dns(p["l4"][8:])["name"] == ""
    assert 14 + p["tot_len"] < 60 and len(frame) == 60
    assert set(p["trailer"]) == {0}


def test_dns_query_size_and_type():
    frame = packets.dns_query_frame("example.com", qtype="AAAA", size=200)
    p = parse(frame)
    assert len(frame) == 200 and 14 + p["tot_len"] < 200
    assert parse_dns(p["l4"][8:])["qtype"] == 28


def test_tcp_syn_frame():
    frame = packets.tcp_syn_frame()
    assert len(frame) == 60
    p = assert_common(frame)
    assert p["proto"] == 6
    sport, dport, seq, ack, off, flags, window, _check, urg = struct.unpack("!HHIIBBHHH", p["l4"][:20])
    assert (sport, dport) == (40000, 80)
    assert flags == 0x02, "SYN only"
    assert ack == 0 and urg == 0 and window > 0 and seq
    assert (off >> 4) * 4 == 24 == len(p["l4"]), "header with the MSS option, no payload"
    assert p["l4"][20:24] == bytes([2, 4]) + (1460).to_bytes(2, "big")
    assert checksum_ok(pseudo(p) + p["l4"])
    assert set(p["trailer"]) == {0}


@pytest.mark.parametrize("builder,size,words", [
    (packets.udp_frame, 41, "too small"),
    (packets.udp_frame, 1519, "larger than"),
    (packets.dns_query_frame, 59, "too small"),
    (packets.tcp_syn_frame, 40, "too small"),
])
def test_bad_sizes_are_refused(builder, size, words):
    with pytest.raises(packets.PacketError, match=words):
        builder(size=size)


def test_addresses_outside_the_benchmark_range_are_refused():
    with pytest.raises(packets.PacketError, match="198.18.0.0/15"):
        packets.udp_frame(src_ip="192.0.2.1")
    with pytest.raises(packets.PacketError, match="not an IPv4"):
        packets.udp_frame(dst_ip="nonsense")
    with pytest.raises(packets.PacketError, match="MAC"):
        packets.udp_frame(dst_mac="02:00:00:00:00")


def test_bad_dns_names_are_refused():
    with pytest.raises(packets.PacketError, match="label"):
        packets.encode_qname("a..b")
    with pytest.raises(packets.PacketError, match="label"):
        packets.encode_qname("x" * 64 + ".com")
    with pytest.raises(packets.PacketError, match="query type"):
        packets.dns_query("example.com", qtype="BOGUS")


def test_parse_hex_accepts_separators_and_prefix():
    frame = packets.udp_frame()
    spaced = " ".join(frame.hex()[i:i + 4] for i in range(0, 120, 4))
    assert packets.parse_hex(spaced) == frame
    assert packets.parse_hex("0x" + frame.hex()) == frame
    assert packets.parse_hex(":".join("%02x" % b for b in frame)) == frame


@pytest.mark.parametrize("text,words", [
    ("udpp", "neither a known kind"),
    ("abc", "neither a known kind"),
    ("0200c6120002", "at least 14 bytes"),
    ("zz" * 20, "neither a known kind"),
])
def test_parse_hex_errors(text, words):
    with pytest.raises(packets.PacketError, match=words):
        packets.parse_hex(text)


def test_build_dispatches_and_checks_size_of_hex():
    assert packets.build("udp", 80) == ("udp", packets.udp_frame(80))
    assert packets.build("dns_query", None, "xdplab.test") == ("dns_query",
                                                               packets.dns_query_frame("xdplab.test"))
    assert packets.build("tcp")[1] == packets.tcp_syn_frame()
    frame = packets.tcp_syn_frame()
    assert packets.build(frame.hex()) == ("hex", frame)
    assert packets.build(frame.hex(), 60) == ("hex", frame)
    with pytest.raises(packets.PacketError, match="does not match"):
        packets.build(frame.hex(), 64)
    with pytest.raises(packets.PacketError, match="udp, dns_query, tcp"):
        packets.build("icmp")


def test_build_takes_a_destination_address_for_built_frames_only():
    for kind, builder in (("udp", packets.udp_frame), ("tcp", packets.tcp_syn_frame)):
        assert packets.build(kind, None, dst_ip="198.19.0.7") == (kind, builder(dst_ip="198.19.0.7"))
    kind, frame = packets.build("dns_query", 90, "xdplab.test", dst_ip="198.19.0.7")
    assert frame == packets.dns_query_frame("xdplab.test", size=90, dst_ip="198.19.0.7")
    assert frame[30:34] == bytes([198, 19, 0, 7])
    assert packets.build("udp", dst_ip=None) == ("udp", packets.udp_frame())
    with pytest.raises(packets.PacketError, match="198.18.0.0/15"):
        packets.build("udp", dst_ip="192.0.2.7")
    with pytest.raises(packets.PacketError, match="not for a hex packet"):
        packets.build(packets.udp_frame().hex(), dst_ip="198.18.0.2")


def test_international_names_are_sent_as_punycode():
    assert packets.encode_qname("b\u00fccher.example") == b"\x0dxn--bcher-kva\x07example\x00"
