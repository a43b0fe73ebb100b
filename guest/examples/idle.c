/*
 * idle.c - spends most of its life waiting, for tests of hibernation.
 *
 * Export idle: ROUNDS rounds of work on a table in memory, each followed
 * by a line in the debug log and a nap (gate_io with a timeout and nothing
 * to send or receive) of 20 to 50 ms; it talks to no service meanwhile.
 * Then it accepts a client and answers every input line with the line's
 * checksum and a running total (both in decimal), until the input ends;
 * then it closes the stream and returns.  Its output and its memory depend
 * only on its input: a run that was hibernated while it waited must end
 * exactly as one that was not.
 *
 * Export alarm: waits 500 ms (a gate_io with that timeout and nothing to
 * send or receive, the only thing that can end it), then returns.
 */

#include "util.h"

#define ROUNDS 12
#define TABLE 16384 /* 64 KiB of state */

static uint32_t table[TABLE];
static uint64_t total;

static uint32_t mix(uint32_t x)
{
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return x;
}

static void debug_line(const char *what, uint64_t n)
{
	gate_debug(what);
	gate_debug_uint(n);
	gate_debug("\n");
}

static void answer(const char *line, size_t len)
{
	uint32_t sum = 0;
	for (size_t i = 0; i < len; i++) {
		sum = mix(sum + (uint8_t) line[i] + 1);
		table[(sum + i) % TABLE] ^= sum;
	}
	total += sum;

	char out[48];
	size_t n = format_uint(out, sum);
	out[n++] = ' ';
	n += format_uint(out + n, total);
	out[n++] = '\n';
	if (!stream_write(out, n))
		fail("client closed the stream");
}

EXPORT(idle) void idle(void)
{
	uint32_t x = 2463534242u;
	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < TABLE; i++) {
			x = mix(x);
			table[i] += x;
		}
		debug_line("round ", (uint64_t) table[round] + round);
		wait_io((int64_t) (20 + x % 31) * 1000000);
	}

	discover_origin();
	accept_stream(IN_CAP);

	char line[256];
	size_t len = 0;
	char chunk[64];
	size_t n;
	while ((n = stream_read(chunk, sizeof chunk)) > 0) {
		for (size_t i = 0; i < n; i++) {
			if (chunk[i] == '\n' || len == sizeof line) {
				answer(line, len);
				len = 0;
				if (chunk[i] == '\n')
					continue;
			}
			line[len++] = chunk[i];
		}
	}
	if (len > 0)
		answer(line, len);
	debug_line("total ", total);
	stream_close();
}

EXPORT(alarm) void alarm(void)
{
	while (wait_io(500000000) != 0)
		;
}
