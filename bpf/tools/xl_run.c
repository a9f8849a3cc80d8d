// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * xl_run - run an xdplab program's packet logic in user space, compiled by
 * the host C compiler from the very headers the XDP programs use (the third
 * compiler of DESIGN.md section 5). For equivalence tests and debugging.
 *
 *   xl_run PROGRAM < packets      PROGRAM: drop | loop | checksum | dns_nxdomain
 *   xl_run --n                    print the compiled-in N and exit
 *
 * Input: one frame per line as hex digits (whitespace between digits is
 * ignored; empty lines and lines starting with '#' are skipped; a line "-"
 * is an empty frame).
 * Output: one line per frame: "<VERDICT> <hex of the frame after the
 * program ran>" ("-" for an empty frame), VERDICT one of XDP_ABORTED,
 * XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT.
 *
 * N (loop, checksum) is a compile-time constant as in the kernel builds:
 * build one binary per N with -DN=<n> (default 1).
 */
#define _POSIX_C_SOURCE 200809L /* getline */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xdplab/types.h"
#include "xdplab/drop.h"
#include "xdplab/loop.h"
#include "xdplab/checksum.h"
#include "xdplab/dns_nxdomain.h"

#define XL_RUN_MAX_FRAME 65536
/* Each frame runs in its own heap buffer, exactly as long as the frame (so
 * AddressSanitizer builds catch any read past data_end), starting 2 bytes
 * into the malloc'ed (16-aligned) block so that the IPv4 header behind a
 * 14-byte Ethernet header is 4-byte aligned. */
#define XL_RUN_HEADROOM 2

typedef int (*xl_logic_fn)(void *data, void *data_end);

static const struct {
	const char *name;
	xl_logic_fn fn;
} programs[] = {
	{ "drop", xl_drop_logic },
	{ "loop", xl_loop_logic },
	{ "checksum", xl_checksum_logic },
	{ "dns_nxdomain", xl_dns_nxdomain_logic },
};

static const char *verdict_name(int v)
{
	static const char *names[] = { "XDP_ABORTED", "XDP_DROP", "XDP_PASS",
				       "XDP_TX", "XDP_REDIRECT" };

	if (v >= 0 && v < (int)(sizeof(names) / sizeof(names[0])))
		return names[v];
	return "XDP_UNKNOWN";
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A line that is just "-" (blanks around it allowed): an empty frame. */
static int is_empty_marker(const char *line)
{
	line += strspn(line, " \t");
	if (*line != '-')
		return 0;
	line++;
	return line[strspn(line, " \t\r\n")] == '\0';
}

/* Parse hex digits of LINE into OUT; returns length or -1 on bad input. */
static long parse_hex(const char *line, unsigned char *out, long max)
{
	long n = 0;
	int hi = -1;

	for (; *line; line++) {
		int v;

		if (*line == ' ' || *line == '\t' || *line == '\n' || *line == '\r')
			continue;
		v = hexval((unsigned char)*line);
		if (v < 0)
			return -1;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n >= max)
			return -1;
		out[n++] = (unsigned char)(hi << 4 | v);
		hi = -1;
	}
	return hi < 0 ? n : -1;
}

int main(int argc, char **argv)
{
	static unsigned char parsed[XL_RUN_MAX_FRAME];
	unsigned char *block, *frame;
	xl_logic_fn fn = NULL;
	char *line = NULL;
	size_t cap = 0;
	long lineno = 0;
	size_t i;

	if (argc == 2 && strcmp(argv[1], "--n") == 0) {
		printf("%lu\n", (unsigned long)(N));
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: %s drop|loop|checksum|dns_nxdomain < hex-frames\n"
				"       %s --n\n", argv[0], argv[0]);
		return 2;
	}
	for (i = 0; i < sizeof(programs) / sizeof(programs[0]); i++)
		if (strcmp(argv[1], programs[i].name) == 0)
			fn = programs[i].fn;
	if (!fn) {
		fprintf(stderr, "xl_run: unknown program '%s' (built-ins: drop, loop, "
				"checksum, dns_nxdomain)\n", argv[1]);
		return 2;
	}

	while (getline(&line, &cap, stdin) >= 0) {
		long len, k;
		int verdict;

		lineno++;
		if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line))
			continue;
		len = is_empty_marker(line) ? 0 : parse_hex(line, parsed, XL_RUN_MAX_FRAME);
		if (len < 0) {
			fprintf(stderr, "xl_run: line %ld: expected an even number of hex digits "
					"(at most %d bytes) or \"-\"\n", lineno, XL_RUN_MAX_FRAME);
			free(line);
			return 1;
		}
		block = malloc(XL_RUN_HEADROOM + len);
		if (!block) {
			fprintf(stderr, "xl_run: out of memory\n");
			free(line);
			return 1;
		}
		frame = block + XL_RUN_HEADROOM;
		memcpy(frame, parsed, len);
		verdict = fn(frame, frame + len);
		printf("%s ", verdict_name(verdict));
		if (len == 0)
			putchar('-');
		for (k = 0; k < len; k++)
			printf("%02x", frame[k]);
		putchar('\n');
		free(block);
	}
	free(line);
	return ferror(stdin) ? 1 : 0;
}
