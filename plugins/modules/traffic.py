#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: traffic
short_description: Send test traffic with the lab's load generator, or measure DNS round-trip latency
version_added: 0.1.0
description:
  - Runs a load generator for O(duration) seconds at O(rate) packets per second (0 = as fast as it
    can) with frames of O(size) bytes, and returns how many frames it sent, over what time, at what
    achieved rate.
  - "O(generator=xl_loadgen) (the emulated lab): C(xl-loadgen) from C(bpf/loadgen/), which injects
    frames into a kernel interface (one end of a veth pair) with C(BPF_PROG_TEST_RUN) and
    C(BPF_F_TEST_XDP_LIVE_FRAMES): a small XDP program rewrites each recycled frame and redirects it
    into O(interface). Several Mpps from one core. Paced runs (O(rate) > 0) busy-wait on their CPU
    between bursts, so give the generator a CPU of its own (O(cpu))."
  - "O(generator=moongen) (physical testbeds only): MoonGen runs C(bpf/loadgen/moongen/xl-udp-load.lua)
    on DPDK port O(interface) with hardware rate control. Needs MoonGen installed and the NIC bound
    to DPDK; not usable on the emulated lab."
  - The frames are UDP (or DNS A queries with O(frame=dns_query)) from O(src_mac)/O(src_ip) to
    O(dst_mac)/O(dst_ip); defaults are from 198.18.0.0/15.
  - "O(mode=latency): the DNS latency client C(xl-latency) from C(bpf/latency/) sends real DNS A queries
    at O(rate) queries per second for O(duration) seconds from an B(AF_XDP socket) (copy mode, libxdp's
    xsk API) on O(interface), and receives the replies on the same socket. Each query carries a DNS id
    and IPv4 identification that name it (a 32-bit sequence number), so replies are matched exactly.
    The send time is taken right before the C(sendto) that hands the query to the kernel, the receive
    time by the client's XDP program when the reply reaches O(interface) (kernel time in the XDP
    metadata), both CLOCK_MONOTONIC."
  - "Every reply is validated - QR=1, opcode QUERY, RCODE=NXDOMAIN, the query's MACs, IPv4 addresses and
    UDP ports swapped, valid IPv4 header and UDP checksums, the question echoed. An invalid reply counts
    as lost (RV(loss)) and in RV(invalid), with the reason in RV(invalid_reasons); it is never an RTT
    sample. Returns RTT percentiles, mean, min and max in microseconds, a log-spaced histogram and a
    reservoir sample of the RTTs."
  - The latency client attaches its own XDP program to O(interface) for the time of the run (through a
    BPF link, so it goes away with the process); the interface must have no other XDP program. On a veth
    pair that program is also what makes the peer deliver XDP_TX replies at all.
  - Sending traffic is a change, so a run always reports C(changed=true). In check mode nothing is
    sent; the module validates the request and returns the command and what it would send.
  - "Safety guard, in every mode and also in check mode: O(dst_ip) and O(src_ip) must lie in 198.18.0.0/15,
    loopback or O(allowed_destinations); O(interface) and O(netns) must be plain names; and with a kernel
    interface (C(xl_loadgen), O(mode=latency)) the module refuses an interface of the target namespace that
    carries a default route (IPv4 or IPv6, any routing table), holds the address Ansible connects through
    (the server address of C(SSH_CONNECTION), from the module's environment or, under C(become), its nearest
    ancestor process) or, in the module's own namespace, carries the route back to the SSH client - and the ports of such a bridge or bond
    and the lower device of such a VLAN. The latency client redirects every IPv4 frame of its queue to its
    socket, so on such an interface it would cut the machine's own connections. The refusal names the
    interface and the reason."
  - A run is bounded by O(max_duration) (default 3600 s) and, when paced or measuring latency, by
    O(max_packets) frames.
  - "Traffic distribution: O(flows) spreads the frames over that many UDP source ports (O(src_port) up).
    A veth puts a redirected frame on the RX queue (sending CPU mod RX queues), whatever its flow; so when
    the peer of O(interface) is a veth end with several RX queues (M(xdplab.offload.lab_wire) option C(queues)),
    C(xl_loadgen) emulates RSS - flow f goes to RX queue f mod queues: frames whose queue the sending CPU
    selects itself are redirected directly, the others through a cpumap to a CPU that selects their queue
    (its C(cpumap/<cpu>/map) kernel thread passes them on, and that costs CPU time there). RV(steered_queues)
    says which queues were fed from which CPU; queues no allowed CPU selects are left out."
  - "Live progress (C(xl_loadgen)): about once a second the generator appends one JSON line
    C({\"elapsed_s\": 3.0, \"duration_s\": 10.0, \"sent\": 24000000, \"pps\": 8000000.0}) to O(progress_file) -
    seconds since its first frame, the requested duration, frames sent so far, and the rate over the last
    interval. The file is removed when the traffic ends. The collection's C(xdplab.offload.lab) callback tails
    these files on the controller and prints a live rate line during long windows."
  - "RV(interface_stats): the counters of O(interface) over the run (a reading before and after, as
    M(xdplab.offload.link_stats) returns them, subtracted), so that a playbook needs no separate calls around it."
author:
  - xdplab.offload developers (!UNKNOWN)
extends_documentation_fragment:
  - xdplab.offload.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  generator:
    description: Which load generator to run.
    type: str
    choices: [xl_loadgen, moongen]
    default: xl_loadgen
  mode:
    description:
      - What to measure. C(throughput) sends at O(rate) and reports sent frames and the achieved rate.
      - C(latency) sends DNS queries at O(rate) (above 0) with the AF_XDP latency client and reports
        round-trip times and loss. Needs O(generator=xl_loadgen) (the emulated lab's tools) and one
        sending thread.
    type: str
    choices: [throughput, latency]
    default: throughput
  interface:
    description:
      - With C(xl_loadgen), the kernel interface to send on (the generator's end of the veth pair,
        e.g. C(xl-lg0)); it must exist and be up.
      - With C(moongen), the DPDK port number (C(0), C(1), ...).
    type: str
    required: true
  netns:
    description:
      - Network namespace (as listed by C(ip netns)) that holds O(interface); C(xl_loadgen) enters it
        itself (C(setns)). Omit for the namespace the module runs in. Not used with C(moongen).
    type: str
  rate:
    description:
      - Offered rate in packets per second over all threads. C(0) sends as fast as the generator can
        (line rate).
      - With O(mode=latency), queries per second, above 0. The AF_XDP client keeps up to about 0.5 Mpps
        on the emulated lab when it has a CPU of its own.
    type: float
    default: 0
  size:
    description:
      - Frame length in bytes without FCS, 60 to 1518 (60 is a 64-byte frame on the wire).
      - Default 60 for UDP, the query's own length for O(frame=dns_query) and O(mode=latency)
        (76 bytes with the default O(qname)); a larger size pads the query with an Ethernet trailer.
    type: int
  duration:
    description: Seconds to send, more than 0 and at most O(max_duration).
    type: float
    default: 10
  max_duration:
    description:
      - The longest O(duration) the module accepts, a bound against a typo that would keep the generator
        sending for hours. Raise it explicitly for longer runs, up to 86400 (a day).
    type: float
    default: 3600
  max_packets:
    description:
      - The most frames one paced run (O(rate) x O(duration)) or latency run may plan; raise it explicitly
        for more, up to 10^12. A line-rate run (O(rate=0)) is bounded by O(max_duration) only.
    type: int
    default: 1000000000
  allowed_destinations:
    description:
      - Networks (CIDR, like C(192.0.2.0/24)) that O(dst_ip) and O(src_ip) (where a responder's replies go)
        may lie in besides 198.18.0.0/15 (RFC 2544's benchmarking range) and loopback, which are always
        allowed. Everything else is refused, also in check mode.
      - The experiment role passes the inventory variable C(traffic_allowed_destinations); list a physical
        testbed's own networks there, never a campus or management network.
    type: list
    elements: str
    default: []
  threads:
    description:
      - Sending threads (C(xl_loadgen)) or TX queues with one task each (C(moongen)).
      - Must be 1 with O(mode=latency).
    type: int
    default: 1
  flows:
    description:
      - Number of flows - UDP source ports O(src_port), O(src_port)+1, ... - the frames are spread over, in turn.
        V(1) sends one flow (every frame the same).
      - On a veth whose peer has several RX queues, flow f goes to RX queue f mod queues (see the description).
      - C(xl_loadgen) only.
    type: int
    default: 1
  nice:
    description:
      - C(xl_loadgen) - scheduling priority (nice, -20 to 19) of all the generator's threads; default inherited (an
        C(ansible-playbook) run under C(nice -n 10) passes 10 on, and a nice-10 generator gets about a tenth of a CPU
        that anything at nice 0 also wants).
      - A generator at V(-20) keeps its CPU against the orchestration and other work on a small machine, as one of its
        own would; paced runs busy-wait, so pin it (O(cpu)).
    type: int
  warmup:
    description:
      - C(xl_loadgen) - seconds from the first frame until its measuring window opens (RV(window)); the window
        closes when the run is stopped. Default a quarter of O(duration), at most 0.5 s.
    type: float
  progress_file:
    description:
      - Where C(xl_loadgen) writes its live progress lines (see the description), a file directly in
        C(/run/xdplab/progress/) (made if missing). Default C(/run/xdplab/progress/traffic-<interface>.jsonl).
        V('') writes none. Not used with O(mode=latency) or C(moongen).
    type: str
  cpu:
    description:
      - CPUs to pin the sending threads to, thread i on the i-th entry (a list, one number, or
        C("0,1")). Omit to leave them to the scheduler.
      - C(xl_loadgen) only; MoonGen takes its cores from its own C(dpdk-conf.lua).
      - With O(mode=latency), one CPU for the client, which busy-polls it.
    type: list
    elements: int
  frame:
    description:
      - C(udp) frames, or C(dns_query) (DNS A queries to port 53, for responders).
      - Default C(udp); O(mode=latency) always sends C(dns_query).
    type: str
    choices: [udp, dns_query]
  qname:
    description: Name to query with O(frame=dns_query).
    type: str
    default: xl-query.example
  src_mac:
    description:
      - Source MAC. Default C(02:00:c6:12:00:01) (C(xl_loadgen)) or the port's own MAC (C(moongen)).
      - With O(mode=latency) the default is O(interface)'s own MAC.
    type: str
  dst_mac:
    description: Destination MAC, normally the device under test's. Default C(02:00:c6:12:00:02).
    type: str
  src_ip:
    description:
      - Source IPv4 address. Default C(198.18.0.1).
      - A responder replies to it, so it must lie in 198.18.0.0/15, loopback or O(allowed_destinations).
    type: str
  dst_ip:
    description:
      - Destination IPv4 address. Default C(198.18.0.2).
      - Must lie in 198.18.0.0/15, loopback or O(allowed_destinations).
    type: str
  src_port:
    description: UDP source port. Default C(9), or C(40000) with O(frame=dns_query) and O(mode=latency).
    type: int
  dst_port:
    description: UDP destination port. Default C(9), or C(53) with O(frame=dns_query) and O(mode=latency).
    type: int
  binary:
    description:
      - The generator executable.
      - Default C(/opt/xdplab/bpf/loadgen/build/xl-loadgen) (what the C(xdplab.offload.lab_host) role
        builds with C(make -C bpf)) for C(xl_loadgen), C(/opt/MoonGen/build/MoonGen) for C(moongen).
      - With O(mode=latency), the latency client; default C(/opt/xdplab/bpf/latency/build/xl-latency).
    type: path
  script:
    description: The MoonGen script (C(moongen) only).
    type: path
    default: /opt/xdplab/bpf/loadgen/moongen/xl-udp-load.lua
  timeout:
    description:
      - Seconds the generator may run beyond O(duration) before it is interrupted (SIGINT, then
        SIGKILL 10 s later); an interrupted C(xl_loadgen) still reports its counts.
    type: float
    default: 30
  reply_timeout:
    description:
      - O(mode=latency) only. Seconds to wait for replies after the last query (the run ends earlier
        when every query is answered); a later reply is lost.
    type: float
    default: 0.5
  samples:
    description: O(mode=latency) only. Size of the reservoir sample of RTTs returned in RV(rtt_us_samples) (0 = none).
    type: int
    default: 10000
  histogram:
    description: O(mode=latency) only. Return RV(rtt_us_hist), a log-spaced histogram of all RTTs.
    type: bool
    default: true
  xdp_mode:
    description:
      - O(mode=latency) only. How the client's XDP program is attached to O(interface) - C(driver) (native;
        needed on veth to receive a peer's XDP_TX replies) or C(generic).
    type: str
    choices: [driver, generic]
    default: driver
  queue:
    description: O(mode=latency) only. RX queue of the client's AF_XDP socket; replies must arrive on it.
    type: int
    default: 0
requirements:
  - root (BPF and network namespaces) for C(xl_loadgen)
  - clang, bpftool, libbpf to build C(xl-loadgen) (C(make -C bpf/loadgen))
  - clang, libbpf and libxdp to build C(xl-latency) (C(make -C bpf/latency))
  - MoonGen and a DPDK-bound NIC for C(moongen)
notes:
  - The generator counts the frames it handed to the interface (C(packets_sent)). Frames that do
    not fit into the receiving veth's ring are dropped there and counted by the kernel as the
    receiver's C(rx_dropped) (and the sender's C(tx_dropped)), so on a veth pair
    C(packets_sent) = receiver C(rx_packets) + receiver C(rx_dropped) when one thread sends.
  - "Latency on the emulated lab: pin the client (O(cpu)); it busy-polls. With the DUT end's threaded NAPI
    off (O(xdplab.offload.lab_wire#module:threaded_napi=false)) a round trip runs inside the client's C(sendto) on its CPU and
    the numbers are stable (p50 about 2 us, p99 about 3 us for native XDP at 100k queries/s, also on a busy
    machine); with threaded NAPI every query wakes the DUT's NAPI thread on the other CPU, and on a shared
    machine RTTs reach milliseconds and the DUT's ring overflows. An AF_XDP responder is scheduled for
    every query, so it has millisecond tails on a shared CPU. See C(bpf/latency/README.md)."
  - TX checksum offload plays no part for the latency client - it writes full checksums and AF_XDP copy
    mode hands them on unchanged.
seealso:
  - module: xdplab.offload.link_stats
  - module: xdplab.offload.xdp_stats
'''

EXAMPLES = r'''
- name: Full speed into the device under test for 10 s
  xdplab.offload.traffic:
    interface: xl-lg0
    netns: xl-lg
    duration: 10
    cpu: 0
  register: load

- name: 1 Mpps of 60-byte frames, paced
  xdplab.offload.traffic:
    interface: xl-lg0
    netns: xl-lg
    rate: 1000000
    size: 60
    duration: 30
    cpu: [0]

- name: DNS queries for a responder
  xdplab.offload.traffic:
    interface: xl-lg0
    netns: xl-lg
    frame: dns_query
    rate: 100000
    duration: 5

- name: DNS round-trip latency at 100k queries/s against the responder on the DUT
  xdplab.offload.traffic:
    mode: latency
    interface: xl-lg0
    netns: xl-lg
    rate: 100000
    duration: 10
    cpu: [0]
    dst_mac: "{{ dut.mac }}"
  register: latency

- name: Testbed - MoonGen on DPDK port 0
  xdplab.offload.traffic:
    generator: moongen
    interface: "0"
    rate: 5000000
    dst_mac: "00:15:4d:00:00:01"
    duration: 30
'''

RETURN = r'''
packets_sent:
  description: Frames the generator handed to the interface (0 in check mode); with O(mode=latency), RV(sent).
  returned: always
  type: int
bytes_sent:
  description: packets_sent times the frame length (without FCS).
  returned: always
  type: int
duration_s:
  description: Seconds from the first to the last frame (0 in check mode).
  returned: always
  type: float
rate_pps:
  description: Achieved rate, packets_sent / duration_s (0 in check mode); queries per second with O(mode=latency).
  returned: always
  type: float
offered_rate_pps:
  description: The requested rate, or the achieved rate when O(rate) is 0 (line rate).
  returned: always
  type: float
requested_rate_pps:
  description: O(rate) as given (0 = line rate).
  returned: always
  type: float
generator:
  description: The generator that ran.
  returned: always
  type: str
  sample: xl_loadgen
threads:
  description: Per-thread figures (packets_sent, duration_s, rate_pps, cpu, ...).
  returned: when traffic was sent
  type: list
  elements: dict
interrupted:
  description: The generator stopped early (signal or timeout); the counts are those up to then.
  returned: when traffic was sent
  type: bool
late_restarts:
  description: Paced xl_loadgen runs only - times a sending thread fell too far behind its schedule and restarted it.
  returned: when the generator reports it
  type: int
cpu_s:
  description: CPU time of the generator process (all threads, user + system) in seconds (xl_loadgen).
  returned: when the generator reports it
  type: float
device_xdp_xmit:
  description: The interface driver's count of redirected frames it queued (veth), when it keeps one.
  returned: when the driver reports it
  type: int
device_xdp_xmit_errors:
  description: The driver's count of redirected frames it dropped (veth - the peer's ring was full).
  returned: when the driver reports it
  type: int
flows:
  description: The number of flows (UDP source ports) the frames were spread over.
  returned: when traffic was sent
  type: int
rx_queues:
  description: RX queues of the veth peer of O(interface) (0 when it is not a veth).
  returned: when xl_loadgen reports it
  type: int
steering:
  description: C(cpumap) when flows were steered over the peer's RX queues, C(none) when every frame was redirected directly.
  returned: when xl_loadgen reports it
  type: str
steered_queues:
  description: The peer's RX queues fed and the CPU each one's frames were sent from.
  returned: when xl_loadgen reports it
  type: list
  elements: dict
  sample: [{queue: 0, cpu: 0}, {queue: 1, cpu: 1}]
window:
  description:
    - "C(xl_loadgen): the run's steady stretch, measured as a benchmark measures it - from O(warmup) after the first frame
      to the moment the run is stopped (start-up, first wake-ups of the receiver and the end left out): C(start_s)
      (from the first frame), C(seconds), C(sent) and C(rate_pps) (frames the generator sent), C(device_xdp_xmit),
      C(device_xdp_xmit_errors) and C(delivered_pps) (frames the interface queued to its peer - on a veth the frames
      the receiver's NAPI takes, as the receiver's C(rx_packets) counts them - per second)."
    - Null when the run ended before its window opened.
  returned: when xl_loadgen reports it
  type: dict
  sample: {start_s: 0.5, seconds: 1.5, sent: 13500000, rate_pps: 9000000.0, device_xdp_xmit: 12400000,
           device_xdp_xmit_errors: 1100000, delivered_pps: 8266666.7}
warmup_s:
  description: The warm-up before RV(window) opened, in seconds.
  returned: when xl_loadgen reports it
  type: float
interface_stats:
  description:
    - Counters of O(interface) over the run - C(stats) (IFLA_STATS64 deltas, e.g. C(tx_packets), C(tx_dropped)),
      C(driver_stats) (C(ethtool -S) deltas, e.g. C(tx_queue_0_xdp_xmit), C(tx_queue_0_xdp_xmit_errors)) and C(mac).
  returned: when xl_loadgen sent traffic
  type: dict
  sample: {stats: {tx_packets: 16000000, tx_dropped: 120000}, driver_stats: {tx_queue_0_xdp_xmit: 16000000}, mac: "02:00:c6:12:00:01"}
command:
  description: The generator's argument list.
  returned: always
  type: list
  elements: str
planned:
  description: What the run sends (frame kind, addresses, ports, size, rate, duration, frames planned for paced runs).
  returned: always
  type: dict
sent:
  description: Queries the kernel took from the client's TX ring.
  returned: with mode latency
  type: int
received:
  description: Valid replies matched to a query (the RTT samples).
  returned: with mode latency
  type: int
invalid:
  description: Frames that reached the client but are not a valid reply (their queries count as lost).
  returned: with mode latency
  type: int
invalid_reasons:
  description:
    - Invalid replies per first failed check - C(mac), C(ip_header), C(ip_checksum), C(ip_address), C(udp_port),
      C(udp_length), C(udp_checksum), C(dns_not_response), C(dns_opcode), C(dns_rcode), C(dns_question),
      C(icmp) (for example port unreachable from a DUT without a responder), C(short), C(not_ipv4).
  returned: with mode latency
  type: dict
  sample: {udp_checksum: 500000}
unmatched:
  description: Well-formed replies with no outstanding query (duplicates, or later than 65536 queries).
  returned: with mode latency
  type: int
lost:
  description: sent - received (no reply, an invalid reply, or a reply after O(reply_timeout)).
  returned: with mode latency
  type: int
loss:
  description: lost / sent, a fraction 0..1 (null when nothing was sent).
  returned: with mode latency
  type: float
rtt_us_p50:
  description: Median round-trip time in microseconds (null without valid replies); likewise C(rtt_us_p90),
    C(rtt_us_p99), C(rtt_us_p999) (99.9th), C(rtt_us_mean), C(rtt_us_stddev), C(rtt_us_min), C(rtt_us_max).
    Percentiles interpolate linearly between order statistics over all replies.
  returned: with mode latency
  type: float
rtt_us_hist:
  description:
    - All RTTs in log-spaced bins (20 per decade) - C(edges) in microseconds, ascending, one more than C(counts);
      C(counts[i]) RTTs fell into [C(edges[i]), C(edges[i+1])). Bins below the first and above the last
      non-empty one are left out.
  returned: with mode latency and histogram true
  type: dict
rtt_us_samples:
  description: A uniform random sample (reservoir) of up to O(samples) RTTs in microseconds.
  returned: with mode latency and samples above 0
  type: list
  elements: float
late_sends:
  description: Queries sent more than 10 us after their scheduled time (the client's CPU was busy); C(max_send_lag_us) the longest lag.
  returned: with mode latency
  type: int
rx_timestamp:
  description: Where the receive time comes from - C(xdp_metadata) (kernel time at the client's XDP hook).
  returned: with mode latency
  type: str
link:
  description:
    - The client interface's counter deltas over the run - C(tx_packets), C(tx_dropped), C(rx_packets), C(rx_dropped).
      On a veth, C(tx_dropped) counts queries the responder's end had no room for (its ring was full).
  returned: with mode latency
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.xdplab.offload.plugins.module_utils import latency, loadgen, sending


def finish(module, run, params):
    """Run one of sending's functions and exit_json with its result, or fail_json with its sentence."""
    try:
        result, warnings = run(params, module.check_mode, module.run_command)
    except sending.SendError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    for warning in warnings:
        module.warn(warning)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            generator=dict(type="str", default="xl_loadgen", choices=list(loadgen.GENERATORS)),
            mode=dict(type="str", default="throughput", choices=list(loadgen.MODES)),
            interface=dict(type="str", required=True),
            netns=dict(type="str"),
            rate=dict(type="float", default=0),
            size=dict(type="int"),
            duration=dict(type="float", default=10),
            max_duration=dict(type="float", default=loadgen.DEFAULT_MAX_DURATION),
            max_packets=dict(type="int", default=loadgen.DEFAULT_MAX_PACKETS),
            allowed_destinations=dict(type="list", elements="str", default=[]),
            threads=dict(type="int", default=1),
            cpu=dict(type="list", elements="int"),
            frame=dict(type="str", choices=list(loadgen.FRAMES)),
            qname=dict(type="str", default=loadgen.DEFAULTS["qname"]),
            src_mac=dict(type="str"),
            dst_mac=dict(type="str"),
            src_ip=dict(type="str"),
            dst_ip=dict(type="str"),
            src_port=dict(type="int"),
            dst_port=dict(type="int"),
            binary=dict(type="path"),
            script=dict(type="path", default=loadgen.DEFAULT_MOONGEN_SCRIPT),
            timeout=dict(type="float", default=30),
            reply_timeout=dict(type="float", default=latency.DEFAULT_REPLY_TIMEOUT),
            samples=dict(type="int", default=latency.DEFAULT_SAMPLES),
            histogram=dict(type="bool", default=True),
            xdp_mode=dict(type="str", default="driver", choices=list(latency.XDP_MODES)),
            queue=dict(type="int", default=0),
            flows=dict(type="int", default=1),
            warmup=dict(type="float"),
            nice=dict(type="int"),
            progress_file=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    # The validated request, the lab-interface guard, the run and its summary: module_utils/sending.py.
    finish(module, sending.measure_latency if module.params["mode"] == "latency" else sending.send, module.params)


if __name__ == "__main__":
    main()
