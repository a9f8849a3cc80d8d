// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * xl-afxdp - the user-space location of the xdplab programs: an AF_XDP
 * worker that runs a program's packet logic (the very header the XDP
 * object is built from, compiled by the host C compiler) on the frames of
 * one RX queue.
 *
 *   frames --XDP xl_afxdp_redir--> XSKMAP[queue] --> AF_XDP socket (UMEM)
 *          --> xl_<program>_logic(data, data_end) --> verdict
 *   XDP_TX:   the rewritten frame goes out of the same interface (TX ring)
 *   anything else: the frame is counted and its buffer recycled
 *
 * The program is chosen at compile time, like the XDP objects: one binary
 * per program and defines (-DXL_AFXDP_PROGRAM=loop -DN=100), so the logic
 * is inlined into the receive loop exactly as into the XDP entry point.
 * The redirect program is embedded (-DXL_AFXDP_BPF_OBJ="<path of its .o>").
 *
 * Counters have the names of the XDP programs' (seen, dropped, tx, passed,
 * redirected; packets and bytes, bytes = frame length before the program).
 * A frame with XDP_PASS cannot go back to the kernel's stack from an AF_XDP
 * socket: it is counted as passed and its buffer recycled. XDP_REDIRECT
 * (never returned by the built-ins) is counted and recycled likewise.
 *
 * Reporting: a JSON object (status, settings, mode actually used, counters,
 * the socket's XDP_STATISTICS, the redirect program's counters, CPU time)
 * rewritten atomically (write + rename) every --stats-interval ms to
 * --stats-file, and printed once as the last line on stdout at exit.
 * SIGTERM/SIGINT end the worker cleanly: socket closed, redirect program
 * detached. Attached through a BPF link (default) the program goes away
 * with the process even when it is killed with SIGKILL.
 *
 * Exit codes: 0 after a clean stop, 1 on a failure (reported as
 * status "failed" with "error" and "errno"), 2 on bad options.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/xsk.h>

#define XL_USER_ERR_PREFIX "xl-afxdp: "
#define XL_USER_XSK
#include "xdplab/user.h"
#include "xdplab/types.h"
#include "xdplab/stats.h"
#include "xdplab/drop.h"
#include "xdplab/loop.h"
#include "xdplab/checksum.h"
#include "xdplab/dns_nxdomain.h"

#define XL_AFXDP_VERSION "1.0"

#ifndef XL_AFXDP_PROGRAM
#error "build with -DXL_AFXDP_PROGRAM=<drop|loop|checksum|dns_nxdomain>"
#endif
#ifndef XL_AFXDP_BPF_OBJ
#error "build with -DXL_AFXDP_BPF_OBJ=\"<path of xl_afxdp_redirect.bpf.o>\""
#endif

#define XL_STR2(x) #x
#define XL_STR(x) XL_STR2(x)
#define XL_CAT3(a, b, c) a##b##c
#define XL_LOGIC_OF(p) XL_CAT3(xl_, p, _logic)
#define XL_LOGIC XL_LOGIC_OF(XL_AFXDP_PROGRAM)
#define XL_PROGRAM_NAME XL_STR(XL_AFXDP_PROGRAM)
#ifndef XL_AFXDP_DEFINES
#define XL_AFXDP_DEFINES ""
#endif

/* The redirect program's ELF object, embedded at build time. */
__asm__(".section .rodata\n"
	".balign 8\n"
	".global xl_redir_obj_start\n"
	"xl_redir_obj_start:\n"
	".incbin \"" XL_AFXDP_BPF_OBJ "\"\n"
	".global xl_redir_obj_end\n"
	"xl_redir_obj_end:\n"
	".previous\n");
extern const char xl_redir_obj_start[], xl_redir_obj_end[];

#define REDIR_PROG "xl_afxdp_redir"
#define REDIR_XSKMAP "xl_xsks"
#define REDIR_STATS "xl_stats"
#define MAX_QUEUES 64 /* entries of the XSKMAP */
#define FRAME_SIZE XSK_UMEM__DEFAULT_FRAME_SIZE
#define MAX_BATCH 1024

/* ------------------------------------------------------------- options */

enum copy_mode { COPY_AUTO, COPY_COPY, COPY_ZEROCOPY };
static const char *const copy_mode_names[] = { "auto", "copy", "zerocopy" };
static const char *const attach_names[] = { "link", "netlink" };

struct config {
	const char *ifname;
	const char *netns;
	unsigned int queue;
	enum copy_mode copy_mode;
	bool need_wakeup;
	bool busy_poll;
	unsigned int batch;
	int cpu; /* -1: not pinned */
	bool generic; /* XDP_FLAGS_SKB_MODE instead of DRV_MODE */
	bool netlink; /* attach through netlink instead of a BPF link */
	unsigned int ring; /* RX ring size; FILL/COMP/TX and frames: 2 x ring */
	const char *stats_file;
	unsigned int stats_ms;
	double duration; /* 0: until a signal */
};

static struct config cfg = {
	.copy_mode = COPY_AUTO,
	.need_wakeup = true,
	.batch = 64,
	.cpu = -1,
	.ring = XSK_RING_CONS__DEFAULT_NUM_DESCS,
	.stats_ms = 250,
};

/* ------------------------------------------------------------- state */

struct counter {
	uint64_t packets, bytes;
};

struct worker {
	int ifindex;
	char driver[32];
	void *umem_area;
	size_t umem_size;
	unsigned int nframes;
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	struct xsk_ring_prod fq, tx;
	struct xsk_ring_cons cq, rx;
	int xsk_fd;
	struct xl_xdp_obj bpf; /* the redirect program, XSKMAP, counters */
	int link_fd; /* BPF link, -1 with netlink attach */
	bool attached;
	bool zerocopy; /* what the kernel says (XDP_OPTIONS) */
	char fallback[320]; /* why the mode differs from the one asked for */
	struct counter cnt[XL_NR_COUNTERS];
	uint64_t tx_outstanding, tx_completed, tx_kick_errors;
	uint64_t rx_wakeups, tx_wakeups, polls;
	double started_s, started_mono, stopped_mono;
	const char *status;
	char error[512];
	int err;
};

static struct worker w = {
	.xsk_fd = -1, .bpf = XL_XDP_OBJ_INIT, .link_fd = -1,
	.status = "starting",
};
static volatile sig_atomic_t stop_requested;

/* ------------------------------------------------------------- helpers */

static void usage(FILE *out)
{
	fprintf(out,
"Usage: xl-afxdp --interface NAME [options]\n"
"       xl-afxdp --info\n"
"Run the compiled-in xdplab program (%s, N=%lu) behind an AF_XDP socket.\n"
"\n"
"  -i, --interface NAME     interface whose RX queue the worker serves\n"
"  -n, --netns NAME         enter network namespace NAME (%s/NAME) first\n"
"  -q, --queue N            RX queue (default 0, < %d)\n"
"      --copy-mode MODE     auto (kernel's choice), copy or zerocopy (falls back\n"
"                           to copy with a message where unsupported); default auto\n"
"      --need-wakeup        use the need_wakeup flags (default)\n"
"      --no-need-wakeup     kick the kernel on every batch instead\n"
"      --busy-poll          spin on the rings, never sleep (one CPU at 100%%)\n"
"      --poll               sleep in poll() while the RX ring is empty (default)\n"
"  -b, --batch-size N       frames per ring operation, 1..%d (default 64)\n"
"  -c, --cpu N              pin the worker to CPU N\n"
"      --xdp-mode MODE      driver (native XDP, default) or generic (XDP_SKB)\n"
"      --attach HOW         link (BPF link, gone with the process; default) or\n"
"                           netlink (stays after a crash until removed)\n"
"      --ring-size N        RX ring entries, power of 2 (default %d); FILL, COMP\n"
"                           and TX rings and UMEM frames are twice that\n"
"  -s, --stats-file PATH    rewrite a JSON stats object there (write + rename)\n"
"      --stats-interval MS  how often (default 250)\n"
"  -d, --duration SEC       stop after SEC seconds (default: at SIGTERM/SIGINT)\n"
"      --info               print program, N, defines and version as JSON\n"
"  -h, --help\n",
		XL_PROGRAM_NAME, (unsigned long)(N), XL_NETNS_RUN_DIR, MAX_QUEUES, MAX_BATCH,
		XSK_RING_CONS__DEFAULT_NUM_DESCS);
}

static void print_info(void)
{
	printf("{\"program\": ");
	xl_json_str(stdout, XL_PROGRAM_NAME);
	printf(", \"n\": %lu, \"defines\": ", (unsigned long)(N));
	xl_json_str(stdout, XL_AFXDP_DEFINES);
	printf(", \"version\": \"%s\", \"redirect_program\": \"%s\"}\n", XL_AFXDP_VERSION, REDIR_PROG);
}

enum {
	OPT_COPY_MODE = 256, OPT_NEED_WAKEUP, OPT_NO_NEED_WAKEUP, OPT_BUSY_POLL, OPT_POLL,
	OPT_XDP_MODE, OPT_ATTACH, OPT_RING, OPT_STATS_MS, OPT_INFO,
};

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interface", required_argument, NULL, 'i' },
		{ "netns", required_argument, NULL, 'n' },
		{ "queue", required_argument, NULL, 'q' },
		{ "copy-mode", required_argument, NULL, OPT_COPY_MODE },
		{ "need-wakeup", no_argument, NULL, OPT_NEED_WAKEUP },
		{ "no-need-wakeup", no_argument, NULL, OPT_NO_NEED_WAKEUP },
		{ "busy-poll", no_argument, NULL, OPT_BUSY_POLL },
		{ "poll", no_argument, NULL, OPT_POLL },
		{ "batch-size", required_argument, NULL, 'b' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "xdp-mode", required_argument, NULL, OPT_XDP_MODE },
		{ "attach", required_argument, NULL, OPT_ATTACH },
		{ "ring-size", required_argument, NULL, OPT_RING },
		{ "stats-file", required_argument, NULL, 's' },
		{ "stats-interval", required_argument, NULL, OPT_STATS_MS },
		{ "duration", required_argument, NULL, 'd' },
		{ "info", no_argument, NULL, OPT_INFO },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "i:n:q:b:c:s:d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			cfg.ifname = optarg;
			break;
		case 'n':
			cfg.netns = optarg;
			break;
		case 'q':
			cfg.queue = (unsigned int)xl_parse_ll(optarg, 0, MAX_QUEUES - 1, "--queue");
			break;
		case OPT_COPY_MODE:
			cfg.copy_mode = xl_parse_choice(optarg, "--copy-mode", copy_mode_names, 3);
			break;
		case OPT_NEED_WAKEUP:
			cfg.need_wakeup = true;
			break;
		case OPT_NO_NEED_WAKEUP:
			cfg.need_wakeup = false;
			break;
		case OPT_BUSY_POLL:
			cfg.busy_poll = true;
			break;
		case OPT_POLL:
			cfg.busy_poll = false;
			break;
		case 'b':
			cfg.batch = (unsigned int)xl_parse_ll(optarg, 1, MAX_BATCH, "--batch-size");
			break;
		case 'c':
			cfg.cpu = xl_parse_cpu(optarg, "--cpu");
			break;
		case OPT_XDP_MODE:
			cfg.generic = xl_parse_xdp_mode(optarg);
			break;
		case OPT_ATTACH:
			cfg.netlink = xl_parse_choice(optarg, "--attach", attach_names, 2) == 1;
			break;
		case OPT_RING:
			cfg.ring = xl_parse_pow2(optarg, 64, 16384, "--ring-size");
			break;
		case 's':
			cfg.stats_file = optarg;
			break;
		case OPT_STATS_MS:
			cfg.stats_ms = (unsigned int)xl_parse_ll(optarg, 10, 60000, "--stats-interval");
			break;
		case 'd':
			errno = 0;
			cfg.duration = strtod(optarg, &end);
			if (errno || end == optarg || *end || cfg.duration < 0 || cfg.duration > 86400 * 365) {
				fprintf(stderr, "xl-afxdp: --duration '%s' must be seconds >= 0\n", optarg);
				exit(2);
			}
			break;
		case OPT_INFO:
			print_info();
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "xl-afxdp: unexpected argument '%s' (see --help)\n", argv[optind]);
		exit(2);
	}
	xl_check_interface_args(cfg.ifname, cfg.netns);
	if (cfg.batch > cfg.ring) {
		fprintf(stderr, "xl-afxdp: --batch-size %u is larger than the ring (%u)\n", cfg.batch, cfg.ring);
		exit(2);
	}
}

/* ------------------------------------------------------------- reporting */

static void counter_json(FILE *f, const char *name, const struct counter *c, bool comma)
{
	fprintf(f, "\"%s\": {\"packets\": %llu, \"bytes\": %llu}%s", name, (unsigned long long)c->packets,
		(unsigned long long)c->bytes, comma ? ", " : "");
}

/* The redirect program's xl_stats (struct xl_counter: packets, bytes), summed over the CPUs. */
static void kernel_counters(struct counter out[XL_NR_COUNTERS], bool *ok)
{
	uint64_t sum[XL_NR_COUNTERS * 2];
	int key;

	*ok = xl_percpu_sum(w.bpf.stats_fd, XL_NR_COUNTERS, 2, sum);
	for (key = 0; key < XL_NR_COUNTERS; key++) {
		out[key].packets = sum[key * 2];
		out[key].bytes = sum[key * 2 + 1];
	}
}

static const char *counter_names[XL_NR_COUNTERS] = { "seen", "dropped", "tx", "passed", "redirected" };

static void write_stats(FILE *f)
{
	struct xdp_statistics xs;
	struct counter kc[XL_NR_COUNTERS];
	bool have_xs, have_kc;
	double end = w.stopped_mono > 0 ? w.stopped_mono : xl_now_mono();
	int i;

	have_xs = xl_xsk_statistics(w.xsk_fd, &xs);
	kernel_counters(kc, &have_kc);

	fprintf(f, "{\"status\": \"%s\", \"pid\": %d, \"version\": \"%s\", \"program\": ", w.status, (int)getpid(),
		XL_AFXDP_VERSION);
	xl_json_str(f, XL_PROGRAM_NAME);
	fprintf(f, ", \"n\": %lu, \"defines\": ", (unsigned long)(N));
	xl_json_str(f, XL_AFXDP_DEFINES);
	fprintf(f, ", \"interface\": ");
	xl_json_str(f, cfg.ifname);
	fprintf(f, ", \"netns\": ");
	if (cfg.netns)
		xl_json_str(f, cfg.netns);
	else
		fprintf(f, "null");
	fprintf(f, ", \"ifindex\": %d, \"driver\": ", w.ifindex);
	xl_json_str(f, w.driver);
	fprintf(f, ", \"queue\": %u, \"xdp_mode\": \"%s\", \"copy_mode\": \"%s\", \"bind_mode\": %s, "
		   "\"fallback\": ",
		cfg.queue, cfg.generic ? "generic" : "driver", copy_mode_names[cfg.copy_mode],
		w.xsk ? (w.zerocopy ? "\"zerocopy\"" : "\"copy\"") : "null");
	if (w.fallback[0])
		xl_json_str(f, w.fallback);
	else
		fprintf(f, "null");
	fprintf(f, ", \"need_wakeup\": %s, \"busy_poll\": %s, \"batch_size\": %u, \"cpu\": ",
		cfg.need_wakeup ? "true" : "false", cfg.busy_poll ? "true" : "false", cfg.batch);
	if (cfg.cpu >= 0)
		fprintf(f, "%d", cfg.cpu);
	else
		fprintf(f, "null");
	fprintf(f, ", \"ring_size\": %u, \"frames\": %u, \"attach\": \"%s\", \"prog_id\": %u, \"prog_name\": \"%s\", ",
		cfg.ring, w.nframes, cfg.netlink ? "netlink" : "link", w.bpf.prog_id, REDIR_PROG);
	fprintf(f, "\"counters\": {");
	for (i = 0; i < XL_NR_COUNTERS; i++)
		counter_json(f, counter_names[i], &w.cnt[i], i + 1 < XL_NR_COUNTERS);
	fprintf(f, "}, \"tx_completed\": %llu, \"tx_outstanding\": %llu, \"tx_kick_errors\": %llu, ",
		(unsigned long long)w.tx_completed, (unsigned long long)w.tx_outstanding,
		(unsigned long long)w.tx_kick_errors);
	fprintf(f, "\"wakeups\": {\"rx\": %llu, \"tx\": %llu}, \"polls\": %llu, ",
		(unsigned long long)w.rx_wakeups, (unsigned long long)w.tx_wakeups, (unsigned long long)w.polls);
	fprintf(f, "\"xsk\": ");
	if (have_xs)
		xl_json_xsk_statistics(f, &xs);
	else
		fprintf(f, "null");
	fprintf(f, ", \"kernel\": ");
	if (have_kc) {
		fprintf(f, "{");
		counter_json(f, "seen", &kc[XL_SEEN], true);
		counter_json(f, "redirected", &kc[XL_REDIRECTED], true);
		counter_json(f, "passed", &kc[XL_PASSED], false);
		fprintf(f, "}");
	} else {
		fprintf(f, "null");
	}
	fprintf(f, ", \"cpu_ns\": %llu, \"started_at\": %.3f, \"updated_at\": %.3f, \"elapsed_s\": %.6f, "
		   "\"error\": ",
		(unsigned long long)xl_clock_ns(CLOCK_THREAD_CPUTIME_ID), w.started_s, xl_now_real(),
		w.started_mono > 0 ? end - w.started_mono : 0.0);
	if (w.error[0])
		xl_json_str(f, w.error);
	else
		fprintf(f, "null");
	fprintf(f, ", \"errno\": %d}\n", w.err);
}

static void save_stats(void)
{
	char tmp[PATH_MAX];
	FILE *f;

	if (!cfg.stats_file)
		return;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", cfg.stats_file) >= (int)sizeof(tmp))
		return;
	f = fopen(tmp, "w");
	if (!f)
		return;
	write_stats(f);
	if (fclose(f) == 0)
		rename(tmp, cfg.stats_file);
	else
		unlink(tmp);
}

/* Record a failure (status "failed"); the caller cleans up and exits 1. */
static void fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w.error, sizeof(w.error), fmt, ap);
	va_end(ap);
	w.err = err < 0 ? -err : err;
	w.status = "failed";
	fprintf(stderr, "xl-afxdp: %s\n", w.error);
}

/* ------------------------------------------------------------- set-up */

static int enter_netns(void)
{
	char msg[sizeof(w.error)];
	int err;

	if (!cfg.netns)
		return 0;
	err = xl_enter_netns(cfg.netns, "", msg, sizeof(msg));
	if (err) {
		fail(err, "%s", msg);
		return -1;
	}
	return 0;
}

static const char *where(void)
{
	return xl_where(cfg.ifname, cfg.netns);
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN)
		return vfprintf(stderr, fmt, ap);
	return 0;
}

static int load_redirect(void)
{
	int err;

	switch (xl_xdp_obj_load(&w.bpf, "xl_afxdp_redirect", xl_redir_obj_start, xl_redir_obj_end, REDIR_PROG,
				REDIR_XSKMAP, REDIR_STATS, &err)) {
	case XL_OBJ_OK:
		return 0;
	case XL_OBJ_OPEN:
		fail(err, "cannot open the embedded redirect program: %s", strerror(err));
		break;
	case XL_OBJ_LOAD:
		fail(err, "the kernel rejected the redirect program %s: %s%s", REDIR_PROG, strerror(err),
		     err == EPERM ? XL_BPF_ROOT_HINT : "");
		break;
	case XL_OBJ_LOOKUP:
		fail(err, "the embedded redirect object lacks %s or %s", REDIR_PROG, REDIR_XSKMAP);
		break;
	}
	return -1;
}

static int create_umem(void)
{
	struct xsk_umem_config ucfg = {
		.fill_size = cfg.ring * 2,
		.comp_size = cfg.ring * 2,
		.frame_size = FRAME_SIZE,
		.frame_headroom = XSK_UMEM__DEFAULT_FRAME_HEADROOM,
		.flags = 0,
	};
	char msg[sizeof(w.error)];
	int err;

	w.nframes = cfg.ring * 2;
	w.umem_size = (size_t)w.nframes * FRAME_SIZE;
	err = xl_umem_create(&w.umem_area, w.umem_size, &w.umem, &w.fq, &w.cq, &ucfg, msg, sizeof(msg));
	if (err) {
		fail(err, "%s", msg);
		return -1;
	}
	return 0;
}

static void destroy_umem(void)
{
	xl_umem_destroy(&w.umem, &w.umem_area, w.umem_size);
}

/* One bind attempt with BIND_FLAGS; returns -errno, the UMEM is freed on failure. */
static int try_socket(__u16 bind_flags)
{
	struct xsk_socket_config scfg = {
		.rx_size = cfg.ring,
		.tx_size = cfg.ring * 2,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.xdp_flags = cfg.generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE,
		.bind_flags = bind_flags | (cfg.need_wakeup ? XDP_USE_NEED_WAKEUP : 0),
	};
	int err;

	if (create_umem())
		return -(w.err ? w.err : ENOMEM);
	err = xsk_socket__create(&w.xsk, cfg.ifname, cfg.queue, w.umem, &w.rx, &w.tx, &scfg);
	if (err) {
		w.xsk = NULL;
		destroy_umem();
		return err < 0 ? err : -err;
	}
	return 0;
}

static int create_socket(void)
{
	unsigned int nq;
	__u16 flags;
	int err;

	nq = xl_rx_queues(cfg.ifname);
	if (nq && cfg.queue >= nq) {
		fail(EINVAL, "%s has no RX queue %u (it has %u): choose queue 0..%u", where(), cfg.queue, nq,
		     nq - 1);
		return -1;
	}
	if (cfg.copy_mode == COPY_ZEROCOPY && cfg.generic) {
		snprintf(w.fallback, sizeof(w.fallback),
			 "zero-copy needs xdp_mode driver; generic XDP (XDP_SKB) always copies, so the socket "
			 "runs in copy mode");
		flags = XDP_COPY;
	} else if (cfg.copy_mode == COPY_ZEROCOPY) {
		flags = XDP_ZEROCOPY;
	} else if (cfg.copy_mode == COPY_COPY || cfg.generic) {
		flags = XDP_COPY;
	} else {
		flags = 0; /* auto: the kernel tries zero-copy, then copies */
	}
	err = try_socket(flags);
	if (err && flags == XDP_ZEROCOPY && (err == -EOPNOTSUPP || err == -EINVAL)) {
		snprintf(w.fallback, sizeof(w.fallback),
			 "zero-copy is not supported by %s (driver %s): bind with XDP_ZEROCOPY failed with %s; "
			 "the socket runs in copy mode", where(), w.driver[0] ? w.driver : "unknown",
			 err == -EOPNOTSUPP ? "EOPNOTSUPP" : "EINVAL");
		fprintf(stderr, "xl-afxdp: %s\n", w.fallback);
		flags = XDP_COPY;
		err = try_socket(flags);
	}
	if (err) {
		if (err == -EBUSY)
			fail(err, "RX queue %u of %s is already used by another AF_XDP socket; stop that worker "
				  "first or choose another queue", cfg.queue, where());
		else if (err == -ENODEV || err == -ENXIO)
			fail(err, "interface %s does not exist", where());
		else if (err == -EPERM)
			fail(err, "cannot create an AF_XDP socket on %s: permission denied (run as root)", where());
		else
			fail(err, "cannot bind an AF_XDP socket to RX queue %u of %s (%s mode): %s", cfg.queue,
			     where(), flags == XDP_COPY ? "copy" : flags == XDP_ZEROCOPY ? "zero-copy" : "auto",
			     strerror(-err));
		return -1;
	}
	w.xsk_fd = xsk_socket__fd(w.xsk);
	if (xl_xsk_zerocopy(w.xsk_fd, &w.zerocopy))
		w.zerocopy = flags == XDP_ZEROCOPY;
	return 0;
}

static int attach_redirect(void)
{
	__u32 mode = cfg.generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
	char other[128];
	int err;

	if (cfg.netlink) {
		err = bpf_xdp_attach(w.ifindex, w.bpf.prog_fd, mode | XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
	} else {
		LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = mode);

		w.link_fd = bpf_link_create(w.bpf.prog_fd, w.ifindex, BPF_XDP, &lo);
		err = w.link_fd < 0 ? -errno : 0;
		if (w.link_fd < 0)
			w.link_fd = -1;
	}
	if (!err) {
		w.attached = true;
		return 0;
	}
	if (err == -EBUSY || err == -EEXIST) {
		xl_describe_attached(w.ifindex, true, other, sizeof(other));
		fail(err, "%s already has an XDP program attached%s; detach it first (the worker attaches its own "
			  "redirect program)", where(), other);
	} else if (!cfg.generic && (err == -EOPNOTSUPP || err == -EINVAL)) {
		fail(err, "the driver of %s (%s) does not support native XDP: use xdp_mode generic (%s)", where(),
		     w.driver[0] ? w.driver : "unknown", strerror(-err));
	} else {
		fail(err, "cannot attach the redirect program to %s in %s mode through %s: %s", where(),
		     cfg.generic ? "generic" : "driver", cfg.netlink ? "netlink" : "a BPF link", strerror(-err));
	}
	return -1;
}

static void detach_redirect(void)
{
	if (!w.attached)
		return;
	if (w.link_fd >= 0) {
		close(w.link_fd);
		w.link_fd = -1;
	} else {
		LIBBPF_OPTS(bpf_xdp_attach_opts, ao, .old_prog_fd = w.bpf.prog_fd);
		__u32 mode = cfg.generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;

		/* only if it is still ours */
		bpf_xdp_detach(w.ifindex, mode | XDP_FLAGS_REPLACE, &ao);
	}
	w.attached = false;
}

static int fill_all(void)
{
	if (xl_fill_ring(&w.fq, w.nframes, FRAME_SIZE)) {
		fail(ENOSPC, "cannot put %u frames on the FILL ring", w.nframes);
		return -1;
	}
	return 0;
}

static void cleanup(void)
{
	detach_redirect();
	if (w.xsk) {
		/* final XDP_STATISTICS are read by save_stats before this */
		xsk_socket__delete(w.xsk);
		w.xsk = NULL;
		w.xsk_fd = -1;
	}
	destroy_umem();
	xl_xdp_obj_close(&w.bpf);
}

/* ------------------------------------------------------------- data path */

static inline void account(unsigned int key, uint32_t len)
{
	w.cnt[key].packets++;
	w.cnt[key].bytes += len;
}

static void kick_tx(void)
{
	if (cfg.need_wakeup && !xsk_ring_prod__needs_wakeup(&w.tx))
		return;
	w.tx_wakeups++;
	if (sendto(w.xsk_fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0) {
		int e = errno;

		if (e == ENOBUFS || e == EAGAIN || e == EBUSY || e == ENETDOWN)
			return; /* retried on the next round */
		w.tx_kick_errors++;
	}
}

static void complete_tx(void)
{
	__u32 idx_cq = 0, idx_fq = 0, n, i;

	if (!w.tx_outstanding)
		return;
	kick_tx();
	n = xsk_ring_cons__peek(&w.cq, w.nframes, &idx_cq);
	if (!n)
		return;
	/* Every frame is in exactly one place; FILL holds all of them, so this fits. */
	while (xsk_ring_prod__reserve(&w.fq, n, &idx_fq) != n)
		;
	for (i = 0; i < n; i++)
		*xsk_ring_prod__fill_addr(&w.fq, idx_fq++) = *xsk_ring_cons__comp_addr(&w.cq, idx_cq++);
	xsk_ring_prod__submit(&w.fq, n);
	xsk_ring_cons__release(&w.cq, n);
	w.tx_outstanding -= n;
	w.tx_completed += n;
}

static void rx_batch(void)
{
	static __u64 recycle[MAX_BATCH];
	static struct xdp_desc out[MAX_BATCH];
	__u32 idx_rx = 0, idx = 0, n, i, nrec = 0, ntx = 0;

	n = xsk_ring_cons__peek(&w.rx, cfg.batch, &idx_rx);
	if (!n) {
		if (cfg.need_wakeup && xsk_ring_prod__needs_wakeup(&w.fq)) {
			w.rx_wakeups++;
			recvfrom(w.xsk_fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
		}
		return;
	}
	for (i = 0; i < n; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&w.rx, idx_rx++);
		__u64 addr = xsk_umem__add_offset_to_addr(d->addr);
		__u32 len = d->len;
		unsigned char *data = xsk_umem__get_data(w.umem_area, addr);
		int verdict = XL_LOGIC(data, data + len);
		__u32 key = xl_verdict_key(verdict);

		account(XL_SEEN, len);
		if (key < XL_NR_COUNTERS)
			account(key, len);
		if (verdict == XL_XDP_TX) {
			out[ntx].addr = d->addr;
			out[ntx].len = len;
			out[ntx].options = 0;
			ntx++;
		} else {
			recycle[nrec++] = addr & ~((__u64)FRAME_SIZE - 1);
		}
	}
	xsk_ring_cons__release(&w.rx, n);

	if (nrec) {
		while (xsk_ring_prod__reserve(&w.fq, nrec, &idx) != nrec)
			;
		for (i = 0; i < nrec; i++)
			*xsk_ring_prod__fill_addr(&w.fq, idx++) = recycle[i];
		xsk_ring_prod__submit(&w.fq, nrec);
	}
	if (ntx) {
		/* The TX ring holds as many entries as there are frames: this fits. */
		while (xsk_ring_prod__reserve(&w.tx, ntx, &idx) != ntx)
			complete_tx();
		for (i = 0; i < ntx; i++)
			*xsk_ring_prod__tx_desc(&w.tx, idx++) = out[i];
		xsk_ring_prod__submit(&w.tx, ntx);
		w.tx_outstanding += ntx;
	}
}

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int run(void)
{
	struct pollfd pfd = { .fd = w.xsk_fd, .events = POLLIN };
	double next_stats = xl_now_mono() + cfg.stats_ms / 1000.0;
	double deadline = cfg.duration > 0 ? w.started_mono + cfg.duration : 0;
	int timeout_ms = cfg.stats_ms < 100 ? (int)cfg.stats_ms : 100;

	while (!stop_requested) {
		if (!cfg.busy_poll) {
			int ret;

			w.polls++;
			ret = poll(&pfd, 1, w.tx_outstanding ? 0 : timeout_ms);
			if (ret < 0 && errno != EINTR) {
				fail(errno, "poll() on the AF_XDP socket failed: %s", strerror(errno));
				return -1;
			}
			if (ret > 0 && (pfd.revents & (POLLERR | POLLNVAL))) {
				fail(ENXIO, "the AF_XDP socket on %s reported an error (interface gone or reconfigured?)",
				     where());
				return -1;
			}
		}
		rx_batch();
		complete_tx();

		if (xl_now_mono() >= next_stats) {
			double t = xl_now_mono();

			if (if_nametoindex(cfg.ifname) != (unsigned int)w.ifindex) {
				fail(ENODEV, "interface %s disappeared; the worker stops", where());
				return -1;
			}
			save_stats();
			next_stats = t + cfg.stats_ms / 1000.0;
			if (deadline && t >= deadline)
				break;
		}
	}
	/* let the frames already on the TX ring go out (bounded) */
	for (int tries = 0; w.tx_outstanding && tries < 1000; tries++)
		complete_tx();
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 1;

	parse_args(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(libbpf_quiet);
	w.started_s = xl_now_real();

	xl_process_setup(on_signal); /* no SA_RESTART: poll() returns EINTR */

	if (cfg.cpu >= 0 && xl_pin_cpu(cfg.cpu)) {
		fail(errno, "cannot pin the worker to CPU %d: %s", cfg.cpu, strerror(errno));
		goto out;
	}
	if (enter_netns())
		goto out;
	w.ifindex = (int)if_nametoindex(cfg.ifname);
	if (!w.ifindex) {
		fail(ENODEV, "interface %s does not exist", where());
		goto out;
	}
	xl_read_driver(cfg.ifname, w.driver, sizeof(w.driver));
	if (load_redirect() || create_socket() || fill_all())
		goto out;
	if (bpf_map_update_elem(w.bpf.xsks_fd, &cfg.queue, &w.xsk_fd, BPF_ANY)) {
		fail(errno, "cannot put the socket into the XSKMAP: %s", strerror(errno));
		goto out;
	}
	if (attach_redirect())
		goto out;

	w.status = "running";
	w.started_mono = xl_now_mono();
	save_stats();
	fprintf(stderr, "xl-afxdp: %s on %s queue %u: %s XDP, %s mode, prog id %u, pid %d\n", XL_PROGRAM_NAME,
		where(), cfg.queue, cfg.generic ? "generic" : "driver", w.zerocopy ? "zero-copy" : "copy",
		w.bpf.prog_id, (int)getpid());
	if (run() == 0) {
		w.status = "stopped";
		rc = 0;
	}
	w.stopped_mono = xl_now_mono();
out:
	if (w.started_mono > 0 && w.stopped_mono == 0)
		w.stopped_mono = xl_now_mono();
	detach_redirect();
	save_stats(); /* with the socket's final statistics, before it is closed */
	write_stats(stdout);
	fflush(stdout);
	cleanup();
	return rc;
}
