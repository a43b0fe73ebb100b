/*
 * wait.c - spends its life blocked in gate_io, waiting for input.
 *
 * Export wait: discover origin, accept one stream (input window 32 KiB),
 * then block (gate_io with timeout -1) until input arrives.  Each complete
 * line is sent back in upper case (ASCII letters only).  When the input
 * ends, a final unterminated line is sent as well, the stream is closed and
 * the function returns.  Meant for testing suspension of a program that is
 * blocked in an import call.
 */

#include "util.h"

#define LINE_MAX 4096

static char line[LINE_MAX];
static size_t line_len;

static void flush_line(void)
{
	if (line_len == 0)
		return;
	if (!stream_write(line, line_len))
		fail("client closed the stream");
	line_len = 0;
}

EXPORT(wait) void wait_export(void)
{
	discover_origin();
	accept_stream(IN_CAP);

	char chunk[1024];
	size_t n;
	while ((n = stream_read(chunk, sizeof chunk)) > 0) {
		for (size_t i = 0; i < n; i++) {
			char c = chunk[i];
			if (c >= 'a' && c <= 'z')
				c = (char) (c - 'a' + 'A');
			line[line_len++] = c;
			/* Send at each newline; overlong lines go out in pieces. */
			if (c == '\n' || line_len == LINE_MAX)
				flush_line();
		}
	}

	flush_line();
	stream_close();
}
