// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * xl-loadgen: a load generator for the emulated lab.
 *
 * Frames are injected into an interface (normally one end of a veth pair) by
 * BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES: the kernel runs a tiny
 * XDP program (xl_loadgen.bpf.c) on frames from a recycled page pool and the
 * program redirects each frame into the interface. No skb is built and no
 * socket is involved, so one core offers several Mpps.
 *
 * Each test-run call has a fixed set-up/tear-down cost (a page pool per call,
 * ~20-30 ms, mostly waiting), so every sending thread makes one long call
 * (up to INT_MAX frames) and the main thread ends it with a signal when the
 * duration is over (or on SIGINT/SIGTERM): the kernel checks for signals
 * between batches and returns EINTR. The XDP program counts the frames it
 * redirected in its own .bss (one program instance per thread), so the count
 * is exact however the call ended.
 *
 * Paced mode (--rate): the XDP program drops (unsent, uncounted) the frames
 * that come up long before the next burst is due and busy-waits the last
 * ~50 us before each burst of --burst frames (bpf_ktime_get_ns); the
 * test-run batch size equals the burst, so each burst is flushed to the
 * device at once. A thread's call ends when its rate x duration frames are
 * out (the main thread signals it).
 *
 * Flows (--flows N): frames spread over N UDP source ports. On a veth whose
 * peer has several RX queues, veth picks the queue by the sending CPU, not by
 * the flow; so flow f is steered (cpumap) to a CPU whose number selects RX
 * queue f mod queues, emulating RSS (see xl_loadgen.bpf.c).
 *
 * Progress (--progress-file PATH): about once a second one JSON line
 * {"elapsed_s", "duration_s", "sent", "pps"} is appended; the file is removed
 * at the end.
 *
 * At the end one JSON object is printed on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/sockios.h>
#include <math.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define XL_USER_ERR_PREFIX "xl-loadgen: error: "
#include "xdplab/user.h"
#include "xl_loadgen.h"
#include "xl_loadgen.skel.h"

#define XL_LG_VERSION "1.0"
#define MIN_SIZE 60	/* frame length without FCS: 64 bytes on the wire */
#define MAX_SIZE 1518	/* veth accepts MTU + 14 + VLAN_HLEN */
#define MAX_DURATION 86400.0
#define MAX_THREADS 64
#define BATCH 64
#define PACED_SLACK_S 0.2	/* paced: how far behind a thread may catch up */
#define SPIN_NS 50000		/* paced: longest busy-wait inside one program run */
#define NICE_KEEP 100	/* --nice not given */
#define ETH_HDR 14
#define IP_HDR 20
#define UDP_HDR 8
#define DNS_HDR 12

struct config {
	const char *ifname;
	int ifindex;
	const char *netns;
	int size;
	bool size_given;
	double duration;
	double rate;		/* pps over all threads, 0 = full speed */
	int threads;
	int cpus[MAX_THREADS];
	int ncpus;
	uint8_t src_mac[6], dst_mac[6];
	struct in_addr src_ip, dst_ip;
	uint16_t src_port, dst_port;
	bool src_port_given, dst_port_given;
	bool dns;
	const char *qname;
	int batch;		/* full speed: test-run batch size */
	int burst;		/* paced: frames per burst (= batch), 0 = auto */
	int flows;		/* UDP source ports src_port .. src_port + flows - 1 */
	bool steer;		/* spread flows over a veth peer's RX queues */
	const char *progress_file;
	double warmup;		/* s after the first frame before the window opens, < 0 = auto */
	int nice;		/* scheduling priority of all threads, NICE_KEEP = inherited */
	bool verbose;
};

/* Steering over the peer's RX queues (veth): queue i of the ones reached is
 * fed from CPU queue_cpu[i]. */
static struct {
	int rx_queues;		/* the peer's RX queues, 0 = not a veth */
	int nqueues;		/* queues reached (one CPU each) */
	int queue[XL_LG_MAX_QUEUES];
	int queue_cpu[XL_LG_MAX_QUEUES];
	int map_fd;		/* the shared cpumap, -1 = none */
} steer = {.map_fd = -1};

struct thread_ctx {
	pthread_t tid;
	int index;
	int cpu;		/* -1 = not pinned */
	double rate;		/* this thread's share, 0 = full speed */
	int burst;		/* frames per burst and per test-run batch */
	uint64_t total;		/* paced: frames to send, 0 = until stopped */
	struct xl_loadgen_bpf *skel;
	struct xl_lg_state *state;	/* the program's .bss, mmap'ed */
	int prog_fd;
	uint64_t calls;
	double start_s, end_s;
	atomic_int done;
	int err;		/* errno of a failed call, 0 = fine */
	char errmsg[160];
};

static struct config cfg = {
	.size = MIN_SIZE,
	.duration = 10.0,
	.threads = 1,
	.src_mac = {0x02, 0x00, 0xc6, 0x12, 0x00, 0x01},
	.dst_mac = {0x02, 0x00, 0xc6, 0x12, 0x00, 0x02},
	.src_port = 9,
	.dst_port = 9,
	.qname = "xl-query.example",
	.batch = BATCH,
	.flows = 1,
	.steer = true,
	.warmup = -1,
	.nice = NICE_KEEP,
};

static uint8_t frame[MAX_SIZE];
static int hdr_len;		/* bytes the XDP program rewrites on every run */
static atomic_int stop_requested;

static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "xl-loadgen: error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

/* ---------------------------------------------------------------- options */

static void usage(FILE *out)
{
	fprintf(out,
"Usage: xl-loadgen (--interface NAME | --ifindex N) [options]\n"
"Inject UDP (or DNS query) frames into an interface with XDP live frames.\n"
"\n"
"  -i, --interface NAME   interface to send on (the generator's veth end)\n"
"      --ifindex N        same, by index\n"
"  -n, --netns NAME       enter network namespace NAME (/run/netns/NAME) first\n"
"  -s, --size BYTES       frame length without FCS, %d..%d (default %d;\n"
"                         with --dns the query's own length)\n"
"  -d, --duration SEC     how long to send (default 10, max %.0f)\n"
"  -r, --rate PPS         offered rate over all threads; 0 = full speed (default)\n"
"  -t, --threads N        sending threads (default 1)\n"
"  -c, --cpu LIST         pin thread i to the i-th CPU of LIST, e.g. 0 or 0,1\n"
"      --src-mac MAC      (default 02:00:c6:12:00:01)\n"
"      --dst-mac MAC      (default 02:00:c6:12:00:02)\n"
"      --src-ip ADDR      (default 198.18.0.1)\n"
"      --dst-ip ADDR      (default 198.18.0.2)\n"
"      --src-port N       (default 9; 40000 with --dns)\n"
"      --dst-port N       (default 9; 53 with --dns)\n"
"      --dns              send DNS A queries (UDP port 53) instead of plain UDP\n"
"      --qname NAME       name to query with --dns (default xl-query.example)\n"
"      --batch N          full speed: frames per test-run batch, 1..256 (default 64)\n"
"      --burst N          paced: frames sent back to back, 1..256 (default: auto)\n"
"      --flows N          spread frames over N UDP source ports from --src-port (default 1)\n"
"      --no-steer         on a veth with several RX queues, do not steer flows over them\n"
"      --progress-file PATH  append a JSON progress line about every second; removed at the end\n"
"      --nice N           run at this priority, -20..19 (default: inherited)\n"
"      --warmup SEC       the measuring window opens SEC after the first frame\n"
"                         (default: a quarter of --duration, at most 0.5)\n"
"  -v, --verbose          libbpf debug output on stderr\n"
"  -h, --help\n"
"\n"
"Prints one JSON object on stdout at the end (also after SIGINT/SIGTERM).\n",
		MIN_SIZE, MAX_SIZE, MIN_SIZE, MAX_DURATION);
}

static void parse_mac(const char *s, uint8_t *mac, const char *what)
{
	unsigned int b[6];
	char extra;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &extra) != 6)
		die(2, "%s '%s' is not a MAC address like 02:00:c6:12:00:01", what, s);
	for (int i = 0; i < 6; i++) {
		if (b[i] > 0xff)
			die(2, "%s '%s' is not a MAC address like 02:00:c6:12:00:01", what, s);
		mac[i] = (uint8_t)b[i];
	}
}

static long parse_long(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || *end)
		die(2, "%s '%s' is not an integer", what, s);
	if (v < lo || v > hi)
		die(2, "%s %ld is out of range (%ld..%ld)", what, v, lo, hi);
	return v;
}

static double parse_double(const char *s, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v))
		die(2, "%s '%s' is not a number", what, s);
	return v;
}

static void parse_cpus(const char *s)
{
	char *copy = strdup(s), *tok, *save = NULL;
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);

	cfg.ncpus = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (cfg.ncpus == MAX_THREADS)
			die(2, "--cpu lists more than %d CPUs", MAX_THREADS);
		cfg.cpus[cfg.ncpus++] = (int)parse_long(tok, 0, ncpu - 1, "--cpu");
	}
	free(copy);
	if (!cfg.ncpus)
		die(2, "--cpu '%s' names no CPU", s);
}

enum {
	OPT_IFINDEX = 256, OPT_SRC_MAC, OPT_DST_MAC, OPT_SRC_IP, OPT_DST_IP,
	OPT_SRC_PORT, OPT_DST_PORT, OPT_DNS, OPT_QNAME, OPT_BATCH, OPT_BURST,
	OPT_FLOWS, OPT_NO_STEER, OPT_PROGRESS, OPT_WARMUP, OPT_NICE,
};

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{"interface", required_argument, NULL, 'i'},
		{"ifindex", required_argument, NULL, OPT_IFINDEX},
		{"netns", required_argument, NULL, 'n'},
		{"size", required_argument, NULL, 's'},
		{"duration", required_argument, NULL, 'd'},
		{"rate", required_argument, NULL, 'r'},
		{"threads", required_argument, NULL, 't'},
		{"cpu", required_argument, NULL, 'c'},
		{"src-mac", required_argument, NULL, OPT_SRC_MAC},
		{"dst-mac", required_argument, NULL, OPT_DST_MAC},
		{"src-ip", required_argument, NULL, OPT_SRC_IP},
		{"dst-ip", required_argument, NULL, OPT_DST_IP},
		{"src-port", required_argument, NULL, OPT_SRC_PORT},
		{"dst-port", required_argument, NULL, OPT_DST_PORT},
		{"dns", no_argument, NULL, OPT_DNS},
		{"qname", required_argument, NULL, OPT_QNAME},
		{"batch", required_argument, NULL, OPT_BATCH},
		{"burst", required_argument, NULL, OPT_BURST},
		{"flows", required_argument, NULL, OPT_FLOWS},
		{"no-steer", no_argument, NULL, OPT_NO_STEER},
		{"progress-file", required_argument, NULL, OPT_PROGRESS},
		{"warmup", required_argument, NULL, OPT_WARMUP},
		{"nice", required_argument, NULL, OPT_NICE},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	int c;

	inet_pton(AF_INET, "198.18.0.1", &cfg.src_ip);
	inet_pton(AF_INET, "198.18.0.2", &cfg.dst_ip);
	while ((c = getopt_long(argc, argv, "i:n:s:d:r:t:c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			cfg.ifname = optarg;
			break;
		case OPT_IFINDEX:
			cfg.ifindex = (int)parse_long(optarg, 1, INT_MAX, "--ifindex");
			break;
		case 'n':
			cfg.netns = optarg;
			break;
		case 's':
			cfg.size = (int)parse_long(optarg, LONG_MIN, LONG_MAX, "--size");
			if (cfg.size < MIN_SIZE || cfg.size > MAX_SIZE)
				die(2, "--size %d is out of range: frame length without FCS must be %d..%d bytes",
				    cfg.size, MIN_SIZE, MAX_SIZE);
			cfg.size_given = true;
			break;
		case 'd':
			cfg.duration = parse_double(optarg, "--duration");
			if (cfg.duration <= 0 || cfg.duration > MAX_DURATION)
				die(2, "--duration %s is out of range (0 < seconds <= %.0f)", optarg,
				    MAX_DURATION);
			break;
		case 'r':
			cfg.rate = parse_double(optarg, "--rate");
			if (cfg.rate < 0)
				die(2, "--rate %s is negative (0 = full speed)", optarg);
			break;
		case 't':
			cfg.threads = (int)parse_long(optarg, 1, MAX_THREADS, "--threads");
			break;
		case 'c':
			parse_cpus(optarg);
			break;
		case OPT_SRC_MAC:
			parse_mac(optarg, cfg.src_mac, "--src-mac");
			break;
		case OPT_DST_MAC:
			parse_mac(optarg, cfg.dst_mac, "--dst-mac");
			break;
		case OPT_SRC_IP:
			if (inet_pton(AF_INET, optarg, &cfg.src_ip) != 1)
				die(2, "--src-ip '%s' is not an IPv4 address", optarg);
			break;
		case OPT_DST_IP:
			if (inet_pton(AF_INET, optarg, &cfg.dst_ip) != 1)
				die(2, "--dst-ip '%s' is not an IPv4 address", optarg);
			break;
		case OPT_SRC_PORT:
			cfg.src_port = (uint16_t)parse_long(optarg, 0, 65535, "--src-port");
			cfg.src_port_given = true;
			break;
		case OPT_DST_PORT:
			cfg.dst_port = (uint16_t)parse_long(optarg, 0, 65535, "--dst-port");
			cfg.dst_port_given = true;
			break;
		case OPT_DNS:
			cfg.dns = true;
			break;
		case OPT_QNAME:
			cfg.qname = optarg;
			break;
		case OPT_BATCH:
			cfg.batch = (int)parse_long(optarg, 1, 256, "--batch");
			break;
		case OPT_BURST:
			cfg.burst = (int)parse_long(optarg, 1, 256, "--burst");
			break;
		case OPT_FLOWS:
			cfg.flows = (int)parse_long(optarg, 1, 65536, "--flows");
			break;
		case OPT_NO_STEER:
			cfg.steer = false;
			break;
		case OPT_NICE:
			cfg.nice = (int)parse_long(optarg, -20, 19, "--nice");
			break;
		case OPT_WARMUP:
			cfg.warmup = parse_double(optarg, "--warmup");
			if (cfg.warmup < 0)
				die(2, "--warmup %s is negative", optarg);
			break;
		case OPT_PROGRESS:
			if (!*optarg)
				die(2, "--progress-file is empty");
			cfg.progress_file = optarg;
			break;
		case 'v':
			cfg.verbose = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc)
		die(2, "unexpected argument '%s' (see --help)", argv[optind]);
	if (!cfg.ifname && !cfg.ifindex)
		die(2, "no interface given: use --interface NAME or --ifindex N");
	if (cfg.dns && !cfg.dst_port_given)
		cfg.dst_port = 53;
	if (cfg.dns && !cfg.src_port_given)
		cfg.src_port = 40000;
	if (cfg.warmup < 0)
		cfg.warmup = cfg.duration / 4 < 0.5 ? cfg.duration / 4 : 0.5;
	if (cfg.warmup >= cfg.duration)
		die(2, "--warmup %g s leaves no window in --duration %g s", cfg.warmup, cfg.duration);
	if (cfg.src_port + cfg.flows - 1 > 65535)
		die(2, "--flows %d from --src-port %u goes past port 65535", cfg.flows, cfg.src_port);
}

/* ------------------------------------------------------------ the frame */

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, int len)
{
	for (int i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	return sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/* Encode a dotted name as DNS labels; returns the wire length or -1. */
static int encode_qname(const char *name, uint8_t *out, int max)
{
	int n = 0;
	const char *p = name;

	while (*p) {
		const char *dot = strchr(p, '.');
		int len = dot ? (int)(dot - p) : (int)strlen(p);

		if (len == 0 || len > 63 || n + 1 + len + 1 > max)
			return -1;
		out[n++] = (uint8_t)len;
		memcpy(out + n, p, len);
		n += len;
		p += len;
		if (*p == '.')
			p++;
	}
	if (n + 1 > max)
		return -1;
	out[n++] = 0;
	return n;
}

static void build_frame(void)
{
	uint8_t *eth = frame, *ip = frame + ETH_HDR, *udp = ip + IP_HDR, *pl = udp + UDP_HDR;
	int l4_len;

	memset(frame, 0, sizeof(frame));
	if (cfg.dns) {
		uint8_t qname[XL_LG_MAX_HDR];
		int max = XL_LG_MAX_HDR - (ETH_HDR + IP_HDR + UDP_HDR + DNS_HDR + 4);
		int qlen = encode_qname(cfg.qname, qname, max);
		int natural;

		if (qlen < 0)
			die(2, "--qname '%s' is not a DNS name of at most %d bytes on the wire",
			    cfg.qname, max);
		natural = ETH_HDR + IP_HDR + UDP_HDR + DNS_HDR + qlen + 4;
		if (!cfg.size_given)
			cfg.size = natural < MIN_SIZE ? MIN_SIZE : natural;
		else if (cfg.size < natural)
			die(2, "--size %d is too small for a DNS query for '%s' (%d bytes)",
			    cfg.size, cfg.qname, natural);
		put16(pl, 0x584c);		/* id "XL" */
		put16(pl + 2, 0x0100);		/* standard query, RD */
		put16(pl + 4, 1);		/* QDCOUNT */
		memcpy(pl + DNS_HDR, qname, qlen);
		put16(pl + DNS_HDR + qlen, 1);	/* QTYPE A */
		put16(pl + DNS_HDR + qlen + 2, 1); /* QCLASS IN */
		l4_len = UDP_HDR + DNS_HDR + qlen + 4;
		hdr_len = natural;
	} else {
		/* Plain UDP: the payload fills the frame; a byte pattern after the
		 * headers, rewritten only as far as the header region reaches. */
		for (int i = 0; pl + i < frame + cfg.size; i++)
			pl[i] = (uint8_t)i;
		l4_len = cfg.size - ETH_HDR - IP_HDR;
		hdr_len = ETH_HDR + IP_HDR + UDP_HDR;
	}
	memcpy(eth, cfg.dst_mac, 6);
	memcpy(eth + 6, cfg.src_mac, 6);
	put16(eth + 12, ETH_P_IP);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(IP_HDR + l4_len));
	put16(ip + 6, 0x4000);		/* DF */
	ip[8] = 64;
	ip[9] = 17;			/* UDP */
	memcpy(ip + 12, &cfg.src_ip, 4);
	memcpy(ip + 16, &cfg.dst_ip, 4);
	put16(ip + 10, csum_fold(csum_add(0, ip, IP_HDR)));
	put16(udp, cfg.src_port);
	put16(udp + 2, cfg.dst_port);
	put16(udp + 4, (uint16_t)l4_len);
	/* Full UDP checksum. With --dns the whole datagram is rewritten on every
	 * run, so it stays valid even after a responder edited the recycled
	 * frame; a plain UDP frame's payload is written once per page, so a
	 * receiver that edits the payload (none of the lab's programs does)
	 * would leave later copies with a wrong checksum. */
	{
		uint32_t sum = csum_add(0, ip + 12, 8);
		uint16_t c;

		sum += 17 + (uint32_t)l4_len;
		sum = csum_add(sum, udp, l4_len);
		c = csum_fold(sum);
		put16(udp + 6, c ? c : 0xffff);
	}
}

/* -------------------------------------------------------------- netns/if */

static void enter_netns(const char *name)
{
	char path[PATH_MAX];
	int fd;

	if (strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		die(2, "--netns '%s' is not a namespace name", name);
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		snprintf(path, sizeof(path), "/var/run/netns/%s", name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0 && errno == ENOENT)
		die(1, "network namespace '%s' not found (no /run/netns/%s); create it first, "
		    "e.g. with 'ip netns add %s'", name, name, name);
	if (fd < 0)
		die(1, "cannot open network namespace '%s' (%s): %s", name, path, strerror(errno));
	if (setns(fd, CLONE_NEWNET))
		die(1, "cannot enter network namespace '%s': %s", name, strerror(errno));
	close(fd);
}

static void resolve_interface(void)
{
	char name[IF_NAMESIZE];
	struct ifreq ifr;
	int sock;

	if (cfg.ifname) {
		int idx = (int)if_nametoindex(cfg.ifname);

		if (!idx)
			die(1, "interface '%s' not found in %s%s", cfg.ifname,
			    cfg.netns ? "network namespace " : "the current network namespace",
			    cfg.netns ? cfg.netns : "");
		if (cfg.ifindex && cfg.ifindex != idx)
			die(2, "--interface %s has ifindex %d, not --ifindex %d", cfg.ifname, idx,
			    cfg.ifindex);
		cfg.ifindex = idx;
	} else {
		if (!if_indextoname((unsigned int)cfg.ifindex, name))
			die(1, "no interface with ifindex %d in %s%s", cfg.ifindex,
			    cfg.netns ? "network namespace " : "the current network namespace",
			    cfg.netns ? cfg.netns : "");
		cfg.ifname = strdup(name);
	}
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		die(1, "socket: %s", strerror(errno));
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", cfg.ifname);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr) == 0 && !(ifr.ifr_flags & IFF_UP))
		die(1, "interface '%s' is down: redirected frames would be dropped; "
		    "bring it up first", cfg.ifname);
	close(sock);
}

/* Driver counters for frames redirected into the device (veth names them
 * tx_queue_<n>_xdp_xmit and tx_queue_<n>_xdp_xmit_errors: frames that did and
 * did not fit into the peer's ring). Returns false when the driver has none. */
struct dev_counters {
	bool valid;
	bool veth;
	int queues;		/* tx_queue_<n> entries: the peer's RX queues (veth) */
	uint64_t xdp_xmit, xdp_xmit_errors;
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && !strcmp(s + ls - lx, suffix);
}

static struct dev_counters read_dev_counters(void)
{
	struct dev_counters out = {0};
	struct ethtool_drvinfo drv = {.cmd = ETHTOOL_GDRVINFO};
	struct ethtool_gstrings *strs = NULL;
	struct ethtool_stats *stats = NULL;
	struct ifreq ifr;
	unsigned int n;
	int sock;

	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return out;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", cfg.ifname);
	ifr.ifr_data = (void *)&drv;
	if (ioctl(sock, SIOCETHTOOL, &ifr) || !drv.n_stats)
		goto done;
	out.veth = !strcmp(drv.driver, "veth");
	n = drv.n_stats;
	strs = calloc(1, sizeof(*strs) + (size_t)n * ETH_GSTRING_LEN);
	stats = calloc(1, sizeof(*stats) + (size_t)n * sizeof(uint64_t));
	if (!strs || !stats)
		goto done;
	strs->cmd = ETHTOOL_GSTRINGS;
	strs->string_set = ETH_SS_STATS;
	strs->len = n;
	ifr.ifr_data = (void *)strs;
	if (ioctl(sock, SIOCETHTOOL, &ifr))
		goto done;
	stats->cmd = ETHTOOL_GSTATS;
	stats->n_stats = n;
	ifr.ifr_data = (void *)stats;
	if (ioctl(sock, SIOCETHTOOL, &ifr))
		goto done;
	for (unsigned int i = 0; i < n && i < strs->len && i < stats->n_stats; i++) {
		char name[ETH_GSTRING_LEN + 1];

		memcpy(name, strs->data + (size_t)i * ETH_GSTRING_LEN, ETH_GSTRING_LEN);
		name[ETH_GSTRING_LEN] = 0;
		if (strncmp(name, "tx_queue_", 9))
			continue;
		if (ends_with(name, "_xdp_xmit")) {
			out.xdp_xmit += stats->data[i];
			out.valid = true;
			out.queues++;
		} else if (ends_with(name, "_xdp_xmit_errors")) {
			out.xdp_xmit_errors += stats->data[i];
		}
	}
done:
	free(strs);
	free(stats);
	close(sock);
	return out;
}

/* ------------------------------------------------------------ BPF program */

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && !cfg.verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

/* One program instance per thread: its .bss is that thread's counter. */
static void load_program(struct thread_ctx *t)
{
	struct xl_loadgen_bpf *skel;
	int nwords = hdr_len / 8, tail = hdr_len % 8;
	int err;

	skel = xl_loadgen_bpf__open();
	if (!skel)
		die(1, "cannot open the embedded XDP program: %s", strerror(errno));
	skel->rodata->cfg_ifindex = (__u32)cfg.ifindex;
	skel->rodata->cfg_nwords = (__u32)nwords;
	for (int i = 0; i < nwords; i++) {
		__u64 w;

		memcpy(&w, frame + i * 8, 8);
		skel->rodata->cfg_words[i] = w;
	}
	if (tail) {
		__u64 w;

		memcpy(&w, frame + hdr_len - 8, 8);
		skel->rodata->cfg_tail_off = (__u32)(hdr_len - 8);
		skel->rodata->cfg_tail = w;
	}
	skel->rodata->cfg_flows = (__u32)cfg.flows;
	skel->rodata->cfg_sport = cfg.src_port;
	skel->rodata->cfg_ucsum = (__u16)(frame[XL_LG_UCSUM_OFF] << 8 | frame[XL_LG_UCSUM_OFF + 1]);
	bpf_map__set_max_entries(skel->maps.xl_lg_cpus, (__u32)libbpf_num_possible_cpus());
	bpf_program__set_autoload(skel->progs.xl_loadgen_to_dev, steer.nqueues > 1);
	if (steer.nqueues > 1) {
		skel->rodata->cfg_queues = (__u32)steer.nqueues;
		skel->rodata->cfg_rx_queues = (__u32)steer.rx_queues;
		for (int i = 0; i < steer.nqueues; i++) {
			skel->rodata->cfg_queue_id[i] = (__u32)steer.queue[i];
			skel->rodata->cfg_queue_cpu[i] = (__u32)steer.queue_cpu[i];
		}
		if (steer.map_fd >= 0 && bpf_map__reuse_fd(skel->maps.xl_lg_cpus, steer.map_fd))
			die(1, "cannot share the steering cpumap: %s", strerror(errno));
	}
	if (t->rate > 0) {
		double gap_ns = 1e9 * t->burst / t->rate;

		skel->rodata->cfg_gap_fp = (__u64)llround(gap_ns * 65536.0);
		skel->rodata->cfg_burst = (__u32)t->burst;
		/* A sender that was off the CPU (a busy machine) catches up at
		 * twice the rate while it is at most 200 ms (and 4 bursts)
		 * behind; further behind it restarts its schedule, and the
		 * achieved rate shows the loss. */
		skel->rodata->cfg_catchup_ns = (__u64)llround(gap_ns / 2);
		skel->rodata->cfg_spin_ns = SPIN_NS;
		skel->rodata->cfg_total = t->total;
		skel->rodata->cfg_slack_ns = (__u64)(gap_ns * 4 > PACED_SLACK_S * 1e9 ?
						     gap_ns * 4 : PACED_SLACK_S * 1e9);
	}
	err = xl_loadgen_bpf__load(skel);
	if (err)
		die(1, "cannot load the XDP program (%s); are you root with BPF enabled? "
		    "run with --verbose for the verifier log", strerror(-err));
	t->skel = skel;
	t->state = &skel->bss->state;
	t->prog_fd = bpf_program__fd(skel->progs.xl_loadgen);
	if (steer.nqueues > 1 && steer.map_fd < 0) {
		/* one cpumap for all threads: an entry (and a kthread) per CPU used */
		struct bpf_cpumap_val val = {
			.qsize = 2048,
			.bpf_prog.fd = bpf_program__fd(skel->progs.xl_loadgen_to_dev),
		};

		steer.map_fd = bpf_map__fd(skel->maps.xl_lg_cpus);
		for (int i = 0; i < steer.nqueues; i++) {
			__u32 cpu = (__u32)steer.queue_cpu[i];

			if (bpf_map_update_elem(steer.map_fd, &cpu, &val, 0))
				die(1, "cannot add CPU %u to the steering cpumap: %s", cpu, strerror(errno));
		}
	}
}

/* Which CPU feeds which of the peer's RX queues: veth takes the queue
 * (sending CPU mod RX queues), so queue q is reached from the lowest CPU c
 * this process may use with c mod queues == q; queues no CPU reaches are
 * left out. */
static void plan_steering(int rx_queues)
{
	cpu_set_t allowed;

	steer.rx_queues = rx_queues;
	steer.nqueues = 0;
	if (rx_queues < 2 || !cfg.steer)
		return;
	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		die(1, "sched_getaffinity: %s", strerror(errno));
	for (int q = 0; q < rx_queues && steer.nqueues < XL_LG_MAX_QUEUES; q++) {
		for (int c = q; c < CPU_SETSIZE && c < XL_LG_MAX_CPUS; c += rx_queues) {
			if (CPU_ISSET(c, &allowed)) {
				steer.queue[steer.nqueues] = q;
				steer.queue_cpu[steer.nqueues++] = c;
				break;
			}
		}
	}
	if (steer.nqueues < 2)
		steer.nqueues = 0;	/* one queue reached: send directly */
}

/* One test run of up to n frames, batch frames at a time; 0 or -errno. */
static int test_run(struct thread_ctx *t, uint32_t n)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = frame,
		.data_size_in = (__u32)cfg.size,
		.repeat = (int)n,
		.flags = BPF_F_TEST_XDP_LIVE_FRAMES,
		.batch_size = (__u32)t->burst,
	);

	return bpf_prog_test_run_opts(t->prog_fd, &opts) ? -errno : 0;
}

/* ------------------------------------------------------------ threads */

static uint64_t sent(const struct thread_ctx *t)
{
	return __atomic_load_n(&t->state->sent, __ATOMIC_RELAXED);
}

static void *thread_main(void *arg)
{
	struct thread_ctx *t = arg;

	if (t->cpu >= 0) {
		cpu_set_t set;
		int err;

		CPU_ZERO(&set);
		CPU_SET(t->cpu, &set);
		err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
		if (err) {
			t->err = err;
			snprintf(t->errmsg, sizeof(t->errmsg), "cannot pin thread %d to CPU %d: %s",
				 t->index, t->cpu, strerror(err));
			atomic_store(&stop_requested, 1);
			goto out;
		}
	}
	t->start_s = xl_now_mono();
	while (!atomic_load(&stop_requested) && (!t->total || sent(t) < t->total)) {
		int err;

		/* Paced runs poll (drop frames that are not due yet), so their
		 * repeat count is no frame count either: the call runs until the
		 * main thread ends it. */
		err = test_run(t, (uint32_t)INT_MAX);
		t->calls++;
		if (err == -EINTR)
			continue;	/* stopped, or a stray signal: the loop decides */
		if (err) {
			t->err = -err;
			snprintf(t->errmsg, sizeof(t->errmsg),
				 "BPF_PROG_TEST_RUN failed on thread %d: %s", t->index,
				 strerror(-err));
			atomic_store(&stop_requested, 1);
			break;
		}
	}
out:
	t->end_s = xl_now_mono();
	if (!t->start_s)
		t->start_s = t->end_s;
	atomic_store(&t->done, 1);
	return NULL;
}

/* ------------------------------------------------------------ the window */

/* The measuring window: from cfg.warmup after the first frame to the moment
 * the run is stopped (or paced threads are done), read by the main thread -
 * frames sent and the device's counters, as a benchmark reads them around a
 * steady stretch, without the start-up and the end. */
static struct window {
	int state;		/* 0 = not open yet, 1 = open, 2 = closed */
	double t0, t1, first;	/* CLOCK_MONOTONIC s */
	uint64_t sent0, sent1;
	struct dev_counters dev0, dev1;
} win;

static uint64_t total_sent(struct thread_ctx *th, int n)
{
	uint64_t total = 0;

	for (int i = 0; i < n; i++)
		total += __atomic_load_n(&th[i].state->sent, __ATOMIC_RELAXED);
	return total;
}

static void window_mark(struct thread_ctx *th, int n, int to)
{
	if (to == 1) {
		win.dev0 = read_dev_counters();
		win.sent0 = total_sent(th, n);
		win.t0 = xl_now_mono();
	} else {
		win.t1 = xl_now_mono();
		win.sent1 = total_sent(th, n);
		win.dev1 = read_dev_counters();
	}
	win.state = to;
}

static void print_window(void)
{
	double secs = win.t1 - win.t0;

	if (win.state != 2 || secs <= 0) {
		printf("\"window\": null, ");
		return;
	}
	printf("\"window\": {\"start_s\": %.6f, \"seconds\": %.6f, \"sent\": %llu, \"rate_pps\": %.1f",
	       win.t0 - win.first, secs, (unsigned long long)(win.sent1 - win.sent0),
	       (win.sent1 - win.sent0) / secs);
	if (win.dev0.valid && win.dev1.valid) {
		uint64_t xmit = win.dev1.xdp_xmit - win.dev0.xdp_xmit;

		printf(", \"device_xdp_xmit\": %llu, \"device_xdp_xmit_errors\": %llu, \"delivered_pps\": %.1f",
		       (unsigned long long)xmit,
		       (unsigned long long)(win.dev1.xdp_xmit_errors - win.dev0.xdp_xmit_errors), xmit / secs);
	}
	printf("}, ");
}

/* ------------------------------------------------------------ progress */

static FILE *progress;

static void progress_open(void)
{
	int fd;

	if (!cfg.progress_file)
		return;
	fd = open(cfg.progress_file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		die(1, "cannot write the progress file %s: %s", cfg.progress_file, strerror(errno));
	progress = fdopen(fd, "w");
	if (!progress)
		die(1, "fdopen: %s", strerror(errno));
}

/* One line: seconds since the first frame, the requested duration, frames
 * sent so far and the rate since the previous line. */
static void progress_line(double elapsed, uint64_t sent_now, double pps)
{
	if (!progress)
		return;
	fprintf(progress, "{\"elapsed_s\": %.3f, \"duration_s\": %.3f, \"sent\": %llu, \"pps\": %.1f}\n",
		elapsed, cfg.duration, (unsigned long long)sent_now, pps);
	fflush(progress);
}

static void progress_close(void)
{
	if (!progress)
		return;
	fclose(progress);
	progress = NULL;
	unlink(cfg.progress_file);
}

static void on_sigusr1(int sig)
{
	(void)sig;	/* only there to interrupt BPF_PROG_TEST_RUN with EINTR */
}

/* Paced mode: frames per burst. One frame at a time up to 200 kpps per
 * thread; above that the smallest power of two that keeps the bursts at or
 * below 200k per second, at most 64. */
static int auto_burst(double rate)
{
	int b = 1;

	while (b < 64 && rate / b > 200000.0)
		b *= 2;
	return b;
}

/* ------------------------------------------------------------ output */

/* The time the frames after the last time stamp took: paced, one burst
 * period (less if the run was stopped before the period was over); full
 * speed, nothing (at most 63 frames, a few microseconds). */
static uint64_t thread_tail_ns(const struct thread_ctx *t)
{
	uint64_t gap, end_ns, last = t->state->last_ns;

	if (t->rate <= 0)
		return 0;
	gap = (uint64_t)llround(1e9 * t->burst / t->rate);
	end_ns = (uint64_t)llround(t->end_s * 1e9);
	if (end_ns <= last)
		return 0;
	return end_ns - last < gap ? end_ns - last : gap;
}

/* Sending time of a thread, first frame to end of the last, from the
 * XDP program's own time stamps (test-run set-up and tear-down excluded). */
static double thread_duration(const struct thread_ctx *t)
{
	if (!sent(t))
		return 0.0;
	return (t->state->last_ns + thread_tail_ns(t) - t->state->first_ns) / 1e9;
}

static void print_json(struct thread_ctx *th, int n, const char *signame,
		       struct dev_counters *before, struct dev_counters *after)
{
	uint64_t packets = 0, calls = 0, late = 0, t_first = 0, t_last = 0;
	double w_first = 0, w_last = 0, duration;
	char src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN];

	for (int i = 0; i < n; i++) {
		packets += sent(&th[i]);
		calls += th[i].calls;
		late += th[i].state->late;
		if (!i || th[i].start_s < w_first)
			w_first = th[i].start_s;
		if (!i || th[i].end_s > w_last)
			w_last = th[i].end_s;
		if (!sent(&th[i]))
			continue;
		if (!t_first || th[i].state->first_ns < t_first)
			t_first = th[i].state->first_ns;
		if (th[i].state->last_ns + thread_tail_ns(&th[i]) > t_last)
			t_last = th[i].state->last_ns + thread_tail_ns(&th[i]);
	}
	duration = t_last > t_first ? (t_last - t_first) / 1e9 : 0.0;
	inet_ntop(AF_INET, &cfg.src_ip, src, sizeof(src));
	inet_ntop(AF_INET, &cfg.dst_ip, dst, sizeof(dst));
	printf("{\"generator\": \"xl_loadgen\", \"version\": \"%s\", ", XL_LG_VERSION);
	printf("\"interface\": \"%s\", \"ifindex\": %d, ", cfg.ifname, cfg.ifindex);
	if (cfg.netns)
		printf("\"netns\": \"%s\", ", cfg.netns);
	else
		printf("\"netns\": null, ");
	printf("\"size\": %d, \"dns\": %s, \"src_ip\": \"%s\", \"dst_ip\": \"%s\", "
	       "\"src_port\": %u, \"dst_port\": %u, ",
	       cfg.size, cfg.dns ? "true" : "false", src, dst, cfg.src_port, cfg.dst_port);
	printf("\"packets_sent\": %llu, \"bytes_sent\": %llu, ",
	       (unsigned long long)packets, (unsigned long long)packets * (unsigned)cfg.size);
	printf("\"duration_s\": %.6f, \"rate_pps\": %.1f, \"offered_rate_pps\": %.1f, ",
	       duration, duration > 0 ? packets / duration : 0.0, cfg.rate);
	printf("\"requested_duration_s\": %.6f, \"wall_s\": %.6f, \"calls\": %llu, "
	       "\"late_restarts\": %llu, ", cfg.duration, w_last - w_first,
	       (unsigned long long)calls, (unsigned long long)late);
	printf("\"interrupted\": %s, ", signame ? "true" : "false");
	printf("\"warmup_s\": %.3f, ", cfg.warmup);
	if (cfg.nice != NICE_KEEP)
		printf("\"nice\": %d, ", cfg.nice);
	print_window();
	printf("\"flows\": %d, \"rx_queues\": %d, \"steering\": \"%s\", \"steered_queues\": [",
	       cfg.flows, steer.rx_queues, steer.nqueues > 1 ? "cpumap" : "none");
	for (int i = 0; i < steer.nqueues; i++)
		printf("%s{\"queue\": %d, \"cpu\": %d}", i ? ", " : "", steer.queue[i], steer.queue_cpu[i]);
	printf("], ");
	{
		/* The generator's own CPU time, all threads (test runs count as system time). */
		double cpu_s;

		if (xl_process_cpu_s(&cpu_s))
			printf("\"cpu_s\": %.6f, ", cpu_s);
	}
	if (signame)
		printf("\"signal\": \"%s\", ", signame);
	if (before->valid && after->valid)
		printf("\"device_xdp_xmit\": %llu, \"device_xdp_xmit_errors\": %llu, ",
		       (unsigned long long)(after->xdp_xmit - before->xdp_xmit),
		       (unsigned long long)(after->xdp_xmit_errors - before->xdp_xmit_errors));
	printf("\"threads\": [");
	for (int i = 0; i < n; i++) {
		double d = thread_duration(&th[i]);

		printf("%s{\"thread\": %d, \"cpu\": %d, \"packets_sent\": %llu, \"calls\": %llu, "
		       "\"duration_s\": %.6f, \"rate_pps\": %.1f, \"offered_rate_pps\": %.1f, "
		       "\"batch_size\": %d, \"late_restarts\": %llu}",
		       i ? ", " : "", i, th[i].cpu, (unsigned long long)sent(&th[i]),
		       (unsigned long long)th[i].calls, d, d > 0 ? sent(&th[i]) / d : 0.0,
		       th[i].rate, th[i].burst, (unsigned long long)th[i].state->late);
	}
	printf("]}\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static struct thread_ctx th[MAX_THREADS];
	struct dev_counters before, after;
	struct sigaction sa;
	const char *signame = NULL;
	bool started = false;
	double deadline, next_progress = 0, last_progress = 0;
	uint64_t last_sent = 0;
	sigset_t set;
	int failed = 0;

	parse_args(argc, argv);
	if (cfg.netns)
		enter_netns(cfg.netns);	/* before threads: they inherit it */
	resolve_interface();
	build_frame();
	libbpf_set_print(libbpf_print);
	before = read_dev_counters();
	plan_steering(before.veth ? before.queues : 0);
	for (int i = 0; i < cfg.threads; i++) {
		struct thread_ctx *t = &th[i];

		t->index = i;
		t->cpu = cfg.ncpus ? cfg.cpus[i % cfg.ncpus] : -1;
		t->rate = cfg.rate / cfg.threads;
		if (t->rate > 0) {
			t->burst = cfg.burst ? cfg.burst : auto_burst(t->rate);
			t->total = (uint64_t)llround(t->rate * cfg.duration);
			if (!t->total)
				t->total = 1;
		} else {
			t->burst = cfg.batch;
		}
		load_program(t);
	}

	/* SIGUSR1 ends a thread's test run (EINTR, no restart). SIGINT, SIGTERM
	 * and SIGHUP are blocked everywhere and taken by sigtimedwait below. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	before = read_dev_counters();
	progress_open();
	/* threads inherit the priority of the thread that makes them */
	if (cfg.nice != NICE_KEEP && setpriority(PRIO_PROCESS, 0, cfg.nice))
		die(1, "cannot set the priority to nice %d: %s", cfg.nice, strerror(errno));
	/* until the first frame went out; a run that never sends stops here */
	deadline = xl_now_mono() + cfg.duration + 5.0;
	for (int i = 0; i < cfg.threads; i++) {
		int err = pthread_create(&th[i].tid, NULL, thread_main, &th[i]);

		if (err) {
			atomic_store(&stop_requested, 1);
			for (int j = 0; j < i; j++) {
				while (!atomic_load(&th[j].done)) {
					pthread_kill(th[j].tid, SIGUSR1);
					usleep(10000);
				}
				pthread_join(th[j].tid, NULL);
			}
			die(1, "cannot start thread %d: %s", i, strerror(err));
		}
	}
	for (;;) {
		struct timespec wait = {.tv_sec = 0, .tv_nsec = 10 * 1000 * 1000};
		double left;
		int running = 0, sig;

		for (int i = 0; i < cfg.threads; i++)
			running += !atomic_load(&th[i].done);
		if (!running)
			break;
		if (!started) {
			/* The duration counts from the first frame: a test run
			 * spends a few ms setting up before it sends. */
			for (int i = 0; i < cfg.threads; i++) {
				uint64_t first = __atomic_load_n(&th[i].state->first_ns,
								 __ATOMIC_RELAXED);

				if (first) {
					/* Paced threads stop by themselves after
					 * rate x duration frames; they may run late
					 * by as much as they may fall behind. */
					deadline = first / 1e9 + cfg.duration +
						   th[0].skel->rodata->cfg_slack_ns / 1e9;
					win.first = first / 1e9;
					started = true;
					break;
				}
			}
		}
		if (progress && started && xl_now_mono() >= next_progress) {
			double now = xl_now_mono(), first = 0;
			uint64_t total = 0;

			for (int i = 0; i < cfg.threads; i++) {
				uint64_t f = __atomic_load_n(&th[i].state->first_ns, __ATOMIC_RELAXED);

				total += sent(&th[i]);
				if (f && (!first || f / 1e9 < first))
					first = f / 1e9;
			}
			if (last_progress > 0)
				progress_line(now - first, total, (total - last_sent) / (now - last_progress));
			else
				progress_line(now - first, total, 0.0);
			last_progress = now;
			last_sent = total;
			next_progress = now + 1.0;
		}
		left = deadline - xl_now_mono();
		if (started && win.state == 0 && xl_now_mono() >= win.first + cfg.warmup)
			window_mark(th, cfg.threads, 1);
		if (left <= 0)
			atomic_store(&stop_requested, 1);
		if (win.state == 1) {
			bool paced_done = cfg.rate > 0;

			for (int i = 0; i < cfg.threads; i++)
				paced_done = paced_done && sent(&th[i]) >= th[i].total;
			if (atomic_load(&stop_requested) || paced_done)
				window_mark(th, cfg.threads, 2);
		}
		/* SIGUSR1 ends a thread's call; it is re-sent every round until
		 * the thread is out, as one that lands between two calls does
		 * not end the next. Paced threads are done after their frames. */
		for (int i = 0; i < cfg.threads; i++) {
			if (atomic_load(&th[i].done))
				continue;
			if (atomic_load(&stop_requested) || (th[i].total && sent(&th[i]) >= th[i].total))
				pthread_kill(th[i].tid, SIGUSR1);
		}
		if (!atomic_load(&stop_requested) && left < 0.010 && left > 0) {
			wait.tv_nsec = (long)(left * 1e9);
		}
		sig = sigtimedwait(&set, NULL, &wait);
		if (sig > 0 && !signame) {
			signame = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP";
			atomic_store(&stop_requested, 1);
		}
	}
	for (int i = 0; i < cfg.threads; i++)
		pthread_join(th[i].tid, NULL);
	progress_close();
	/* Let the receiver drain its ring before reading the device counters. */
	usleep(20000);
	after = read_dev_counters();
	print_json(th, cfg.threads, signame, &before, &after);
	if (before.valid && after.valid && after.xdp_xmit == before.xdp_xmit &&
	    after.xdp_xmit_errors == before.xdp_xmit_errors) {
		uint64_t total = 0;

		for (int i = 0; i < cfg.threads; i++)
			total += sent(&th[i]);
		if (total)
			fprintf(stderr, "xl-loadgen: warning: %s took none of the %llu frames: a veth "
				"passes redirected frames on only when its peer runs an XDP program "
				"(or has GRO on); attach one to the peer\n", cfg.ifname,
				(unsigned long long)total);
	}
	for (int i = 0; i < cfg.threads; i++) {
		if (th[i].err) {
			fprintf(stderr, "xl-loadgen: error: %s\n", th[i].errmsg);
			failed = 1;
		}
		xl_loadgen_bpf__destroy(th[i].skel);
	}
	return failed;
}
