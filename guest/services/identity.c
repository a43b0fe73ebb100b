/*
 * identity.c - exercises the identity service.
 *
 * main: print "principal=<id>", "instance=<uuid>" and the reply length of an
 * unknown call ("unknown=0"), one per line.
 * oversize: send identity a packet larger than 65536 bytes (the host must
 * end the run as an ABI violation).
 * unavailable: send a call to an unavailable service, then use identity; the
 * first call must be dropped without harm ("dropped then instance=<uuid>").
 */

#include "svc.h"

EXPORT(main) void main_(void)
{
	int16_t code = discover("identity");
	if (code < 0)
		fail("identity unavailable");
	const char *r;
	size_t n;

	uint8_t principal = 0;
	n = call(code, &principal, 1, &r);
	print("principal=");
	print_data(r, n);
	print("\n");

	uint8_t instance = 1;
	n = call(code, &instance, 1, &r);
	print("instance=");
	print_data(r, n);
	print("\n");

	uint8_t unknown = 9;
	n = call(code, &unknown, 1, &r);
	print("unknown=");
	print_uint(n);
	print("\n");

	n = call(code, NULL, 0, &r);
	print("empty=");
	print_uint(n);
	print("\n");
}

EXPORT(oversize) void oversize(void)
{
	int16_t code = discover("identity");
	if (code < 0)
		fail("identity unavailable");
	/* A header claiming 65537 bytes: the host checks the size at once. */
	struct gate_packet *p = (void *) tx;
	*p = (struct gate_packet){.size = 65536 + 1, .code = code, .domain = GATE_PACKET_DOMAIN_CALL};
	io_once(tx, sizeof *p, -1);
	wait_io(-1);
	print("not killed\n");
}

EXPORT(unavailable) void unavailable(void)
{
	int16_t none = discover("no.such/service");
	if (none >= 0)
		fail("unknown service is available");
	/* Its code is valid but unavailable: the packet is discarded. */
	struct gate_packet *p = (void *) tx;
	*p = (struct gate_packet){.code = (int16_t) (svc_requested - 1), .domain = GATE_PACKET_DOMAIN_CALL};
	send_tx(sizeof *p);
	print("dropped then ");

	int16_t code = discover("identity");
	uint8_t instance = 1;
	const char *r;
	size_t n = call(code, &instance, 1, &r);
	print("instance=");
	print_data(r, n);
	print("\n");
}
