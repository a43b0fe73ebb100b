/*
 * catalog.c - prints the catalog service's JSON document (what this
 * instance may discover), then the availability of a few names as
 * "<name>=<0|1>" lines.
 */

#include "svc.h"

EXPORT(main) void main_(void)
{
	int16_t code = discover("catalog");
	if (code < 0)
		fail("catalog unavailable");
	const char *r;
	size_t n = call(code, "json", 4, &r);
	print_data(r, n);
	static const char *const names[] = {"identity", "random", "scope", "gate.computer/localhost", "peer"};
	for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
		print(names[i]);
		print(discover(names[i]) >= 0 ? "=1\n" : "=0\n");
	}
}
