/*
 * echo.c - copies a client's input back to it.
 *
 * Export echo: discover origin, accept one stream, grant input flow, then
 * copy every input byte to the output (waiting for the host's send flow when
 * needed) until the input ends; then close the stream and return.
 *
 * Input larger than the receive window works because util.h grants the
 * window back as the program consumes input.
 */

#include "util.h"

static char chunk[8192];

EXPORT(echo) void echo(void)
{
	discover_origin();
	accept_stream(IN_CAP);

	for (;;) {
		size_t n = stream_read(chunk, sizeof chunk);
		if (n == 0)
			break; /* end of input */
		if (!stream_write(chunk, n))
			fail("client closed the stream before the echo was complete");
	}

	stream_close();
}
