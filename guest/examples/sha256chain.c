/*
 * sha256chain.c - a CPU-bound loop program: a SHA-256 hash chain.
 *
 * Starting from 32 zero bytes, each step replaces the 32-byte value with its
 * SHA-256 digest (one padded block per step), so every step depends on the
 * previous one.  Unlike hash.c, which streams a 1 MiB buffer through the
 * compression function, the work here is many short messages: the whole
 * init, padding and finalization per block.
 *
 * Exports (no services; the result goes to the debug log):
 *   chain        CHAIN_STEPS steps: "sha256chain: <64 hex digits>\n"
 *   chain_small  SMALL_STEPS steps, the same format (quick, for tests)
 */

#include "sha256.h"
#include "util.h"

#define CHAIN_STEPS 600000
#define SMALL_STEPS 1000

static void run_chain(uint32_t steps)
{
	uint8_t value[32] = {0};
	for (uint32_t i = 0; i < steps; i++)
		sha256(value, value, sizeof value);

	static const char prefix[] = "sha256chain: ";
	char line[sizeof prefix - 1 + 64 + 1];
	memcpy(line, prefix, sizeof prefix - 1);
	sha256_hex(line + sizeof prefix - 1, value);
	line[sizeof line - 1] = '\n';
	gate_debug_data(line, sizeof line);
}

EXPORT(chain) void chain(void)
{
	run_chain(CHAIN_STEPS);
}

EXPORT(chain_small) void chain_small(void)
{
	run_chain(SMALL_STEPS);
}
