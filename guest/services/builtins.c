/*
 * builtins.c - discovers and uses the built-in services identity, random
 * and scope, and reports to its client on the origin stream (so the report
 * reaches the caller through gate-server, gate-daemon and `gate call
 * --in-process` alike; a server has no debug log channel).
 *
 * main: accept one origin connection and write, one per line:
 *   identity.principal=<principal id, empty when anonymous>
 *   identity.instance=<instance uuid>
 *   random=<16 random bytes in hex>           (or "random unavailable")
 *   scope.restrict=<reply length>:<error>     (restrict to program:system)
 * then close the stream and return 0.
 */

#include "svc.h"

static int16_t origin = -1;
static int32_t stream_id = -1;
static int64_t send_credit;

static char out[1024];
static size_t out_len;

static void out_data(const void *data, size_t len)
{
	if (out_len + len > sizeof out)
		fail("report too long");
	memcpy(out + out_len, data, len);
	out_len += len;
}

static void out_str(const char *s)
{
	out_data(s, str_len(s));
}

static void out_hex(const void *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *b = data;
	for (size_t i = 0; i < len; i++) {
		char pair[2] = {digits[b[i] >> 4], digits[b[i] & 15]};
		out_data(pair, 2);
	}
}

static void out_uint(uint64_t n)
{
	char buf[20];
	size_t i = sizeof buf;
	do {
		buf[--i] = (char) ('0' + n % 10);
		n /= 10;
	} while (n > 0);
	out_data(buf + i, sizeof buf - i);
}

/* Accept a client (an empty call to origin); take no input (flow 0). */
static void accept_client(void)
{
	const char *r;
	size_t n = call(origin, NULL, 0, &r);
	if (n < 8)
		fail("short accept reply");
	memcpy(&stream_id, r, 4);
	struct gate_flow none = {.id = stream_id, .value = 0};
	send_content(origin, GATE_PACKET_DOMAIN_FLOW, &none, sizeof none);
}

/* Write the report in data packets as the client's flow credit allows, then end the stream. */
static void send_report(void)
{
	static char packet[8 + sizeof out];
	size_t off = 0;
	while (off < out_len) {
		while (send_credit <= 0) {
			const struct gate_packet *p = await_packet(origin, GATE_PACKET_DOMAIN_FLOW);
			size_t len;
			const struct gate_flow *flows = (const void *) content_of(p, &len);
			for (size_t i = 0; i < len / sizeof *flows; i++) {
				if (flows[i].id != stream_id)
					continue;
				if (flows[i].value == 0)
					fail("client closed the stream");
				if (flows[i].value > 0)
					send_credit += flows[i].value;
			}
		}
		size_t n = out_len - off;
		if ((int64_t) n > send_credit)
			n = (size_t) send_credit;
		int32_t header[2] = {stream_id, 0};
		memcpy(packet, header, 8);
		memcpy(packet + 8, out + off, n);
		send_content(origin, GATE_PACKET_DOMAIN_DATA, packet, 8 + n);
		send_credit -= (int64_t) n;
		off += n;
	}
	int32_t eof[2] = {stream_id, 0};
	send_content(origin, GATE_PACKET_DOMAIN_DATA, eof, sizeof eof);
}

static void report_identity(void)
{
	int16_t code = discover("identity");
	if (code < 0) {
		out_str("identity unavailable\n");
		return;
	}
	const char *r;
	uint8_t principal = 0;
	size_t n = call(code, &principal, 1, &r);
	out_str("identity.principal=");
	out_data(r, n);
	uint8_t instance = 1;
	n = call(code, &instance, 1, &r);
	out_str("\nidentity.instance=");
	out_data(r, n);
	out_str("\n");
}

static void report_random(void)
{
	int16_t code = discover("random");
	if (code < 0) {
		out_str("random unavailable\n");
		return;
	}
	const char *r;
	uint8_t count = 16;
	size_t n = call(code, &count, 1, &r);
	if (n != 16)
		fail("short random reply");
	out_str("random=");
	out_hex(r, n);
	out_str("\n");
}

static void report_scope(void)
{
	int16_t code = discover("scope");
	if (code < 0) {
		out_str("scope unavailable\n");
		return;
	}
	static const char token[] = "program:system";
	char content[2 + 1 + sizeof token - 1] = {0 /* restrict */, 1 /* one token */, sizeof token - 1};
	memcpy(content + 3, token, sizeof token - 1);
	const char *r;
	size_t n = call(code, content, sizeof content, &r);
	out_str("scope.restrict=");
	out_uint(n);
	if (n >= 2) {
		int16_t error;
		memcpy(&error, r, 2);
		out_str(":");
		out_uint((uint16_t) error);
	}
	out_str("\n");
}

EXPORT(main) int main_(void)
{
	origin = discover("origin");
	if (origin < 0)
		fail("origin unavailable");
	report_identity();
	report_random();
	report_scope();
	accept_client();
	send_report();
	return 0;
}
