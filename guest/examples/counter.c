/*
 * counter.c - an endless counter, for tests of long-running instances.
 *
 * Exports:
 *   count        accept an origin stream and write "0\n", "1\n", ... to it,
 *                one line every 100 ms, forever
 *   count_fast   the same without waiting; only the host's flow control
 *                slows it down (it blocks in gate_io until granted more)
 *   debug_count  write the lines to the debug log instead, every 100 ms,
 *                forever; uses no services
 *
 * When a client goes away (the host closes the stream with flow 0), count
 * and count_fast close their side and accept the next client; numbering
 * continues where it was.
 */

#include "util.h"

#define INTERVAL_NS 100000000 /* 100 ms */

static void serve_counter(int64_t interval)
{
	discover_origin();
	accept_stream(0);

	for (uint64_t i = 0;; i++) {
		char line[24];
		size_t len = format_uint(line, i);
		line[len++] = '\n';

		while (!stream_write(line, len)) {
			/* The client is gone: finish this stream, wait for another. */
			stream_close();
			accept_stream(0);
		}

		if (interval > 0)
			sleep_ns(interval);
	}
}

EXPORT(count) void count(void)
{
	serve_counter(INTERVAL_NS);
}

EXPORT(count_fast) void count_fast(void)
{
	serve_counter(0);
}

EXPORT(debug_count) void debug_count(void)
{
	for (uint64_t i = 0;; i++) {
		gate_debug_uint(i);
		gate_debug_str("\n");
		sleep_ns(INTERVAL_NS);
	}
}
