/*
 * hash.c - a CPU-bound program: SHA-256 over 1 MiB, many times.
 *
 * The 1 MiB buffer is filled by a xorshift32 generator (seed 0x12345678,
 * each step x ^= x << 13; x ^= x >> 17; x ^= x << 5; the new x is stored as
 * a little-endian word).  Each round hashes the whole buffer and then
 * overwrites the first 32 bytes with the digest, so rounds depend on each
 * other and cannot be skipped.  The digest of the last round is the result.
 *
 * Exports:
 *   hash        `rounds` rounds; writes "<64 hex digits>\n" to the debug log,
 *               then accepts an origin stream, writes the same line there,
 *               closes the stream and returns
 *   hash_small  the same with 3 rounds (quick, for tests)
 *   hash_debug  `rounds` rounds; only the debug log line, no services
 *
 * `rounds` is a u32 in linear memory; the linker also exports its address
 * as the i32 global "rounds", so a test can find it (and lower it).
 */

#include "sha256.h"
#include "util.h"

#define BUFFER_SIZE (1024 * 1024)
#define DEFAULT_ROUNDS 120
#define SMALL_ROUNDS 3

volatile uint32_t rounds = DEFAULT_ROUNDS;

static uint8_t buffer[BUFFER_SIZE];

/* ---- the workload ---- */

static void fill_buffer(void)
{
	uint32_t x = 0x12345678;
	for (size_t i = 0; i < BUFFER_SIZE; i += 4) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buffer[i] = (uint8_t) x;
		buffer[i + 1] = (uint8_t) (x >> 8);
		buffer[i + 2] = (uint8_t) (x >> 16);
		buffer[i + 3] = (uint8_t) (x >> 24);
	}
}

/* Run n rounds and format the final digest as 64 hex digits and "\n". */
static void compute(uint32_t n, char line[65])
{
	uint8_t digest[32] = {0};
	fill_buffer();
	for (uint32_t r = 0; r < n; r++) {
		sha256(digest, buffer, BUFFER_SIZE);
		memcpy(buffer, digest, sizeof digest);
	}
	sha256_hex(line, digest);
	line[64] = '\n';
}

static void hash_and_report(uint32_t n)
{
	char line[65];
	compute(n, line);
	gate_debug_data(line, sizeof line);

	discover_origin();
	accept_stream(0);
	if (!stream_write(line, sizeof line))
		fail("client closed the stream");
	stream_close();
}

EXPORT(hash) void hash(void)
{
	hash_and_report(rounds);
}

EXPORT(hash_small) void hash_small(void)
{
	hash_and_report(SMALL_ROUNDS);
}

EXPORT(hash_debug) void hash_debug(void)
{
	char line[65];
	compute(rounds, line);
	gate_debug_data(line, sizeof line);
}
