/*
 * external.c - discovers and calls the example external service
 * (example.net/counter, served over gRPC by src/services/grpc/example.ts):
 * two calls, printing "count=<n> echo=<content>" for each reply.  Prints
 * "counter unavailable" when the service cannot be discovered.
 */

#include "svc.h"

static void counter_call(int16_t code, const char *text)
{
	const char *r;
	size_t n = call(code, text, str_len(text), &r);
	if (n < 4)
		fail("short reply");
	uint32_t count;
	memcpy(&count, r, 4);
	print("count=");
	print_uint(count);
	print(" echo=");
	print_data(r + 4, n - 4);
	print("\n");
}

EXPORT(main) void main_(void)
{
	int16_t code = discover("example.net/counter");
	if (code < 0) {
		print("counter unavailable\n");
		return;
	}
	counter_call(code, "hello");
	counter_call(code, "again");
}
