/*
 * random.c - exercises the random service.
 *
 * main: two 16-byte calls ("a=<hex>", "b=<hex>"), a zero-count call and an
 * empty call ("zero=0 empty=0").  Prints "random unavailable" and returns
 * when the service cannot be discovered.
 * slow: one 200-byte call (slow under a low rate limit, so the instance can
 * be suspended while waiting); prints "waiting" first and "got=<n>" at the end.
 */

#include "svc.h"

static int16_t random_code(void)
{
	int16_t code = discover("random");
	if (code < 0) {
		print("random unavailable\n");
	}
	return code;
}

EXPORT(main) void main_(void)
{
	int16_t code = random_code();
	if (code < 0)
		return;
	const char *r;
	uint8_t count = 16;
	size_t n = call(code, &count, 1, &r);
	if (n != 16)
		fail("short reply");
	print("a=");
	print_hex(r, n);
	n = call(code, &count, 1, &r);
	if (n != 16)
		fail("short reply");
	print(" b=");
	print_hex(r, n);
	count = 0;
	print(" zero=");
	print_uint(call(code, &count, 1, &r));
	print(" empty=");
	print_uint(call(code, NULL, 0, &r));
	print("\n");
}

EXPORT(slow) void slow(void)
{
	int16_t code = random_code();
	if (code < 0)
		return;
	uint8_t count = 200;
	print("waiting\n");
	const char *r;
	size_t n = call(code, &count, 1, &r);
	print("got=");
	print_uint(n);
	print("\n");
}
