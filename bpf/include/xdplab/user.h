/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * xdplab/user.h - helpers shared by the user-space programs: the AF_XDP
 * worker (afxdp/xl_afxdp.c), the latency client (latency/xl_latency.c) and
 * the load generator (loadgen/xl_loadgen.c). Not for the kernel side.
 *
 * Clocks, JSON strings, command-line checks, network namespaces, interface
 * ioctls (driver, RX queues), the embedded XDP object, per-CPU counters and,
 * with XL_USER_XSK, the AF_XDP pieces (UMEM, FILL ring, socket options).
 * Everything is static inline: each program stays one C file and one cc
 * command (the worker is also built by programs.py worker_command()).
 *
 * Before including it a program defines _GNU_SOURCE (setns, CPU_SET), the
 * start of its one-line error messages and, to use the AF_XDP pieces (they
 * need libxdp's <xdp/xsk.h>), XL_USER_XSK:
 *
 *   #define XL_USER_ERR_PREFIX "xl-latency: error: "
 *   #define XL_USER_XSK
 *   #include "xdplab/user.h"
 *
 * Errors that end the program (bad options) are printed here; everything
 * else returns 0 or -errno (with a message where the caller needs one), so
 * each program keeps its own reporting (exit codes, status objects).
 */
#ifndef XDPLAB_USER_H
#define XDPLAB_USER_H

#ifndef _GNU_SOURCE
#error "define _GNU_SOURCE before the first #include (setns, CPU_SET)"
#endif
#ifndef XL_USER_ERR_PREFIX
#error "define XL_USER_ERR_PREFIX (e.g. \"xl-foo: error: \") before including xdplab/user.h"
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define XL_NETNS_RUN_DIR "/run/netns"

/* Appended to "the kernel rejected ..." when loading BPF failed with EPERM. */
#define XL_BPF_ROOT_HINT " (run as root: loading BPF needs CAP_BPF and CAP_NET_ADMIN)"

/* A message for the caller into BUF, cut at SIZE like its fixed-size error buffers. */
static inline void __attribute__((format(printf, 3, 4))) xl_msg(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------- clocks */

static inline uint64_t xl_clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static inline double xl_clock_s(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline uint64_t xl_mono_ns(void)
{
	return xl_clock_ns(CLOCK_MONOTONIC);
}

static inline double xl_now_mono(void)
{
	return xl_clock_s(CLOCK_MONOTONIC);
}

static inline double xl_now_real(void)
{
	return xl_clock_s(CLOCK_REALTIME);
}

/* User + system CPU time of the process (all threads) in *out; false if unknown. */
static inline bool xl_process_cpu_s(double *out)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return false;
	*out = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	return true;
}

/* ------------------------------------------------------------- JSON */

/* S as a JSON string ("" for NULL). */
static inline void xl_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* ------------------------------------------------------------- options */

/* A bad command line: XL_USER_ERR_PREFIX, the message and a newline on stderr, exit 2. */
static inline void __attribute__((format(printf, 1, 2), noreturn)) xl_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs(XL_USER_ERR_PREFIX, stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* Option OPT's decimal integer S, in MIN..MAX. */
static inline long long xl_parse_ll(const char *s, long long min, long long max, const char *opt)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		xl_usage_error("%s '%s' must be an integer in %lld..%lld", opt, s, min, max);
	return v;
}

/* A power of 2 in MIN..MAX (ring sizes). */
static inline unsigned int xl_parse_pow2(const char *s, long long min, long long max, const char *opt)
{
	unsigned int v = (unsigned int)xl_parse_ll(s, min, max, opt);

	if (v & (v - 1))
		xl_usage_error("%s %u is not a power of 2", opt, v);
	return v;
}

/* A CPU number: 0 .. configured CPUs - 1. */
static inline int xl_parse_cpu(const char *s, const char *opt)
{
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);

	return (int)xl_parse_ll(s, 0, ncpu > 0 ? ncpu - 1 : 0, opt);
}

/* Index of S among the N words NAMES; else "OPT must be a, b or c, not 'S'". */
static inline int xl_parse_choice(const char *s, const char *opt, const char *const *names, int n)
{
	char list[256] = "";
	size_t used = 0;
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return i;
	for (i = 0; i < n && used < sizeof(list); i++)
		used += snprintf(list + used, sizeof(list) - used, "%s%s", i == 0 ? "" : i + 1 < n ? ", " : " or ",
				 names[i]);
	xl_usage_error("%s must be %s, not '%s'", opt, list, s);
}

/* --xdp-mode driver|generic: true for generic (XDP_FLAGS_SKB_MODE). */
static inline bool xl_parse_xdp_mode(const char *s)
{
	static const char *const modes[] = { "driver", "generic" };

	return xl_parse_choice(s, "--xdp-mode", modes, 2) == 1;
}

/* --interface given and short enough; --netns (if given) a plain name. */
static inline void xl_check_interface_args(const char *ifname, const char *netns)
{
	if (!ifname || !*ifname)
		xl_usage_error("no interface given: use --interface NAME");
	if (strlen(ifname) >= IF_NAMESIZE)
		xl_usage_error("interface name '%s' is longer than %d characters", ifname, IF_NAMESIZE - 1);
	if (netns && (!*netns || strchr(netns, '/') || !strcmp(netns, ".") || !strcmp(netns, "..")))
		xl_usage_error("--netns '%s' is not a namespace name", netns);
}

/* ------------------------------------------------------------- process */

/*
 * SIGTERM, SIGINT and SIGHUP call ON_STOP (no SA_RESTART: a blocking call
 * returns EINTR), SIGPIPE is ignored, RLIMIT_MEMLOCK is lifted (best effort:
 * root has CAP_IPC_LOCK anyway).
 */
static inline void xl_process_setup(void (*on_stop)(int))
{
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	setrlimit(RLIMIT_MEMLOCK, &unlimited);
}

/* Pin the calling thread to CPU; 0, or -1 with errno set. */
static inline int xl_pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

/*
 * Enter network namespace NAME (XL_NETNS_RUN_DIR/NAME). 0, or -errno with
 * the reason in MSG; EPERM_HINT is appended to the message when setns()
 * itself was refused with EPERM.
 */
static inline int xl_enter_netns(const char *name, const char *eperm_hint, char *msg, size_t size)
{
	char path[PATH_MAX];
	int fd, e;

	snprintf(path, sizeof(path), "%s/%s", XL_NETNS_RUN_DIR, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		xl_msg(msg, size, "network namespace %s does not exist (%s: %s)", name, path, strerror(e));
		return -e;
	}
	if (setns(fd, CLONE_NEWNET)) {
		e = errno;
		close(fd);
		xl_msg(msg, size, "cannot enter network namespace %s: %s%s", name, strerror(e),
		       e == EPERM ? eperm_hint : "");
		return -e;
	}
	close(fd);
	return 0;
}

/* ------------------------------------------------------------- interfaces */

/* "IFNAME" or "IFNAME in namespace NETNS", for messages (a static buffer). */
static inline const char *xl_where(const char *ifname, const char *netns)
{
	static char buf[IF_NAMESIZE + 300];

	if (netns)
		snprintf(buf, sizeof(buf), "%s in namespace %s", ifname, netns);
	else
		snprintf(buf, sizeof(buf), "%s", ifname);
	return buf;
}

/* ioctl REQ on interface IFNAME (its name is put into IFR); 0 or -errno. */
static inline int xl_if_ioctl(const char *ifname, unsigned long req, struct ifreq *ifr)
{
	int fd, ret;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	strncpy(ifr->ifr_name, ifname, IFNAMSIZ - 1);
	ret = ioctl(fd, req, ifr) ? -errno : 0;
	close(fd);
	return ret;
}

/* SIOCETHTOOL with DATA (a struct ethtool_* with its cmd set); 0 or -errno. */
static inline int xl_ethtool(const char *ifname, void *data)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_data = data;
	return xl_if_ioctl(ifname, SIOCETHTOOL, &ifr);
}

/* The interface's driver name into BUF; BUF is left alone if ethtool does not say. */
static inline void xl_read_driver(const char *ifname, char *buf, size_t size)
{
	struct ethtool_drvinfo info = { .cmd = ETHTOOL_GDRVINFO };

	if (xl_ethtool(ifname, &info) == 0)
		snprintf(buf, size, "%s", info.driver);
}

/* Number of RX queues (ethtool channels), 0 if the driver does not say. */
static inline unsigned int xl_rx_queues(const char *ifname)
{
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };

	if (xl_ethtool(ifname, &ch))
		return 0;
	return ch.rx_count > ch.combined_count ? ch.rx_count : ch.combined_count;
}

/* ------------------------------------------------------------- XDP object */

/* An embedded XDP object with one program, its XSKMAP and a counters map. */
struct xl_xdp_obj {
	struct bpf_object *obj;
	int prog_fd, xsks_fd;
	int stats_fd;	/* -1: the object has no such map */
	__u32 prog_id;
};

#define XL_XDP_OBJ_INIT { .prog_fd = -1, .xsks_fd = -1, .stats_fd = -1 }

/* What xl_xdp_obj_load could not do. */
enum xl_xdp_obj_failure {
	XL_OBJ_OK = 0,
	XL_OBJ_OPEN,	/* not an object libbpf can open */
	XL_OBJ_LOAD,	/* the kernel rejected it */
	XL_OBJ_LOOKUP,	/* PROG or XSKMAP is missing */
};

/*
 * Open the ELF image [START, END) as object NAME, load it and find program
 * PROG, map XSKMAP and (optional) map STATS. XL_OBJ_OK, or the step that
 * failed with its errno in *err (the caller's clean-up closes O).
 */
static inline enum xl_xdp_obj_failure xl_xdp_obj_load(struct xl_xdp_obj *o, const char *name, const char *start,
						     const char *end, const char *prog, const char *xskmap,
						     const char *stats, int *err)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .object_name = name);
	struct bpf_program *p;
	struct bpf_map *map;
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int ret;

	*err = 0;
	o->obj = bpf_object__open_mem(start, end - start, &oo);
	if (!o->obj) {
		*err = errno;
		return XL_OBJ_OPEN;
	}
	ret = bpf_object__load(o->obj);
	if (ret) {
		*err = -ret;
		return XL_OBJ_LOAD;
	}
	p = bpf_object__find_program_by_name(o->obj, prog);
	map = bpf_object__find_map_by_name(o->obj, xskmap);
	if (!p || !map) {
		*err = ENOENT;
		return XL_OBJ_LOOKUP;
	}
	o->prog_fd = bpf_program__fd(p);
	o->xsks_fd = bpf_map__fd(map);
	map = bpf_object__find_map_by_name(o->obj, stats);
	o->stats_fd = map ? bpf_map__fd(map) : -1;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(o->prog_fd, &info, &len) == 0)
		o->prog_id = info.id;
	return XL_OBJ_OK;
}

static inline void xl_xdp_obj_close(struct xl_xdp_obj *o)
{
	if (o->obj) {
		bpf_object__close(o->obj);
		o->obj = NULL;
		o->prog_fd = o->xsks_fd = o->stats_fd = -1;
	}
}

/*
 * " (id N, name NAME)" of the XDP program attached to IFINDEX, with
 * ", generic|driver|other mode" when WITH_MODE; "" when there is none.
 */
static inline void xl_describe_attached(int ifindex, bool with_mode, char *buf, size_t size)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int fd;

	buf[0] = '\0';
	if (bpf_xdp_query(ifindex, 0, &q) || !q.prog_id)
		return;
	memset(&info, 0, sizeof(info));
	fd = bpf_prog_get_fd_by_id(q.prog_id);
	if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
		if (with_mode)
			snprintf(buf, size, " (id %u, name %s, %s mode)", q.prog_id, info.name,
				 q.attach_mode == XDP_ATTACHED_SKB ? "generic" :
				 q.attach_mode == XDP_ATTACHED_DRV ? "driver" : "other");
		else
			snprintf(buf, size, " (id %u, name %s)", q.prog_id, info.name);
	} else {
		snprintf(buf, size, " (id %u)", q.prog_id);
	}
	if (fd >= 0)
		close(fd);
}

/*
 * Sum a per-CPU array's keys 0 .. NKEYS-1 over the CPUs; each value is
 * WORDS u64s, out[key * WORDS + i]. False (OUT zeroed or partial) when the
 * map is missing or cannot be read.
 */
static inline bool xl_percpu_sum(int map_fd, __u32 nkeys, unsigned int words, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals;
	bool ok = false;
	__u32 key;
	int i;
	unsigned int j;

	memset(out, 0, sizeof(uint64_t) * nkeys * words);
	if (map_fd < 0 || ncpu <= 0)
		return false;
	vals = calloc((size_t)ncpu * words, sizeof(*vals));
	if (!vals)
		return false;
	for (key = 0; key < nkeys; key++) {
		if (bpf_map_lookup_elem(map_fd, &key, vals))
			goto out;
		for (i = 0; i < ncpu; i++)
			for (j = 0; j < words; j++)
				out[key * words + j] += vals[(size_t)i * words + j];
	}
	ok = true;
out:
	free(vals);
	return ok;
}

/* ------------------------------------------------------------- AF_XDP */

#ifdef XL_USER_XSK
#include <linux/if_xdp.h>
#include <sys/mman.h>
#include <xdp/xsk.h>

/*
 * SIZE bytes of anonymous, populated memory registered as a UMEM with UCFG
 * (rings FQ and CQ). 0, or -errno with the reason in MSG; a registration
 * failure leaves *AREA mapped for xl_umem_destroy.
 */
static inline int xl_umem_create(void **area, size_t size, struct xsk_umem **umem, struct xsk_ring_prod *fq,
				 struct xsk_ring_cons *cq, const struct xsk_umem_config *ucfg, char *msg,
				 size_t msgsize)
{
	int err;

	*area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (*area == MAP_FAILED) {
		err = errno;
		*area = NULL;
		xl_msg(msg, msgsize, "cannot allocate %zu bytes of UMEM: %s", size, strerror(err));
		return -err;
	}
	err = xsk_umem__create(umem, *area, size, fq, cq, ucfg);
	if (err) {
		*umem = NULL;
		xl_msg(msg, msgsize, "cannot register the UMEM (%zu bytes): %s", size, strerror(-err));
		return err;
	}
	return 0;
}

static inline void xl_umem_destroy(struct xsk_umem **umem, void **area, size_t size)
{
	if (*umem) {
		xsk_umem__delete(*umem);
		*umem = NULL;
	}
	if (*area) {
		munmap(*area, size);
		*area = NULL;
	}
}

/* Put frames 0 .. N-1 (FRAME_SIZE apart) on the FILL ring; 0 or -ENOSPC. */
static inline int xl_fill_ring(struct xsk_ring_prod *fq, __u32 n, __u32 frame_size)
{
	__u32 idx = 0, i;

	if (xsk_ring_prod__reserve(fq, n, &idx) != n)
		return -ENOSPC;
	for (i = 0; i < n; i++)
		*xsk_ring_prod__fill_addr(fq, idx++) = (__u64)i * frame_size;
	xsk_ring_prod__submit(fq, n);
	return 0;
}

/* Whether the socket runs in zero-copy mode (XDP_OPTIONS) in *zerocopy; -1 if unknown. */
static inline int xl_xsk_zerocopy(int xsk_fd, bool *zerocopy)
{
	struct xdp_options xo;
	socklen_t len = sizeof(xo);

	memset(&xo, 0, sizeof(xo));
	if (getsockopt(xsk_fd, SOL_XDP, XDP_OPTIONS, &xo, &len))
		return -1;
	*zerocopy = xo.flags & XDP_OPTIONS_ZEROCOPY;
	return 0;
}

/* The socket's XDP_STATISTICS in *xs (zeroed); false if there is no socket or it cannot say. */
static inline bool xl_xsk_statistics(int xsk_fd, struct xdp_statistics *xs)
{
	socklen_t len = sizeof(*xs);

	memset(xs, 0, sizeof(*xs));
	return xsk_fd >= 0 && getsockopt(xsk_fd, SOL_XDP, XDP_STATISTICS, xs, &len) == 0;
}

/* XDP_STATISTICS as a JSON object (the fields' kernel names). */
static inline void xl_json_xsk_statistics(FILE *f, const struct xdp_statistics *xs)
{
	fprintf(f, "{\"rx_dropped\": %llu, \"rx_invalid_descs\": %llu, \"tx_invalid_descs\": %llu, "
		   "\"rx_ring_full\": %llu, \"rx_fill_ring_empty_descs\": %llu, \"tx_ring_empty_descs\": %llu}",
		(unsigned long long)xs->rx_dropped, (unsigned long long)xs->rx_invalid_descs,
		(unsigned long long)xs->tx_invalid_descs, (unsigned long long)xs->rx_ring_full,
		(unsigned long long)xs->rx_fill_ring_empty_descs, (unsigned long long)xs->tx_ring_empty_descs);
}
#endif /* XL_USER_XSK */

#endif /* XDPLAB_USER_H */
