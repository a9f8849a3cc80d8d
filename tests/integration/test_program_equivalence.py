"""One program, three compilers (DESIGN.md section 5).

Every built-in program is compiled from the same headers by clang -target bpf
(loaded with libbpf), by BCC, and by the host C compiler into the native
harness bpf/tools/xl_run.c. The same frames go through all three (the kernel
ones via BPF_PROG_TEST_RUN); verdicts and output bytes must be identical.
dns_nxdomain replies are checked independently (checksums recomputed here),
and the per-CPU xl_stats counters must have counted every frame.
"""
import os
import shutil
import struct
import subprocess
import tempfile

import pytest

from ansible_collections.xdplab.offload.plugins.module_utils import libbpf as L
from ansible_collections.xdplab.offload.plugins.module_utils import programs as P

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPF_DIR = os.path.join(REPO, "bpf")
INCLUDE = os.path.join(BPF_DIR, "include")
HARNESS = os.path.join(BPF_DIR, "tools", "xl_run.c")

CASES = [("drop", 1), ("loop", 1), ("loop", 10), ("loop", 100),
         ("checksum", 1), ("checksum", 10), ("checksum", 100), ("dns_nxdomain", 1)]
NATIVE_COMPILERS = [cc for cc in ("gcc", "clang") if shutil.which(cc)]
VERDICTS = {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}
COUNTER = {"XDP_DROP": 1, "XDP_TX": 2, "XDP_PASS": 3, "XDP_REDIRECT": 4}
XL_SEEN, XL_NR_COUNTERS, COUNTER_SIZE = 0, 5, 16

try:
    from bcc import BPF
    HAS_BCC = True
except ImportError:  # pragma: no cover - reported as a skip
    BPF = None
    HAS_BCC = False


# ------------------------------------------------------------- frame builder
# Written here from the RFCs, independent of the C code and of packets.py.

MAC_A = bytes.fromhex("02c612000001")
MAC_B = bytes.fromhex("02c612000002")
IP_A = bytes([198, 18, 0, 1])
IP_B = bytes([198, 18, 0, 2])


def csum16(data):
    """RFC 1071 Internet checksum (the inverted one's-complement sum)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_csum(src, dst, udp):
    """UDP checksum over pseudo-header + segment (checksum field as given; 0 -> 0xffff)."""
    pseudo = src + dst + struct.pack("!BBH", 0, 17, len(udp))
    value = csum16(pseudo + udp)
    return value or 0xFFFF


def udp_ok(src, dst, udp):
    """Receiver's check: the sum over pseudo-header and segment folds to 0xffff."""
    pseudo = src + dst + struct.pack("!BBH", 0, 17, len(udp))
    return csum16(pseudo + udp) == 0


def dns_question(name="example.test", qtype=1):
    out = b""
    for label in name.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0" + struct.pack("!HH", qtype, 1)


def ipv4(payload, proto=17, src=IP_A, dst=IP_B, options=b"", frag=0x4000, ttl=64, ihl=None, tot_len=None):
    ihl = ihl if ihl is not None else 5 + len(options) // 4
    length = tot_len if tot_len is not None else 20 + len(options) + len(payload)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, length, 0x1234, frag, ttl, proto, 0, src, dst) + options
    hdr = hdr[:10] + struct.pack("!H", csum16(hdr)) + hdr[12:]
    return hdr + payload


def udp(sport, dport, payload, src=IP_A, dst=IP_B, with_csum=True, length=None):
    seg = struct.pack("!HHHH", sport, dport, length if length is not None else 8 + len(payload), 0) + payload
    if with_csum:
        seg = seg[:6] + struct.pack("!H", udp_csum(src, dst, seg)) + seg[8:]
    return seg


def eth(payload, ethertype=0x0800, dst=MAC_B, src=MAC_A):
    return dst + src + struct.pack("!H", ethertype) + payload


def dns_frame(flags=0x0100, with_csum=True, options=b"", pad_to=0, extra=b"", udp_len=None, frag=0x4000,
              sport=40000, dport=53):
    msg = struct.pack("!HHHHHH", 0xBEEF, flags, 1, 0, 0, 0) + dns_question() + extra
    frame = eth(ipv4(udp(sport, dport, msg, with_csum=with_csum, length=udp_len), options=options, frag=frag))
    return frame + b"\0" * max(0, pad_to - len(frame))


def wrapping_query():
    """A query whose NXDOMAIN reply has a computed UDP checksum of 0 (sent as 0xffff)."""
    for filler in range(0x10000):
        extra = struct.pack("!H", filler)
        reply_msg = struct.pack("!HHHHHH", 0xBEEF, 0x8103, 1, 0, 0, 0) + dns_question() + extra
        seg = struct.pack("!HHHH", 53, 40000, 8 + len(reply_msg), 0) + reply_msg
        pseudo = IP_B + IP_A + struct.pack("!BBH", 0, 17, len(seg))
        if csum16(pseudo + seg) == 0:
            return dns_frame(extra=extra)
    raise AssertionError("no filler makes the reply checksum wrap")


def tcp_frame(dport=53):
    seg = struct.pack("!HHIIBBHHH", 40000, dport, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
    return eth(ipv4(seg, proto=6))


ARP = eth(struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, MAC_A, IP_A, b"\0" * 6, IP_B), ethertype=0x0806)
NOP4 = b"\x01\x01\x01\x00"  # three NOPs + end of options list

# name -> (frame, dns_nxdomain verdict)
FRAMES = {
    "dns_query": (dns_frame(), "XDP_TX"),
    "dns_query_no_udp_csum": (dns_frame(with_csum=False), "XDP_TX"),
    "dns_query_padded_60": (dns_frame(pad_to=60), "XDP_TX"),
    "dns_query_rcode_bits_set": (dns_frame(flags=0x0105), "XDP_TX"),
    "dns_query_ip_options_ihl6": (dns_frame(options=NOP4), "XDP_TX"),
    "dns_query_ip_options_ihl15": (dns_frame(options=NOP4 * 10), "XDP_TX"),
    "dns_query_reply_csum_wraps": (wrapping_query(), "XDP_TX"),
    "dns_query_big_frame": (dns_frame(extra=b"\xab" * 1400), "XDP_TX"),
    "dns_response": (dns_frame(flags=0x8183), "XDP_PASS"),
    "dns_from_port_53": (dns_frame(sport=53, dport=40000), "XDP_PASS"),
    "dns_query_fragment_mf": (dns_frame(frag=0x2000), "XDP_PASS"),
    "dns_query_fragment_offset": (dns_frame(frag=0x0010), "XDP_PASS"),
    "dns_query_udp_len_too_short": (dns_frame(udp_len=8 + 4), "XDP_PASS"),
    "dns_query_vlan_tagged": (MAC_B + MAC_A + b"\x81\x00\x00\x05" + dns_frame()[12:], "XDP_PASS"),
    "udp_not_dns": (eth(ipv4(udp(40000, 9, b"x" * 18))), "XDP_PASS"),
    "tcp_to_53": (tcp_frame(), "XDP_PASS"),
    "arp": (ARP, "XDP_PASS"),
    "ipv6_ethertype": (eth(b"\x60" + b"\0" * 53, ethertype=0x86DD), "XDP_PASS"),
    "ipv4_version_6": (eth(b"\x65" + ipv4(b"\0" * 30)[1:]), "XDP_PASS"),
    "ipv4_ihl_4": (eth(ipv4(udp(40000, 53, b"\0" * 12), ihl=4)), "XDP_PASS"),
    "ipv4_options_past_frame": (eth(ipv4(b"", ihl=15)[:20] + b"\0" * 8), "XDP_PASS"),
    "truncated_dns_header": (dns_frame()[:14 + 20 + 8 + 6], "XDP_PASS"),
    "truncated_dns_id_only": (dns_frame()[:14 + 20 + 8 + 2], "XDP_PASS"),
    "truncated_udp_header": (dns_frame()[:14 + 20 + 4], "XDP_PASS"),
    "truncated_ipv4_header": (dns_frame()[:14 + 12], "XDP_PASS"),
    "ethernet_only_14": (dns_frame()[:14], "XDP_PASS"),
    "frame_15_bytes": (dns_frame()[:15], "XDP_PASS"),
}
# Shorter than an Ethernet header: BPF_PROG_TEST_RUN refuses them (EINVAL),
# the native harness must still run them safely.
SHORT_FRAMES = {"empty": b"", "one_byte": b"\x02", "thirteen_bytes": dns_frame()[:13]}


def expected_verdict(prog, name):
    if prog == "dns_nxdomain":
        return FRAMES[name][1]
    return "XDP_DROP"  # drop, loop and checksum drop every frame


# ------------------------------------------------------------ the compilers

@pytest.fixture(scope="module")
def workdir():
    path = tempfile.mkdtemp(prefix="xl-equiv-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def native_builds(workdir):
    """xl_run per (compiler, N): N is a compile-time constant, as in the kernel."""
    built = {}

    def get(cc, n):
        if (cc, n) not in built:
            out = os.path.join(workdir, "xl_run-%s-N%d" % (cc, n))
            proc = subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-Werror", "-I", INCLUDE, "-DN=%d" % n,
                                   HARNESS, "-o", out], capture_output=True, text=True, check=False)
            assert proc.returncode == 0, proc.stderr
            built[(cc, n)] = out
        return built[(cc, n)]
    return get


def run_native(binary, prog, frames):
    """[(verdict, bytes)] for frames through the native harness ("-" = empty frame)."""
    stdin = "".join("%s\n" % (f.hex() if f else "-") for f in frames)
    proc = subprocess.run([binary, prog], input=stdin, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    out = []
    for line in proc.stdout.splitlines():
        verdict, data = line.split(" ", 1)
        out.append((verdict, b"" if data == "-" else bytes.fromhex(data)))
    assert len(out) == len(frames)
    return out


class Kernel:
    """One program loaded by one kernel-side compiler."""

    def __init__(self, prog_fd, stats_fd, closer):
        self.prog_fd, self.stats_fd, self._closer = prog_fd, stats_fd, closer

    def run(self, frame):
        res = L.test_run(self.prog_fd, frame)
        return VERDICTS.get(res.retval, "retval %d" % res.retval), res.data_out

    def counters(self):
        """{key: (packets, bytes)} summed over CPUs."""
        out = {}
        for key in range(XL_NR_COUNTERS):
            pkts = nbytes = 0
            for raw in L.map_lookup_percpu(self.stats_fd, key, COUNTER_SIZE):
                p, b = struct.unpack("=QQ", raw)
                pkts += p
                nbytes += b
            out[key] = (pkts, nbytes)
        return out

    def close(self):
        self._closer()


def load_clang(prog, n, build_dir):
    source = P.resolve_program(prog, BPF_DIR)
    obj = P.build_object(source.source_path, {"N": n}, [INCLUDE], build_dir)
    loaded = L.load_object(obj, prog_name=source.function)
    assert loaded.prog_name == source.function
    return Kernel(loaded.prog_fd, loaded.map_fds["xl_stats"], loaded.close)


def load_bcc(prog, n):
    source = P.resolve_program(prog, BPF_DIR)
    text, cflags = P.bcc_source(source.source_path, {"N": n}, [INCLUDE])
    bpf = BPF(text=text.encode(), cflags=cflags)
    try:
        fn = bpf.load_func(source.function.encode(), BPF.XDP)
    except Exception:
        bpf.cleanup()
        raise
    return Kernel(fn.fd, bpf["xl_stats"].map_fd, bpf.cleanup)


@pytest.fixture(scope="module")
def kernels(workdir):
    cache = {}

    def get(loader, prog, n):
        key = (loader, prog, n)
        if key not in cache:
            if loader == "bcc":
                if not HAS_BCC:
                    pytest.skip("BCC (python3-bpfcc) is not importable from this interpreter")
                cache[key] = load_bcc(prog, n)
            else:
                cache[key] = load_clang(prog, n, os.path.join(workdir, "objects"))
        return cache[key]
    yield get
    for kern in cache.values():
        kern.close()


def case_id(case):
    return "%s-N%d" % case


# --------------------------------------------------------------------- tests

@pytest.mark.bcc
@pytest.mark.parametrize("prog,n", CASES, ids=[case_id(c) for c in CASES])
def test_clang_bcc_and_native_give_same_verdict_and_bytes(prog, n, kernels, native_builds):
    names = sorted(FRAMES)
    frames = [FRAMES[name][0] for name in names]
    results = {}
    for loader in ("clang", "bcc"):
        kern = kernels(loader, prog, n)
        results[loader] = [kern.run(f) for f in frames]
    for cc in NATIVE_COMPILERS:
        results["native-" + cc] = run_native(native_builds(cc, n), prog, frames)
    assert NATIVE_COMPILERS, "no host C compiler (gcc or clang) for the native harness"

    for i, name in enumerate(names):
        want = expected_verdict(prog, name)
        reference = results["clang"][i]
        assert reference[0] == want, "%s: clang object said %s, expected %s" % (name, reference[0], want)
        for compiler, res in results.items():
            assert res[i][0] == reference[0], "%s: %s says %s, clang object %s" % (
                name, compiler, res[i][0], reference[0])
            assert res[i][1] == reference[1], "%s: %s output differs from the clang object's:\n%s\n%s" % (
                name, compiler, res[i][1].hex(), reference[1].hex())
        if want != "XDP_TX":
            assert reference[1] == frames[i], "%s: %s must not modify the frame" % (name, prog)


@pytest.mark.bcc
@pytest.mark.parametrize("loader", ["clang", "bcc"])
@pytest.mark.parametrize("prog,n", [("drop", 1), ("loop", 10), ("checksum", 10), ("dns_nxdomain", 1)],
                         ids=["drop", "loop-N10", "checksum-N10", "dns_nxdomain"])
def test_xl_stats_count_seen_and_verdicts(prog, n, loader, kernels):
    kern = kernels(loader, prog, n)
    before = kern.counters()
    want = dict((key, [0, 0]) for key in range(XL_NR_COUNTERS))
    for name in sorted(FRAMES):
        frame = FRAMES[name][0]
        verdict, _output = kern.run(frame)
        for key in (XL_SEEN, COUNTER[verdict]):
            want[key][0] += 1
            want[key][1] += len(frame)
    after = kern.counters()
    delta = dict((key, (after[key][0] - before[key][0], after[key][1] - before[key][1])) for key in after)
    assert delta == dict((key, tuple(v)) for key, v in want.items())
    assert delta[XL_SEEN][0] == len(FRAMES)


@pytest.mark.parametrize("prog", P.BUILTIN_PROGRAMS)
def test_frames_shorter_than_ethernet_are_safe_natively(prog, native_builds):
    """BPF_PROG_TEST_RUN refuses < 14 bytes; the shared logic must still bounds-check them."""
    names = sorted(SHORT_FRAMES)
    frames = [SHORT_FRAMES[name] for name in names]
    want = "XDP_PASS" if prog == "dns_nxdomain" else "XDP_DROP"
    for cc in NATIVE_COMPILERS:
        for name, (verdict, data) in zip(names, run_native(native_builds(cc, 1), prog, frames)):
            assert (verdict, data) == (want, SHORT_FRAMES[name]), "%s with %s" % (name, cc)


@pytest.mark.skipif(not shutil.which("gcc"), reason="gcc not installed")
@pytest.mark.parametrize("prog", P.BUILTIN_PROGRAMS)
def test_logic_reads_nothing_outside_the_frame_under_asan_ubsan(prog, workdir):
    """The shared logic built with AddressSanitizer + UBSan, run on every test frame.

    The harness gives each frame a heap buffer exactly as long as the frame,
    so any read or write past data_end (a missing bounds check) aborts it.
    """
    out = os.path.join(workdir, "xl_run-asan-%s" % prog)
    if not os.path.exists(out):
        proc = subprocess.run(["gcc", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                               "-I", INCLUDE, "-DN=3", HARNESS, "-o", out], capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0 and "sanitizer" in proc.stderr:
            pytest.skip("gcc sanitizer runtime not installed: %s" % proc.stderr.strip()[:200])
        assert proc.returncode == 0, proc.stderr
    frames = [FRAMES[name][0] for name in sorted(FRAMES)] + [SHORT_FRAMES[name] for name in sorted(SHORT_FRAMES)]
    results = run_native(out, prog, frames)
    assert len(results) == len(frames)


CSUM_PROBE = r"""
#include <stdio.h>
#include <string.h>
#include "xdplab/checksum.h"

/* argv[1]: an IPv4 header as hex; prints the checksum's bytes as stored */
int main(int argc, char **argv)
{
    xl_u64 words[XL_IPV4_MAX_WORDS] = {0};
    unsigned char hdr[60];
    size_t len = strlen(argv[1]) / 2, k;
    xl_u32 w;
    xl_u16 c;

    for (k = 0; k < len && argc > 1; k++)
        sscanf(argv[1] + 2 * k, "%2hhx", &hdr[k]);
    for (k = 0; k < len / 4; k++) {
        memcpy(&w, hdr + 4 * k, 4);
        words[k] = w;
    }
    c = xl_ipv4_csum_words(words);
    printf("%02x%02x\n", ((unsigned char *)&c)[0], ((unsigned char *)&c)[1]);
    return 0;
}
"""


def test_checksum_work_is_a_real_rfc1071_ipv4_header_checksum(workdir):
    """The checksum program's per-iteration work, natively, against Python's RFC 1071."""
    src = os.path.join(workdir, "csum_probe.c")
    exe = os.path.join(workdir, "csum_probe")
    with open(src, "w") as handle:
        handle.write(CSUM_PROBE)
    subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-I", INCLUDE, src, "-o", exe], check=True)
    for options in (b"", NOP4, NOP4 * 10):
        hdr = ipv4(b"", options=options)
        zeroed = hdr[:10] + b"\0\0" + hdr[12:]
        out = subprocess.run([exe, zeroed.hex()], capture_output=True, text=True, check=True).stdout.strip()
        assert out == struct.pack("!H", csum16(zeroed)).hex() == hdr[10:12].hex()
        out = subprocess.run([exe, hdr.hex()], capture_output=True, text=True, check=True).stdout.strip()
        assert out == "0000"  # a valid header sums to zero


def test_test_run_refuses_frames_shorter_than_ethernet(kernels):
    kern = kernels("clang", "drop", 1)
    with pytest.raises(L.BpfError):
        kern.run(SHORT_FRAMES["thirteen_bytes"])


def check_nxdomain_reply(query, reply):
    """Independent check of one reply against its query."""
    assert len(reply) == len(query)
    # Ethernet: addresses swapped, type unchanged
    assert reply[0:6] == query[6:12] and reply[6:12] == query[0:6] and reply[12:14] == query[12:14]
    ihl = (query[14] & 0x0F) * 4
    qip, rip = query[14:14 + ihl], reply[14:14 + ihl]
    # IPv4: addresses swapped, everything else (TTL, id, options, checksum) unchanged, checksum valid
    assert rip[12:16] == qip[16:20] and rip[16:20] == qip[12:16]
    assert rip[:12] == qip[:12] and rip[20:] == qip[20:]
    assert csum16(rip) == 0, "IPv4 header checksum of the reply is invalid"
    ulen = struct.unpack("!H", query[14 + ihl + 4:14 + ihl + 6])[0]
    qudp, rudp = query[14 + ihl:14 + ihl + ulen], reply[14 + ihl:14 + ihl + ulen]
    # UDP: ports swapped, length unchanged
    assert rudp[0:2] == qudp[2:4] and rudp[2:4] == qudp[0:2] and rudp[4:6] == qudp[4:6]
    # DNS: id kept, QR=1, RCODE=3 (NXDOMAIN), other flag bits kept, the rest untouched
    qflags = struct.unpack("!H", qudp[10:12])[0]
    rflags = struct.unpack("!H", rudp[10:12])[0]
    assert rudp[8:10] == qudp[8:10]
    assert rflags == (qflags & ~0x000F) | 0x8000 | 3
    assert rudp[12:] == qudp[12:]
    # checksums: none stays none; else valid and equal to a from-scratch computation
    rcsum = struct.unpack("!H", rudp[6:8])[0]
    if struct.unpack("!H", qudp[6:8])[0] == 0:
        assert rcsum == 0, "a UDP checksum of 0 (none) must stay 0"
    else:
        src, dst = rip[12:16], rip[16:20]
        assert udp_ok(src, dst, rudp), "UDP checksum of the reply is invalid"
        assert rcsum == udp_csum(src, dst, rudp[:6] + b"\0\0" + rudp[8:])
    # Ethernet trailer (padding) untouched
    assert reply[14 + ihl + ulen:] == query[14 + ihl + ulen:]


@pytest.mark.parametrize("name", sorted(n for n, (_frame, v) in FRAMES.items() if v == "XDP_TX"))
def test_dns_nxdomain_reply_is_a_valid_nxdomain_answer(name, kernels):
    query = FRAMES[name][0]
    verdict, reply = kernels("clang", "dns_nxdomain", 1).run(query)
    assert verdict == "XDP_TX"
    check_nxdomain_reply(query, reply)


def test_the_test_frames_are_what_they_claim():
    """Guard the fixtures: queries have valid checksums, the wrap case really wraps."""
    for name, (frame, verdict) in FRAMES.items():
        if verdict == "XDP_TX":
            ihl = (frame[14] & 0x0F) * 4
            assert csum16(frame[14:14 + ihl]) == 0, name
            ulen = struct.unpack("!H", frame[14 + ihl + 4:14 + ihl + 6])[0]
            seg = frame[14 + ihl:14 + ihl + ulen]
            if seg[6:8] != b"\0\0":
                assert udp_ok(frame[26:30], frame[30:34], seg), name
    frame = FRAMES["dns_query_reply_csum_wraps"][0]
    seg = bytearray(frame[34:])
    seg[0:4] = seg[2:4] + seg[0:2]
    seg[10:12] = struct.pack("!H", 0x8103)
    seg[6:8] = b"\0\0"
    pseudo = IP_B + IP_A + struct.pack("!BBH", 0, 17, len(seg))
    assert csum16(pseudo + bytes(seg)) == 0  # computed checksum 0 -> sent as 0xffff


@pytest.mark.slow
@pytest.mark.parametrize("n", [1, 10, 100, 1000, 10000])
@pytest.mark.parametrize("prog", ["loop", "checksum"])
def test_verifier_accepts_clang_builds_up_to_n_10000(prog, n, workdir):
    source = P.resolve_program(prog, BPF_DIR)
    obj = P.build_object(source.source_path, {"N": n}, [INCLUDE], os.path.join(workdir, "objects"))
    with L.load_object(obj, prog_name=source.function) as loaded:
        info = L.prog_info(loaded.prog_fd)
        verdict = L.test_run(loaded.prog_fd, FRAMES["dns_query"][0]).retval
    assert verdict == 1
    # the loop was not folded away: the verifier walked at least N iterations
    assert info["verified_insns"] >= n


@pytest.mark.bcc
@pytest.mark.slow
@pytest.mark.parametrize("prog", ["loop", "checksum"])
def test_verifier_accepts_bcc_builds_with_n_10000(prog):
    if not HAS_BCC:
        pytest.skip("BCC (python3-bpfcc) is not importable from this interpreter")
    kern = load_bcc(prog, 10000)
    try:
        assert L.test_run(kern.prog_fd, FRAMES["dns_query"][0]).retval == 1
        assert L.prog_info(kern.prog_fd)["verified_insns"] >= 10000
    finally:
        kern.close()


@pytest.mark.benchmark
@pytest.mark.parametrize("prog", ["loop", "checksum"])
def test_benchmark_test_run_ns_per_packet_vs_n(prog, workdir, capsys):
    """Prints BPF_PROG_TEST_RUN ns/packet for N = 1..10000 (clang objects); asserts only that it ran."""
    source = P.resolve_program(prog, BPF_DIR)
    frame = FRAMES["dns_query_padded_60"][0]
    rows = []
    for n in (1, 10, 100, 1000, 10000):
        obj = P.build_object(source.source_path, {"N": n}, [INCLUDE], os.path.join(workdir, "objects"))
        with L.load_object(obj, prog_name=source.function) as loaded:
            repeat = max(1000, 2000000 // n)
            res = L.test_run(loaded.prog_fd, frame, repeat=repeat)
        rows.append((n, repeat, res.duration_ns))
    with capsys.disabled():
        print("\n%s: BPF_PROG_TEST_RUN, 60-byte DNS query frame" % prog)
        for n, repeat, ns in rows:
            print("  N=%-6d repeat=%-8d %8d ns/packet" % (n, repeat, ns))
    assert all(row[2] >= 0 for row in rows) and len(rows) == 5


TARGET_IP = bytes([198, 18, 2, 10])
OTHER_IP = bytes([198, 18, 2, 11])


def load_targeted(loader, prog, build_dir):
    """``prog`` built with -DXL_TARGET_IP=198.18.2.10 (as an integer, host order)."""
    source = P.resolve_program(prog, BPF_DIR)
    defines = {"N": 10, "XL_TARGET_IP": struct.unpack("!I", TARGET_IP)[0]}
    if loader == "bcc":
        if not HAS_BCC:
            pytest.skip("BCC (python3-bpfcc) is not importable from this interpreter")
        text, cflags = P.bcc_source(source.source_path, defines, [INCLUDE])
        bpf = BPF(text=text.encode(), cflags=cflags)
        fn = bpf.load_func(source.function.encode(), BPF.XDP)
        return Kernel(fn.fd, bpf["xl_stats"].map_fd, bpf.cleanup)
    obj = P.build_object(source.source_path, defines, [INCLUDE], build_dir)
    loaded = L.load_object(obj, prog_name=source.function)
    return Kernel(loaded.prog_fd, loaded.map_fds["xl_stats"], loaded.close)


@pytest.mark.bcc
@pytest.mark.parametrize("loader", ["clang", "bcc"])
@pytest.mark.parametrize("prog", ["drop", "checksum"])
def test_target_ip_filter_passes_other_frames_uncounted(prog, loader, workdir):
    """XL_TARGET_IP: the program acts on IPv4 frames to the target only; the rest pass, not counted."""
    to_target = eth(ipv4(udp(4000, 9, b"x" * 18, dst=TARGET_IP), dst=TARGET_IP))
    to_other = eth(ipv4(udp(4000, 9, b"x" * 18, dst=OTHER_IP), dst=OTHER_IP))
    arp = eth(bytes(28), ethertype=0x0806, dst=b"\xff" * 6)
    short = eth(b"\x45\x00")
    kern = load_targeted(loader, prog, os.path.join(workdir, "targeted"))
    try:
        before = kern.counters()
        assert kern.run(to_target) == ("XDP_DROP", to_target)
        for frame in (to_other, arp, short):
            assert kern.run(frame) == ("XDP_PASS", frame)
        after = kern.counters()
    finally:
        kern.close()
    seen = (after[XL_SEEN][0] - before[XL_SEEN][0], after[XL_SEEN][1] - before[XL_SEEN][1])
    dropped = after[COUNTER["XDP_DROP"]][0] - before[COUNTER["XDP_DROP"]][0]
    passed = after[COUNTER["XDP_PASS"]][0] - before[COUNTER["XDP_PASS"]][0]
    assert seen == (1, len(to_target)) and dropped == 1 and passed == 0
