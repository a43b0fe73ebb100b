/*
 * scope.c - exercises the scope service.
 *
 * main: restrict to {program:system, net:example}, then to {program:system};
 * print each reply ("restrict=<len>:<error>") and the reply length of an
 * unknown call ("unknown=0").
 * hold: restrict to {program:system}, print "restricted", then wait for a
 * packet that never comes (the test suspends the instance there).
 * invalid: restrict with the invalid token "a::b" (ends the run).
 */

#include "svc.h"

static int16_t scope_code(void)
{
	int16_t code = discover("scope");
	if (code < 0)
		fail("scope unavailable");
	return code;
}

/* Call restrict with a NULL-terminated token list; print the reply. */
static void restrict_to(int16_t code, const char *const tokens[])
{
	char buf[512];
	size_t len = 2;
	unsigned count = 0;
	buf[0] = 0; /* restrict */
	for (; tokens[count]; count++) {
		size_t t = str_len(tokens[count]);
		buf[len++] = (char) t;
		memcpy(buf + len, tokens[count], t);
		len += t;
	}
	buf[1] = (char) count;
	const char *r;
	size_t n = call(code, buf, len, &r);
	print("restrict=");
	print_uint(n);
	if (n >= 2) {
		int16_t error;
		memcpy(&error, r, 2);
		print(":");
		print_int(error);
	}
	print("\n");
}

EXPORT(main) void main_(void)
{
	int16_t code = scope_code();
	static const char *const both[] = {"program:system", "net:example", NULL};
	static const char *const sys[] = {"program:system", NULL};
	restrict_to(code, both);
	restrict_to(code, sys);
	uint8_t unknown = 1;
	print("unknown=");
	print_uint(call(code, &unknown, 1, NULL));
	print("\n");
}

EXPORT(hold) void hold(void)
{
	int16_t code = scope_code();
	static const char *const sys[] = {"program:system", NULL};
	restrict_to(code, sys);
	print("restricted\n");
	await_packet(code, GATE_PACKET_DOMAIN_INFO); /* never sent */
}

EXPORT(invalid) void invalid(void)
{
	int16_t code = scope_code();
	static const char *const bad[] = {"a::b", NULL};
	restrict_to(code, bad);
	print("not killed\n");
}
