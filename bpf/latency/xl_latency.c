// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * xl-latency - the emulated lab's DNS latency client (AF_XDP).
 *
 * Sends real DNS A queries at a paced rate from one AF_XDP socket (copy
 * mode, libxdp's xsk API) on the client's interface, receives the replies
 * on the same socket, validates each one and reports round-trip times.
 *
 *   user space --TX ring/sendto--> interface --> responder (XDP_TX, ...)
 *   responder --> interface --XDP xl_latency_rx (rx time stamp in the
 *   metadata)--> XSKMAP --> RX ring --> validate, match, RTT
 *
 * Matching: query k (k = 0, 1, ...) carries DNS id k & 0xffff and IPv4
 * identification k >> 16, so a reply that keeps both (an in-place responder
 * does) identifies its query exactly; a table of 65536 slots indexed by the
 * DNS id holds the outstanding queries. A query whose slot is reused before
 * its reply came is lost.
 *
 * Time stamps (both CLOCK_MONOTONIC): the send time is taken right before
 * the sendto() that hands the frame to the kernel (copy mode transmits
 * inside that call; frames the kernel did not take get a new time stamp at
 * the next kick); the receive time is the kernel's, stored by the XDP
 * program in the frame's metadata when the reply reached the interface, so
 * the client's own scheduling on the receive side is not in the RTT. Where
 * the metadata is missing the time the client saw the frame is used (and
 * counted in rx_timestamp_fallbacks).
 *
 * Validation: a reply counts only if it is Ethernet/IPv4/UDP with the MACs,
 * addresses and ports of its query swapped, a valid IPv4 header checksum,
 * a valid UDP checksum (0 = none is accepted, RFC 768), QR=1, opcode QUERY,
 * RCODE=NXDOMAIN (3) and the query's question echoed. Anything else that
 * arrives is counted in `invalid` (with the reason in invalid_reasons) and
 * its query, if it can be identified, is lost; a well-formed reply without
 * an outstanding query (duplicate, or later than the slot's reuse) counts
 * in `unmatched`.
 *
 * Output: one JSON object on stdout. Exit 0 on success, 1 on an
 * environment failure, 2 on bad options; errors are one line
 * "xl-latency: error: ..." on stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <limits.h>
#include <linux/if_link.h>
#include <linux/if_packet.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>
#include <math.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/xsk.h>

#define XL_USER_ERR_PREFIX "xl-latency: error: "
#define XL_USER_XSK
#include "xdplab/user.h"
#include "xdplab/types.h"
#include "xdplab/proto.h"
#include "xl_latency.h"

#define XL_LAT_VERSION "1.0"

#ifndef XL_LAT_BPF_OBJ
#error "build with -DXL_LAT_BPF_OBJ=\"<path of xl_latency.bpf.o>\""
#endif

/* The XDP half's ELF object, embedded at build time. */
__asm__(".section .rodata\n"
	".balign 8\n"
	".global xl_lat_obj_start\n"
	"xl_lat_obj_start:\n"
	".incbin \"" XL_LAT_BPF_OBJ "\"\n"
	".global xl_lat_obj_end\n"
	"xl_lat_obj_end:\n"
	".previous\n");
extern const char xl_lat_obj_start[], xl_lat_obj_end[];

#define PROG_NAME "xl_latency_rx"
#define XSKMAP_NAME "xl_lat_xsks"
#define STATS_NAME "xl_lat_stats"
#define FRAME_SIZE XSK_UMEM__DEFAULT_FRAME_SIZE
#define MIN_SIZE 60		/* frame length without FCS: 64 bytes on the wire */
#define MAX_SIZE 1518		/* veth accepts MTU + 14 + VLAN tag */
#define MAX_RATE 10e6
#define MAX_DURATION 86400.0
#define MAX_QUERIES 100000000ull /* rate x duration; 4 bytes of RTT each */
#define MAX_BATCH 256
#define NSLOTS 65536
#define ETH_HDR 14
#define IP_HDR 20
#define UDP_HDR 8
#define DNS_HDR 12
#define DNS_FLAGS_QUERY 0x0100	/* RD */
#define HIST_PER_DECADE 20
#define HIST_MIN_US 0.1
#define HIST_BINS (HIST_PER_DECADE * 8) /* 0.1 us .. 10 s */

enum { EXIT_ENV = 1, EXIT_USAGE = 2 };

/* ------------------------------------------------------------- options */

struct config {
	const char *ifname;
	const char *netns;
	unsigned int queue;
	double rate;
	double duration;
	int size;		/* 0: the query's own length (at least MIN_SIZE) */
	const char *qname;
	uint8_t src_mac[6], dst_mac[6];
	bool src_mac_given;
	uint32_t src_ip, dst_ip; /* network order */
	uint16_t src_port, dst_port;
	int cpu;
	unsigned int batch;
	double timeout_ms;
	unsigned int samples;
	bool hist;
	bool generic;
	bool copy_only;		/* --copy-mode copy (default) vs auto */
	unsigned int ring;
	long long dump_seq;	/* --dump-frame: print query SEQ as hex and exit */
	bool verbose;
};

static struct config cfg = {
	.rate = 10000,
	.duration = 5,
	.qname = "xl-query.example",
	.dst_mac = { 0x02, 0x00, 0xc6, 0x12, 0x00, 0x02 },
	.src_mac = { 0x02, 0x00, 0xc6, 0x12, 0x00, 0x01 },
	.src_port = 40000,
	.dst_port = 53,
	.cpu = -1,
	.batch = 1,
	.timeout_ms = 500,
	.samples = 10000,
	.hist = true,
	.copy_only = true,
	.ring = 2048,
	.dump_seq = -1,
};

/* ------------------------------------------------------------- state */

enum slot_state { SLOT_FREE = 0, SLOT_OUTSTANDING, SLOT_DONE };

struct slot {
	uint64_t tx_ns;
	uint32_t seq;
	uint8_t state;
};

enum reason {
	RS_OK = 0,
	RS_SHORT,
	RS_NOT_IPV4,
	RS_MAC,
	RS_IP_HEADER,
	RS_IP_CHECKSUM,
	RS_IP_ADDRESS,
	RS_UDP_PORT,
	RS_UDP_LENGTH,
	RS_UDP_CHECKSUM,
	RS_DNS_NOT_RESPONSE,
	RS_DNS_OPCODE,
	RS_DNS_RCODE,
	RS_DNS_QUESTION,
	RS_ICMP,
	RS_NREASONS,
};

static const char *reason_names[RS_NREASONS] = {
	"ok", "short", "not_ipv4", "mac", "ip_header", "ip_checksum", "ip_address", "udp_port",
	"udp_length", "udp_checksum", "dns_not_response", "dns_opcode", "dns_rcode", "dns_question", "icmp",
};

struct client {
	int ifindex;
	char driver[32];
	unsigned int rx_queues;
	uint8_t frame[MAX_SIZE];	/* the query template (DNS id 0, IP id 0) */
	int frame_len;			/* == size */
	int dns_len;			/* DNS message length */
	int ip_len;			/* IPv4 total length */
	/* AF_XDP */
	void *umem_area;
	size_t umem_size;
	unsigned int nrx, ntx;		/* frames for FILL/RX and for TX */
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	struct xsk_ring_prod fq, tx;
	struct xsk_ring_cons cq, rx;
	int xsk_fd;
	bool zerocopy;
	uint64_t *tx_free;
	unsigned int tx_nfree;
	/* XDP */
	struct xl_xdp_obj bpf;
	int link_fd;
	bool attached, netlink_attached;
	/* run */
	struct slot *slots;
	uint64_t submitted, consumed;	/* TX descriptors written / taken by the kernel */
	uint32_t tx_cons_seen;
	uint64_t outstanding;
	uint64_t received, invalid, unmatched, invalid_attributed;
	uint64_t reasons[RS_NREASONS];
	uint64_t rx_frames, ts_fallbacks, tx_kicks, tx_kick_errors, tx_pool_empty;
	uint64_t late_sends, max_lag_ns;
	uint64_t first_send_ns, last_send_ns;
	uint32_t *rtts;
	uint64_t nrtts, cap_rtts;
	double *reservoir;
	uint64_t seen_for_reservoir;
	uint64_t rng;
	uint64_t hist[HIST_BINS];
	double wall_start;
	bool interrupted;
	struct rtnl_link_stats link0, link1; /* the interface's counters before/after */
	bool have_link;
};

static struct client c = { .xsk_fd = -1, .bpf = XL_XDP_OBJ_INIT, .link_fd = -1 };
static volatile sig_atomic_t stop_requested;

/* ------------------------------------------------------------- helpers */

static void cleanup(void);

static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "xl-latency: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	cleanup();
	exit(code);
}

static void usage(FILE *out)
{
	fprintf(out,
"Usage: xl-latency --interface NAME [options]\n"
"Send DNS A queries at a paced rate from an AF_XDP socket on NAME, validate the\n"
"replies (NXDOMAIN, swapped addresses, valid checksums) and print RTT percentiles\n"
"as one JSON object.\n"
"\n"
"  -i, --interface NAME   the client's interface (e.g. xl-lg0)\n"
"  -n, --netns NAME       enter network namespace NAME (%s/NAME) first\n"
"  -r, --rate PPS         queries per second, > 0 (default 10000)\n"
"  -d, --duration SEC     seconds of sending (default 5)\n"
"  -s, --size BYTES       frame length without FCS, %d..%d; the query is padded\n"
"                         with an Ethernet trailer (default: its own length, >= %d)\n"
"      --qname NAME       name to query (default xl-query.example)\n"
"      --src-mac MAC      default: the interface's MAC\n"
"      --dst-mac MAC      the responder's MAC (default 02:00:c6:12:00:02)\n"
"      --src-ip ADDR      default 198.18.0.1\n"
"      --dst-ip ADDR      default 198.18.0.2\n"
"      --src-port PORT    default 40000\n"
"      --dst-port PORT    default 53\n"
"  -q, --queue N          RX queue of the socket (default 0)\n"
"  -c, --cpu N            pin the client to CPU N (it busy-polls: one full CPU)\n"
"  -b, --batch N          most queries per sendto when behind schedule (default 1;\n"
"                         more reaches higher rates, but queries in a burst queue\n"
"                         behind each other and their RTTs include that)\n"
"  -t, --timeout MS       wait this long for replies after the last query (default 500)\n"
"      --samples N        reservoir sample of N RTTs in the output (default 10000, 0 = none)\n"
"      --no-hist          no rtt_us_hist in the output\n"
"      --xdp-mode MODE    driver (default) or generic, for the client's XDP program\n"
"      --copy-mode MODE   copy (default) or auto (let the kernel try zero-copy)\n"
"      --ring-size N      RX/TX ring entries, power of 2 (default 2048)\n"
"      --dump-frame SEQ   print query SEQ as hex (no root, nothing sent) and exit\n"
"  -v, --verbose\n"
"  -h, --help\n",
		XL_NETNS_RUN_DIR, MIN_SIZE, MAX_SIZE, MIN_SIZE);
}

static void json_num(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else
		fprintf(f, "%.3f", v);
}

static double parse_double(const char *s, double min, double max, const char *opt)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || isnan(v) || v < min || v > max)
		die(EXIT_USAGE, "%s '%s' must be a number in %g..%g", opt, s, min, max);
	return v;
}

static void parse_mac(const char *s, uint8_t out[6], const char *opt)
{
	unsigned int b[6];
	char tail;
	int i;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6 ||
	    strlen(s) != 17)
		die(EXIT_USAGE, "%s '%s' is not a MAC address like 02:00:c6:12:00:01", opt, s);
	for (i = 0; i < 6; i++)
		out[i] = (uint8_t)b[i];
}

static uint32_t parse_ip(const char *s, const char *opt)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		die(EXIT_USAGE, "%s '%s' is not an IPv4 address", opt, s);
	return a.s_addr;
}

static const char *const copy_modes[] = { "copy", "auto" };

enum {
	OPT_QNAME = 256, OPT_SRC_MAC, OPT_DST_MAC, OPT_SRC_IP, OPT_DST_IP, OPT_SRC_PORT, OPT_DST_PORT,
	OPT_SAMPLES, OPT_NO_HIST, OPT_XDP_MODE, OPT_COPY_MODE, OPT_RING, OPT_DUMP,
};

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interface", required_argument, NULL, 'i' },
		{ "netns", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "size", required_argument, NULL, 's' },
		{ "qname", required_argument, NULL, OPT_QNAME },
		{ "src-mac", required_argument, NULL, OPT_SRC_MAC },
		{ "dst-mac", required_argument, NULL, OPT_DST_MAC },
		{ "src-ip", required_argument, NULL, OPT_SRC_IP },
		{ "dst-ip", required_argument, NULL, OPT_DST_IP },
		{ "src-port", required_argument, NULL, OPT_SRC_PORT },
		{ "dst-port", required_argument, NULL, OPT_DST_PORT },
		{ "queue", required_argument, NULL, 'q' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "batch", required_argument, NULL, 'b' },
		{ "timeout", required_argument, NULL, 't' },
		{ "samples", required_argument, NULL, OPT_SAMPLES },
		{ "no-hist", no_argument, NULL, OPT_NO_HIST },
		{ "xdp-mode", required_argument, NULL, OPT_XDP_MODE },
		{ "copy-mode", required_argument, NULL, OPT_COPY_MODE },
		{ "ring-size", required_argument, NULL, OPT_RING },
		{ "dump-frame", required_argument, NULL, OPT_DUMP },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	cfg.src_ip = inet_addr("198.18.0.1");
	cfg.dst_ip = inet_addr("198.18.0.2");
	while ((ch = getopt_long(argc, argv, "i:n:r:d:s:q:c:b:t:vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'i':
			cfg.ifname = optarg;
			break;
		case 'n':
			cfg.netns = optarg;
			break;
		case 'r':
			cfg.rate = parse_double(optarg, 0, MAX_RATE, "--rate");
			if (cfg.rate <= 0)
				die(EXIT_USAGE, "--rate must be more than 0 queries per second");
			break;
		case 'd':
			cfg.duration = parse_double(optarg, 0, MAX_DURATION, "--duration");
			if (cfg.duration <= 0)
				die(EXIT_USAGE, "--duration must be more than 0 seconds");
			break;
		case 's':
			cfg.size = (int)xl_parse_ll(optarg, MIN_SIZE, MAX_SIZE, "--size");
			break;
		case OPT_QNAME:
			cfg.qname = optarg;
			break;
		case OPT_SRC_MAC:
			parse_mac(optarg, cfg.src_mac, "--src-mac");
			cfg.src_mac_given = true;
			break;
		case OPT_DST_MAC:
			parse_mac(optarg, cfg.dst_mac, "--dst-mac");
			break;
		case OPT_SRC_IP:
			cfg.src_ip = parse_ip(optarg, "--src-ip");
			break;
		case OPT_DST_IP:
			cfg.dst_ip = parse_ip(optarg, "--dst-ip");
			break;
		case OPT_SRC_PORT:
			cfg.src_port = (uint16_t)xl_parse_ll(optarg, 1, 65535, "--src-port");
			break;
		case OPT_DST_PORT:
			cfg.dst_port = (uint16_t)xl_parse_ll(optarg, 1, 65535, "--dst-port");
			break;
		case 'q':
			cfg.queue = (unsigned int)xl_parse_ll(optarg, 0, XL_LAT_MAX_QUEUES - 1, "--queue");
			break;
		case 'c':
			cfg.cpu = xl_parse_cpu(optarg, "--cpu");
			break;
		case 'b':
			cfg.batch = (unsigned int)xl_parse_ll(optarg, 1, MAX_BATCH, "--batch");
			break;
		case 't':
			cfg.timeout_ms = parse_double(optarg, 0, 60000, "--timeout");
			break;
		case OPT_SAMPLES:
			cfg.samples = (unsigned int)xl_parse_ll(optarg, 0, 1000000, "--samples");
			break;
		case OPT_NO_HIST:
			cfg.hist = false;
			break;
		case OPT_XDP_MODE:
			cfg.generic = xl_parse_xdp_mode(optarg);
			break;
		case OPT_COPY_MODE:
			cfg.copy_only = xl_parse_choice(optarg, "--copy-mode", copy_modes, 2) == 0;
			break;
		case OPT_RING:
			cfg.ring = xl_parse_pow2(optarg, 64, 16384, "--ring-size");
			break;
		case OPT_DUMP:
			cfg.dump_seq = xl_parse_ll(optarg, 0, UINT32_MAX, "--dump-frame");
			break;
		case 'v':
			cfg.verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(EXIT_USAGE);
		}
	}
	if (optind < argc)
		die(EXIT_USAGE, "unexpected argument '%s' (see --help)", argv[optind]);
	if (cfg.dump_seq >= 0)
		return;
	xl_check_interface_args(cfg.ifname, cfg.netns);
	if (cfg.rate * cfg.duration > (double)MAX_QUERIES)
		die(EXIT_USAGE, "rate x duration = %.0f queries is more than %llu; shorten the run",
		    cfg.rate * cfg.duration, MAX_QUERIES);
	if (cfg.batch > cfg.ring)
		die(EXIT_USAGE, "--batch %u is larger than the ring (%u)", cfg.batch, cfg.ring);
}

/* ------------------------------------------------------------- frames */

static uint16_t csum16(const uint8_t *p, size_t len, uint64_t sum)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum; /* not inverted, host order */
}

static uint16_t ip_checksum(const uint8_t *ip, size_t hlen)
{
	return (uint16_t)~csum16(ip, hlen, 0);
}

/* The UDP checksum sum over pseudo header + segment (not inverted). */
static uint16_t udp_sum(const uint8_t *ip, const uint8_t *udp, size_t udp_len)
{
	uint64_t sum = 0;

	sum += (uint32_t)ip[12] << 8 | ip[13];
	sum += (uint32_t)ip[14] << 8 | ip[15];
	sum += (uint32_t)ip[16] << 8 | ip[17];
	sum += (uint32_t)ip[18] << 8 | ip[19];
	sum += XL_IPPROTO_UDP;
	sum += udp_len;
	return csum16(udp, udp_len, sum);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* qname as DNS labels into out; returns the length or -1 (message in err). */
static int encode_qname(const char *name, uint8_t *out, size_t room, char *err, size_t errlen)
{
	size_t n = 0, len = strlen(name);
	const char *p = name, *dot;

	if (len && name[len - 1] == '.')
		len--;
	while (p < name + len) {
		size_t l;
		const char *q;

		dot = memchr(p, '.', name + len - p);
		l = dot ? (size_t)(dot - p) : (size_t)(name + len - p);
		if (l == 0 || l > 63) {
			snprintf(err, errlen, "--qname '%s' is not a DNS name: labels must be 1..63 characters", name);
			return -1;
		}
		for (q = p; q < p + l; q++) {
			if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
			      *q == '-' || *q == '_')) {
				snprintf(err, errlen, "--qname '%s' is not a DNS name (letters, digits, '-' and '_' "
					 "in dot-separated labels)", name);
				return -1;
			}
		}
		if (n + 1 + l + 1 > room || n + 1 + l + 1 > 255) {
			snprintf(err, errlen, "--qname '%s' is longer than 255 bytes on the wire", name);
			return -1;
		}
		out[n++] = (uint8_t)l;
		memcpy(out + n, p, l);
		n += l;
		p += l + (dot ? 1 : 0);
		if (!dot)
			break;
	}
	out[n++] = 0;
	return (int)n;
}

/* The query template: DNS id 0, IP id 0, full checksums, padded to size. */
static void build_template(void)
{
	uint8_t *f = c.frame, *ip = f + ETH_HDR, *udp = ip + IP_HDR, *dns = udp + UDP_HDR;
	uint8_t qname[256];
	char err[256];
	int qlen, natural;

	qlen = encode_qname(cfg.qname, qname, sizeof(qname), err, sizeof(err));
	if (qlen < 0)
		die(EXIT_USAGE, "%s", err);
	c.dns_len = DNS_HDR + qlen + 4;
	c.ip_len = IP_HDR + UDP_HDR + c.dns_len;
	natural = ETH_HDR + c.ip_len;
	if (cfg.size && cfg.size < natural)
		die(EXIT_USAGE, "--size %d is too small for a DNS query for %s (%d bytes); give at least %d or a "
		    "shorter --qname", cfg.size, cfg.qname, natural, natural);
	c.frame_len = cfg.size ? cfg.size : (natural < MIN_SIZE ? MIN_SIZE : natural);
	memset(f, 0, sizeof(c.frame));

	memcpy(f, cfg.dst_mac, 6);
	memcpy(f + 6, cfg.src_mac, 6);
	put16(f + 12, XL_ETH_P_IP);

	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, (uint16_t)c.ip_len);
	put16(ip + 4, 0);	/* identification: seq >> 16 */
	put16(ip + 6, 0x4000);	/* DF */
	ip[8] = 64;
	ip[9] = XL_IPPROTO_UDP;
	memcpy(ip + 12, &cfg.src_ip, 4);
	memcpy(ip + 16, &cfg.dst_ip, 4);

	put16(udp, cfg.src_port);
	put16(udp + 2, cfg.dst_port);
	put16(udp + 4, (uint16_t)(UDP_HDR + c.dns_len));

	put16(dns, 0);		/* id: seq & 0xffff */
	put16(dns + 2, DNS_FLAGS_QUERY);
	put16(dns + 4, 1);	/* QDCOUNT */
	memcpy(dns + DNS_HDR, qname, qlen);
	put16(dns + DNS_HDR + qlen, 1);		/* QTYPE A */
	put16(dns + DNS_HDR + qlen + 2, 1);	/* QCLASS IN */
}

/* Write query SEQ into frame buffer OUT (which holds the template). */
static void stamp_query(uint8_t *out, uint32_t seq)
{
	uint8_t *ip = out + ETH_HDR, *udp = ip + IP_HDR, *dns = udp + UDP_HDR;
	uint16_t check;

	put16(ip + 4, (uint16_t)(seq >> 16));
	put16(ip + 10, 0);
	put16(ip + 10, ip_checksum(ip, IP_HDR));
	put16(dns, (uint16_t)(seq & 0xffff));
	put16(udp + 6, 0);
	check = (uint16_t)~udp_sum(ip, udp, UDP_HDR + c.dns_len);
	put16(udp + 6, check ? check : 0xffff);
}

/* ------------------------------------------------------------- validation */

/*
 * Check a received frame. Sets *seq_out and returns true in *attributable
 * when the frame names an outstanding query (DNS id + IP id); the return
 * value is RS_OK or the first reason it is not a valid reply.
 */
static enum reason check_reply(const uint8_t *f, uint32_t len, uint32_t *seq_out, bool *attributable)
{
	const uint8_t *ip, *udp, *dns;
	unsigned int ihl, tot, ulen;
	uint16_t flags;
	uint32_t seq;
	struct slot *s;

	*attributable = false;
	if (len < ETH_HDR + IP_HDR)
		return RS_SHORT;
	if (get16(f + 12) != XL_ETH_P_IP)
		return RS_NOT_IPV4;
	ip = f + ETH_HDR;
	ihl = (ip[0] & 0x0f) * 4u;
	if ((ip[0] >> 4) != 4 || ihl < IP_HDR || len < ETH_HDR + ihl + UDP_HDR + DNS_HDR) {
		if ((ip[0] >> 4) != 4 || ihl < IP_HDR)
			return RS_IP_HEADER;
		return RS_SHORT;
	}
	udp = ip + ihl;
	dns = udp + UDP_HDR;
	seq = (uint32_t)get16(ip + 4) << 16 | get16(dns);
	s = &c.slots[seq & 0xffff];
	if (ip[9] == XL_IPPROTO_UDP && s->state == SLOT_OUTSTANDING && s->seq == seq)
		*attributable = true;
	*seq_out = seq;

	if (memcmp(f, cfg.src_mac, 6) || memcmp(f + 6, cfg.dst_mac, 6))
		return RS_MAC;
	if (csum16(ip, ihl, 0) != 0xffff)
		return RS_IP_CHECKSUM;
	tot = get16(ip + 2);
	if (ip[9] == 1)	/* e.g. port unreachable from a DUT without a responder */
		return RS_ICMP;
	if (ip[9] != XL_IPPROTO_UDP || (get16(ip + 6) & 0x3fff) || tot < ihl + UDP_HDR + DNS_HDR ||
	    ETH_HDR + tot > len)
		return RS_IP_HEADER;
	if (memcmp(ip + 12, &cfg.dst_ip, 4) || memcmp(ip + 16, &cfg.src_ip, 4))
		return RS_IP_ADDRESS;
	if (get16(udp) != cfg.dst_port || get16(udp + 2) != cfg.src_port)
		return RS_UDP_PORT;
	ulen = get16(udp + 4);
	if (ulen != tot - ihl || ulen < UDP_HDR + (unsigned int)c.dns_len)
		return RS_UDP_LENGTH;
	if (get16(udp + 6) != 0 && udp_sum(ip, udp, ulen) != 0xffff)
		return RS_UDP_CHECKSUM;
	flags = get16(dns + 2);
	if (!(flags & XL_DNS_QR))
		return RS_DNS_NOT_RESPONSE;
	if (((flags >> 11) & 0xf) != 0)
		return RS_DNS_OPCODE;
	if ((flags & XL_DNS_RCODE_MASK) != XL_DNS_RCODE_NXDOMAIN)
		return RS_DNS_RCODE;
	/* QDCOUNT 1 and the question as sent */
	if (get16(dns + 4) != 1 ||
	    memcmp(dns + DNS_HDR, c.frame + ETH_HDR + IP_HDR + UDP_HDR + DNS_HDR, c.dns_len - DNS_HDR))
		return RS_DNS_QUESTION;
	return RS_OK;
}

/* ------------------------------------------------------------- statistics */

static inline uint64_t rng_next(void)
{
	uint64_t x = c.rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	c.rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static void record_rtt(uint64_t rtt_ns)
{
	double us = rtt_ns / 1000.0;
	int bin;

	if (rtt_ns > UINT32_MAX)
		rtt_ns = UINT32_MAX;
	if (c.nrtts == c.cap_rtts) {
		uint64_t cap = c.cap_rtts ? c.cap_rtts * 2 : 1 << 20;
		uint32_t *p = realloc(c.rtts, cap * sizeof(*p));

		if (!p)
			die(EXIT_ENV, "out of memory for %llu RTTs", (unsigned long long)cap);
		c.rtts = p;
		c.cap_rtts = cap;
	}
	c.rtts[c.nrtts++] = (uint32_t)rtt_ns;

	bin = us > HIST_MIN_US ? (int)floor(HIST_PER_DECADE * log10(us / HIST_MIN_US)) : 0;
	if (bin < 0)
		bin = 0;
	if (bin >= HIST_BINS)
		bin = HIST_BINS - 1;
	c.hist[bin]++;

	if (cfg.samples) {
		uint64_t k = c.seen_for_reservoir++;

		if (k < cfg.samples) {
			c.reservoir[k] = us;
		} else {
			uint64_t j = rng_next() % (k + 1);

			if (j < cfg.samples)
				c.reservoir[j] = us;
		}
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Percentile p (0..1) of the sorted RTTs in us, linear interpolation (type 7). */
static double percentile(double p)
{
	double h, lo;
	uint64_t i;

	if (!c.nrtts)
		return NAN;
	h = (c.nrtts - 1) * p;
	lo = floor(h);
	i = (uint64_t)lo;
	if (i + 1 >= c.nrtts)
		return c.rtts[c.nrtts - 1] / 1000.0;
	return (c.rtts[i] + (h - lo) * ((double)c.rtts[i + 1] - c.rtts[i])) / 1000.0;
}

/* ------------------------------------------------------------- set-up */

/* The interface's counters (rtnl_link_stats, from netlink in our namespace). */
static bool read_link_stats(struct rtnl_link_stats *out)
{
	struct ifaddrs *ifa, *p;
	bool found = false;

	if (getifaddrs(&ifa))
		return false;
	for (p = ifa; p; p = p->ifa_next) {
		if (p->ifa_addr && p->ifa_addr->sa_family == AF_PACKET && p->ifa_data &&
		    !strcmp(p->ifa_name, cfg.ifname)) {
			memcpy(out, p->ifa_data, sizeof(*out));
			found = true;
			break;
		}
	}
	freeifaddrs(ifa);
	return found;
}

static void enter_netns(void)
{
	char msg[512];

	if (cfg.netns && xl_enter_netns(cfg.netns, " (run as root)", msg, sizeof(msg)))
		die(EXIT_ENV, "%s", msg);
}

static const char *where(void)
{
	return xl_where(cfg.ifname, cfg.netns);
}

static void read_interface(void)
{
	struct ifreq ifr;

	xl_read_driver(cfg.ifname, c.driver, sizeof(c.driver));
	c.rx_queues = xl_rx_queues(cfg.ifname);
	memset(&ifr, 0, sizeof(ifr));
	if (!cfg.src_mac_given && xl_if_ioctl(cfg.ifname, SIOCGIFHWADDR, &ifr) == 0)
		memcpy(cfg.src_mac, ifr.ifr_hwaddr.sa_data, 6);
	memset(&ifr, 0, sizeof(ifr));
	if (xl_if_ioctl(cfg.ifname, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP))
		die(EXIT_ENV, "interface %s is down; set it up first", where());
	if (c.rx_queues && cfg.queue >= c.rx_queues)
		die(EXIT_ENV, "%s has no RX queue %u (it has %u): choose --queue 0..%u", where(), cfg.queue,
		    c.rx_queues, c.rx_queues - 1);
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && cfg.verbose)
		return vfprintf(stderr, fmt, ap);
	return 0;
}

static void load_xdp(void)
{
	int err;

	switch (xl_xdp_obj_load(&c.bpf, "xl_latency", xl_lat_obj_start, xl_lat_obj_end, PROG_NAME, XSKMAP_NAME,
				STATS_NAME, &err)) {
	case XL_OBJ_OK:
		break;
	case XL_OBJ_OPEN:
		die(EXIT_ENV, "cannot open the embedded XDP program: %s", strerror(err));
		break;
	case XL_OBJ_LOAD:
		die(EXIT_ENV, "the kernel rejected the client's XDP program %s: %s%s", PROG_NAME, strerror(err),
		    err == EPERM ? XL_BPF_ROOT_HINT : "");
		break;
	case XL_OBJ_LOOKUP:
		die(EXIT_ENV, "the embedded XDP object lacks %s or %s", PROG_NAME, XSKMAP_NAME);
		break;
	}
}

static void create_socket(void)
{
	struct xsk_umem_config ucfg = {
		.fill_size = cfg.ring * 2,
		.comp_size = cfg.ring,
		.frame_size = FRAME_SIZE,
		.frame_headroom = 0,
		.flags = 0,
	};
	struct xsk_socket_config scfg = {
		.rx_size = cfg.ring,
		.tx_size = cfg.ring,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.xdp_flags = cfg.generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE,
		.bind_flags = (cfg.copy_only || cfg.generic ? XDP_COPY : 0) | XDP_USE_NEED_WAKEUP,
	};
	char msg[512];
	unsigned int i;
	int err;

	c.nrx = cfg.ring * 2;
	c.ntx = cfg.ring;
	c.umem_size = (size_t)(c.nrx + c.ntx) * FRAME_SIZE;
	if (xl_umem_create(&c.umem_area, c.umem_size, &c.umem, &c.fq, &c.cq, &ucfg, msg, sizeof(msg)))
		die(EXIT_ENV, "%s", msg);
	err = xsk_socket__create(&c.xsk, cfg.ifname, cfg.queue, c.umem, &c.rx, &c.tx, &scfg);
	if (err) {
		c.xsk = NULL;
		err = err < 0 ? -err : err;
		if (err == EBUSY)
			die(EXIT_ENV, "RX queue %u of %s is already used by another AF_XDP socket; stop that client "
			    "or worker first", cfg.queue, where());
		if (err == EPERM)
			die(EXIT_ENV, "cannot create an AF_XDP socket on %s: permission denied (run as root)", where());
		die(EXIT_ENV, "cannot bind an AF_XDP socket to RX queue %u of %s: %s", cfg.queue, where(),
		    strerror(err));
	}
	c.xsk_fd = xsk_socket__fd(c.xsk);
	xl_xsk_zerocopy(c.xsk_fd, &c.zerocopy);

	/* frames 0 .. nrx-1: FILL/RX; nrx .. nrx+ntx-1: TX, each holding the template */
	if (xl_fill_ring(&c.fq, c.nrx, FRAME_SIZE))
		die(EXIT_ENV, "cannot put %u frames on the FILL ring", c.nrx);
	c.tx_free = calloc(c.ntx, sizeof(*c.tx_free));
	if (!c.tx_free)
		die(EXIT_ENV, "out of memory");
	for (i = 0; i < c.ntx; i++) {
		__u64 addr = (__u64)(c.nrx + i) * FRAME_SIZE;

		memcpy((uint8_t *)c.umem_area + addr, c.frame, c.frame_len);
		c.tx_free[c.tx_nfree++] = addr;
	}
	c.tx_cons_seen = *c.tx.consumer;
	if (bpf_map_update_elem(c.bpf.xsks_fd, &cfg.queue, &c.xsk_fd, BPF_ANY))
		die(EXIT_ENV, "cannot put the socket into the XSKMAP: %s", strerror(errno));
}

static void attach_xdp(void)
{
	__u32 mode = cfg.generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
	LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = mode);
	char other[128];
	int err;

	c.link_fd = bpf_link_create(c.bpf.prog_fd, c.ifindex, BPF_XDP, &lo);
	if (c.link_fd >= 0) {
		c.attached = true;
		return;
	}
	err = errno;
	c.link_fd = -1;
	if (err == EBUSY || err == EEXIST) {
		xl_describe_attached(c.ifindex, false, other, sizeof(other));
		die(EXIT_ENV, "%s already has an XDP program attached%s; the latency client attaches its own "
		    "(detach the other one, or run the client on another interface)", where(), other);
	}
	if (!cfg.generic && (err == EOPNOTSUPP || err == EINVAL))
		die(EXIT_ENV, "the driver of %s (%s) does not support native XDP: use --xdp-mode generic (%s)",
		    where(), c.driver[0] ? c.driver : "unknown", strerror(err));
	die(EXIT_ENV, "cannot attach the client's XDP program to %s in %s mode: %s", where(),
	    cfg.generic ? "generic" : "driver", strerror(err));
}

static void cleanup(void)
{
	if (c.link_fd >= 0) {
		close(c.link_fd);
		c.link_fd = -1;
	}
	c.attached = false;
	if (c.xsk) {
		xsk_socket__delete(c.xsk);
		c.xsk = NULL;
		c.xsk_fd = -1;
	}
	xl_umem_destroy(&c.umem, &c.umem_area, c.umem_size);
	xl_xdp_obj_close(&c.bpf);
}

/* ------------------------------------------------------------- data path */

/* Hand the TX ring to the kernel; time stamp what it has not taken yet. */
static void kick_tx(void)
{
	uint64_t s, t;
	uint32_t cons;

	if (c.consumed == c.submitted)
		return;
	t = xl_mono_ns();
	for (s = c.consumed; s < c.submitted; s++)
		c.slots[s & 0xffff].tx_ns = t;
	if (!c.first_send_ns)
		c.first_send_ns = t;
	c.tx_kicks++;
	if (sendto(c.xsk_fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0) {
		int e = errno;

		if (e == ENETDOWN || e == ENXIO || e == ENODEV)
			die(EXIT_ENV, "sending on %s failed: %s (interface down or gone)", where(), strerror(e));
		if (e != ENOBUFS && e != EAGAIN && e != EBUSY)
			c.tx_kick_errors++;
	}
	cons = __atomic_load_n(c.tx.consumer, __ATOMIC_ACQUIRE);
	c.consumed += (uint32_t)(cons - c.tx_cons_seen);
	c.tx_cons_seen = cons;
	if (c.consumed > c.submitted)
		c.consumed = c.submitted;
	c.last_send_ns = t;
}

static void complete_tx(void)
{
	__u32 idx = 0, n, i;

	n = xsk_ring_cons__peek(&c.cq, c.ntx, &idx);
	if (!n)
		return;
	for (i = 0; i < n; i++)
		c.tx_free[c.tx_nfree++] = *xsk_ring_cons__comp_addr(&c.cq, idx++);
	xsk_ring_cons__release(&c.cq, n);
}

/* Queue N queries (seq = c.submitted ...) on the TX ring; returns how many. */
static unsigned int queue_queries(unsigned int n)
{
	__u32 idx = 0, i;

	if (n > c.tx_nfree) {
		complete_tx();
		if (n > c.tx_nfree)
			n = c.tx_nfree;
	}
	if (!n) {
		c.tx_pool_empty++;
		return 0;
	}
	n = xsk_ring_prod__reserve(&c.tx, n, &idx);
	if (!n)
		return 0;
	for (i = 0; i < n; i++) {
		uint64_t addr = c.tx_free[--c.tx_nfree];
		uint32_t seq = (uint32_t)(c.submitted + i);
		struct slot *s = &c.slots[seq & 0xffff];
		struct xdp_desc *d = xsk_ring_prod__tx_desc(&c.tx, idx++);

		stamp_query((uint8_t *)c.umem_area + addr, seq);
		d->addr = addr;
		d->len = c.frame_len;
		d->options = 0;
		if (s->state == SLOT_OUTSTANDING)
			c.outstanding--; /* its query is lost: the slot is needed again */
		s->seq = seq;
		s->state = SLOT_OUTSTANDING;
		s->tx_ns = 0;
		c.outstanding++;
	}
	xsk_ring_prod__submit(&c.tx, n);
	c.submitted += n;
	return n;
}

static void handle_frame(uint8_t *data, uint32_t len, uint64_t addr, uint64_t now)
{
	struct xl_lat_meta *meta = NULL;
	uint64_t rx_ns = 0;
	uint32_t seq = 0;
	bool attributable;
	enum reason r;

	if ((addr & (FRAME_SIZE - 1)) >= sizeof(*meta)) {
		meta = (struct xl_lat_meta *)(data - sizeof(*meta));
		if (meta->magic == XL_LAT_META_MAGIC)
			rx_ns = meta->rx_ns;
		/* the chunk is reused: never read a stale time stamp */
		meta->magic = 0;
		meta->rx_ns = 0;
	}
	c.rx_frames++;
	r = check_reply(data, len, &seq, &attributable);
	if (r != RS_OK) {
		c.invalid++;
		c.reasons[r]++;
		if (attributable) {
			c.slots[seq & 0xffff].state = SLOT_DONE;
			c.outstanding--;
			c.invalid_attributed++;
		}
		return;
	}
	if (!attributable) {
		c.unmatched++;
		return;
	}
	{
		struct slot *s = &c.slots[seq & 0xffff];

		if (!s->tx_ns) {	/* never handed to the kernel: cannot be a reply */
			c.unmatched++;
			return;
		}
		if (!rx_ns || rx_ns < s->tx_ns || rx_ns > now) {
			c.ts_fallbacks++;
			rx_ns = now;
		}
		s->state = SLOT_DONE;
		c.outstanding--;
		c.received++;
		record_rtt(rx_ns - s->tx_ns);
	}
}

static void rx_batch(void)
{
	__u32 idx_rx = 0, idx_fq = 0, n, i;
	uint64_t now;

	n = xsk_ring_cons__peek(&c.rx, 64, &idx_rx);
	if (!n) {
		if (xsk_ring_prod__needs_wakeup(&c.fq))
			recvfrom(c.xsk_fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
		return;
	}
	now = xl_mono_ns();
	while (xsk_ring_prod__reserve(&c.fq, n, &idx_fq) != n)
		; /* FILL holds every RX frame: this fits */
	for (i = 0; i < n; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&c.rx, idx_rx++);
		uint64_t addr = xsk_umem__add_offset_to_addr(d->addr);

		handle_frame(xsk_umem__get_data(c.umem_area, addr), d->len, addr, now);
		*xsk_ring_prod__fill_addr(&c.fq, idx_fq++) = addr & ~((uint64_t)FRAME_SIZE - 1);
	}
	xsk_ring_prod__submit(&c.fq, n);
	xsk_ring_cons__release(&c.rx, n);
}

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void run(void)
{
	uint64_t total = (uint64_t)llround(cfg.rate * cfg.duration);
	double period = 1e9 / cfg.rate;
	uint64_t t0, now, drain_deadline = 0;

	if (total < 1)
		total = 1;
	/* room for every RTT up front: no realloc (a copy) in the middle of the run */
	c.rtts = malloc(total * sizeof(*c.rtts));
	if (!c.rtts)
		die(EXIT_ENV, "out of memory for %llu RTTs", (unsigned long long)total);
	c.cap_rtts = total;
	memset(c.slots, 0, NSLOTS * sizeof(*c.slots)); /* fault the pages in now */
	t0 = xl_mono_ns() + 1000000; /* 1 ms to settle */
	for (;;) {
		now = xl_mono_ns();
		if (stop_requested && c.submitted < total) {
			total = c.submitted;
			c.interrupted = true;
		}
		if (c.submitted < total) {
			uint64_t due = t0 + (uint64_t)(c.submitted * period);

			if (now >= due) {
				unsigned int n = 1;
				uint64_t lag = now - due;

				while (n < cfg.batch && c.submitted + n < total &&
				       t0 + (uint64_t)((c.submitted + n) * period) <= now)
					n++;
				if (lag > c.max_lag_ns)
					c.max_lag_ns = lag;
				n = queue_queries(n);
				if (n && lag > 10000)	/* more than 10 us behind schedule */
					c.late_sends += n;
			}
		}
		kick_tx();
		rx_batch();
		complete_tx();
		if (c.submitted >= total) {
			/* outstanding counts queries not yet taken by the kernel too */
			if (!drain_deadline)
				drain_deadline = now + (uint64_t)(cfg.timeout_ms * 1e6);
			if (c.outstanding == 0 || now >= drain_deadline)
				break;
			if (stop_requested > 0 && c.interrupted && now + 50000000 < drain_deadline)
				drain_deadline = now + 50000000; /* interrupted: drain briefly */
		}
	}
}

/* ------------------------------------------------------------- output */

static void mac_str(const uint8_t m[6], char *buf)
{
	sprintf(buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static void print_result(void)
{
	FILE *f = stdout;
	struct xdp_statistics xs;
	uint64_t xc[XL_LAT_NR_COUNTERS];
	bool have_xs, have_xc;
	double span_s, rate, mean = NAN, sd = NAN, sum = 0, sum2 = 0;
	uint64_t sent = c.consumed, lost, i;
	char smac[18], dmac[18], sip[INET_ADDRSTRLEN], dip[INET_ADDRSTRLEN];
	int lo, hi, k;

	have_xs = xl_xsk_statistics(c.xsk_fd, &xs);
	have_xc = xl_percpu_sum(c.bpf.stats_fd, XL_LAT_NR_COUNTERS, 1, xc);

	if (c.nrtts)
		qsort(c.rtts, c.nrtts, sizeof(*c.rtts), cmp_u32);
	for (i = 0; i < c.nrtts; i++) {
		double us = c.rtts[i] / 1000.0;

		sum += us;
		sum2 += us * us;
	}
	if (c.nrtts) {
		mean = sum / c.nrtts;
		sd = c.nrtts > 1 ? sqrt(fmax(0, (sum2 - c.nrtts * mean * mean) / (c.nrtts - 1))) : 0;
	}
	span_s = c.last_send_ns > c.first_send_ns ? (c.last_send_ns - c.first_send_ns) / 1e9 : 0;
	rate = span_s > 0 && sent > 1 ? (sent - 1) / span_s : 0;
	lost = sent > c.received ? sent - c.received : 0;
	mac_str(cfg.src_mac, smac);
	mac_str(cfg.dst_mac, dmac);
	inet_ntop(AF_INET, &cfg.src_ip, sip, sizeof(sip));
	inet_ntop(AF_INET, &cfg.dst_ip, dip, sizeof(dip));

	fprintf(f, "{\"client\": \"xl_latency\", \"version\": \"%s\", \"method\": \"af_xdp\", "
		"\"bind_mode\": \"%s\", \"xdp_mode\": \"%s\", \"rx_timestamp\": \"xdp_metadata\", "
		"\"tx_timestamp\": \"before_sendto\", \"interface\": ",
		XL_LAT_VERSION, c.zerocopy ? "zerocopy" : "copy", cfg.generic ? "generic" : "driver");
	xl_json_str(f, cfg.ifname);
	fprintf(f, ", \"ifindex\": %d, \"netns\": ", c.ifindex);
	if (cfg.netns)
		xl_json_str(f, cfg.netns);
	else
		fputs("null", f);
	fprintf(f, ", \"driver\": ");
	xl_json_str(f, c.driver);
	fprintf(f, ", \"queue\": %u, \"rx_queues\": %u, \"cpu\": ", cfg.queue, c.rx_queues);
	if (cfg.cpu >= 0)
		fprintf(f, "%d", cfg.cpu);
	else
		fputs("null", f);
	fprintf(f, ", \"size\": %d, \"qname\": ", c.frame_len);
	xl_json_str(f, cfg.qname);
	fprintf(f, ", \"src_mac\": \"%s\", \"dst_mac\": \"%s\", \"src_ip\": \"%s\", \"dst_ip\": \"%s\", "
		"\"src_port\": %u, \"dst_port\": %u", smac, dmac, sip, dip, cfg.src_port, cfg.dst_port);
	fprintf(f, ", \"requested_rate_pps\": %.3f, \"requested_duration_s\": %.6f", cfg.rate, cfg.duration);
	fprintf(f, ", \"sent\": %llu, \"received\": %llu, \"invalid\": %llu, \"unmatched\": %llu, "
		"\"lost\": %llu, \"loss\": %.6f",
		(unsigned long long)sent, (unsigned long long)c.received, (unsigned long long)c.invalid,
		(unsigned long long)c.unmatched, (unsigned long long)lost, sent ? (double)lost / sent : 0.0);
	fprintf(f, ", \"rate_pps\": %.1f, \"duration_s\": %.6f", rate, rate > 0 ? sent / rate : span_s);
	fprintf(f, ", \"rtt_us_p50\": ");
	json_num(f, percentile(0.50));
	fprintf(f, ", \"rtt_us_p90\": ");
	json_num(f, percentile(0.90));
	fprintf(f, ", \"rtt_us_p99\": ");
	json_num(f, percentile(0.99));
	fprintf(f, ", \"rtt_us_p999\": ");
	json_num(f, percentile(0.999));
	fprintf(f, ", \"rtt_us_mean\": ");
	json_num(f, mean);
	fprintf(f, ", \"rtt_us_stddev\": ");
	json_num(f, sd);
	fprintf(f, ", \"rtt_us_min\": ");
	json_num(f, c.nrtts ? c.rtts[0] / 1000.0 : NAN);
	fprintf(f, ", \"rtt_us_max\": ");
	json_num(f, c.nrtts ? c.rtts[c.nrtts - 1] / 1000.0 : NAN);

	fprintf(f, ", \"invalid_reasons\": {");
	for (k = 1, lo = 0; k < RS_NREASONS; k++) {
		if (!c.reasons[k])
			continue;
		fprintf(f, "%s\"%s\": %llu", lo++ ? ", " : "", reason_names[k], (unsigned long long)c.reasons[k]);
	}
	fprintf(f, "}, \"invalid_attributed\": %llu", (unsigned long long)c.invalid_attributed);
	if (c.have_link && read_link_stats(&c.link1))
		/* 32-bit counters: the deltas are right modulo 2^32 */
		fprintf(f, ", \"link\": {\"tx_packets\": %u, \"tx_dropped\": %u, \"rx_packets\": %u, "
			"\"rx_dropped\": %u}", c.link1.tx_packets - c.link0.tx_packets,
			c.link1.tx_dropped - c.link0.tx_dropped, c.link1.rx_packets - c.link0.rx_packets,
			c.link1.rx_dropped - c.link0.rx_dropped);

	if (cfg.hist) {
		fprintf(f, ", \"rtt_us_hist\": {\"edges\": [");
		for (lo = 0; lo < HIST_BINS && !c.hist[lo]; lo++)
			;
		for (hi = HIST_BINS - 1; hi >= 0 && !c.hist[hi]; hi--)
			;
		if (lo <= hi) {
			for (k = lo; k <= hi + 1; k++)
				fprintf(f, "%s%.6g", k > lo ? ", " : "",
					HIST_MIN_US * pow(10.0, (double)k / HIST_PER_DECADE));
		}
		fprintf(f, "], \"counts\": [");
		for (k = lo; k <= hi; k++)
			fprintf(f, "%s%llu", k > lo ? ", " : "", (unsigned long long)c.hist[k]);
		fprintf(f, "]}");
	}
	if (cfg.samples) {
		uint64_t n = c.seen_for_reservoir < cfg.samples ? c.seen_for_reservoir : cfg.samples;

		fprintf(f, ", \"rtt_us_samples\": [");
		for (i = 0; i < n; i++)
			fprintf(f, "%s%.3f", i ? ", " : "", c.reservoir[i]);
		fprintf(f, "]");
	}
	fprintf(f, ", \"rx_frames\": %llu, \"rx_timestamp_fallbacks\": %llu, \"late_sends\": %llu, "
		"\"max_send_lag_us\": %.3f, \"tx_kicks\": %llu, \"tx_kick_errors\": %llu, \"tx_pool_empty\": %llu",
		(unsigned long long)c.rx_frames, (unsigned long long)c.ts_fallbacks,
		(unsigned long long)c.late_sends, c.max_lag_ns / 1000.0, (unsigned long long)c.tx_kicks,
		(unsigned long long)c.tx_kick_errors, (unsigned long long)c.tx_pool_empty);
	if (have_xs) {
		fprintf(f, ", \"xsk\": ");
		xl_json_xsk_statistics(f, &xs);
	}
	if (have_xc)
		fprintf(f, ", \"xdp\": {\"prog_id\": %u, \"to_socket\": %llu, \"not_taken\": %llu, \"passed\": %llu, "
			"\"no_metadata\": %llu}", c.bpf.prog_id, (unsigned long long)xc[XL_LAT_TO_SOCKET],
			(unsigned long long)xc[XL_LAT_NOT_TAKEN], (unsigned long long)xc[XL_LAT_PASSED],
			(unsigned long long)xc[XL_LAT_NO_META]);
	{
		double cpu_s = 0;

		xl_process_cpu_s(&cpu_s);
		fprintf(f, ", \"cpu_s\": %.6f", cpu_s);
	}
	fprintf(f, ", \"interrupted\": %s, \"wall_s\": %.6f}\n", c.interrupted ? "true" : "false",
		xl_now_real() - c.wall_start);
	fflush(f);
}

static void dump_frame(void)
{
	uint8_t buf[MAX_SIZE];
	int i;

	build_template();
	memcpy(buf, c.frame, c.frame_len);
	stamp_query(buf, (uint32_t)cfg.dump_seq);
	for (i = 0; i < c.frame_len; i++)
		printf("%02x", buf[i]);
	putchar('\n');
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	libbpf_set_print(libbpf_quiet);
	if (cfg.dump_seq >= 0) {
		dump_frame();
		return 0;
	}
	c.wall_start = xl_now_real();
	c.rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();

	xl_process_setup(on_signal);

	if (geteuid() != 0)
		die(EXIT_ENV, "xl-latency needs root (AF_XDP, BPF and network namespaces)");
	if (cfg.cpu >= 0 && xl_pin_cpu(cfg.cpu))
		die(EXIT_ENV, "cannot pin the client to CPU %d: %s", cfg.cpu, strerror(errno));
	enter_netns();
	c.ifindex = (int)if_nametoindex(cfg.ifname);
	if (!c.ifindex)
		die(EXIT_ENV, "interface %s does not exist", where());
	read_interface();
	build_template();
	c.slots = calloc(NSLOTS, sizeof(*c.slots));
	c.reservoir = cfg.samples ? calloc(cfg.samples, sizeof(double)) : NULL;
	if (!c.slots || (cfg.samples && !c.reservoir))
		die(EXIT_ENV, "out of memory");
	load_xdp();
	create_socket();
	attach_xdp();
	if (cfg.verbose)
		fprintf(stderr, "xl-latency: %s: %s XDP (prog id %u), %s mode, %.0f queries/s for %g s, %d-byte "
			"frames\n", where(), cfg.generic ? "generic" : "driver", c.bpf.prog_id,
			c.zerocopy ? "zero-copy" : "copy", cfg.rate, cfg.duration, c.frame_len);
	c.have_link = read_link_stats(&c.link0);
	run();
	print_result();
	cleanup();
	return 0;
}
