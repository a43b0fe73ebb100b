/*
 * svc.h - packet plumbing for the service test programs in guest/services.
 *
 * Unlike examples/util.h (which follows one origin stream), these programs
 * talk to arbitrary services, so every packet that arrives is kept in an
 * inbox until the program asks for it by service code and domain:
 *
 *   code = discover("identity");          // -1 if unavailable
 *   len = call(code, content, n, &reply);  // send a call, wait for its reply
 *   p = await_packet(code, DOMAIN);        // next packet of that kind
 *
 * Results are written to the debug log (print*), which the tests read.
 * Include it from exactly one C file per program.
 */

#ifndef SERVICES_SVC_H
#define SERVICES_SVC_H

#include <gate.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../examples/mem.h"

#define EXPORT(name) __attribute__((export_name(#name)))
#define SVC static __attribute__((unused))

/* ------------------------------------------------------------------------ */
/* Debug log output. */

SVC void print(const char *s)
{
	gate_debug_str(s);
}

SVC void print_uint(uint64_t n)
{
	gate_debug_uint(n);
}

SVC void print_int(int64_t n)
{
	gate_debug_int(n);
}

SVC void print_data(const void *data, size_t len)
{
	gate_debug_data(data, len);
}

SVC void print_hex(const void *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *b = data;
	for (size_t i = 0; i < len; i++) {
		char pair[2] = {digits[b[i] >> 4], digits[b[i] & 15]};
		gate_debug_data(pair, 2);
	}
}

GATE_NORETURN SVC void fail(const char *msg)
{
	print("error: ");
	print(msg);
	print("\n");
	gate_exit(1);
}

SVC size_t str_len(const char *s)
{
	size_t n = 0;
	while (s[n] != '\0')
		n++;
	return n;
}

SVC bool str_eq(const char *a, size_t alen, const char *b)
{
	return alen == str_len(b) && memcmp(a, b, alen) == 0;
}

/* ------------------------------------------------------------------------ */
/* Receiving: bytes from the host gather in rx until a whole packet is there;
 * whole packets move to the inbox (service states are handled at once). */

#define RX_CAP 65536
#define INBOX_CAP (4 * 65536)
#define CONSUMED_CODE (-32768) /* a reserved code marks a taken inbox packet */

static char rx[RX_CAP] __attribute__((aligned(8)));
static size_t rx_len;
static char inbox[INBOX_CAP] __attribute__((aligned(8)));
static size_t inbox_len;

static unsigned svc_requested; /* names requested so far = next code */
static unsigned svc_known;     /* count in the latest state packet */
static uint8_t svc_state[256];
static unsigned svc_replies;   /* discovery replies received */
static unsigned svc_notices;   /* info-domain state packets (after resume) */

static void take_rx(void)
{
	size_t off = 0;
	while (rx_len - off >= sizeof(struct gate_packet)) {
		const struct gate_packet *p = (const void *) (rx + off);
		if (p->size < sizeof(struct gate_packet) || p->size > RX_CAP)
			fail("received packet has invalid size");
		size_t whole = GATE_ALIGN_PACKET(p->size);
		if (rx_len - off < whole)
			break;
		if (p->code == GATE_PACKET_CODE_SERVICES) {
			const struct gate_service_state_packet *s = (const void *) p;
			svc_known = s->count;
			for (unsigned i = 0; i < s->count && i < 256; i++)
				svc_state[i] = s->states[i];
			if ((p->domain & 0xf) == GATE_PACKET_DOMAIN_CALL)
				svc_replies++;
			else
				svc_notices++;
		} else if (p->code >= 0) {
			if (inbox_len + whole > INBOX_CAP)
				fail("inbox is full");
			memcpy(inbox + inbox_len, p, whole);
			inbox_len += whole;
		}
		off += whole;
	}
	if (off > 0) {
		memmove(rx, rx + off, rx_len - off);
		rx_len -= off;
	}
}

/* One gate_io call: send up to len bytes, receive what is there. */
static size_t io_once(const void *data, size_t len, int64_t timeout)
{
	struct gate_iovec recv = {rx + rx_len, RX_CAP - rx_len};
	struct gate_iovec send = {(void *) data, len};
	size_t nrecv = 0, nsent = 0;
	gate_io(&recv, 1, &nrecv, &send, len > 0 ? 1 : 0, &nsent, timeout, NULL);
	rx_len += nrecv;
	take_rx();
	return nsent;
}

SVC void wait_io(int64_t timeout)
{
	io_once(NULL, 0, timeout);
}

/* Outgoing packets are built here; padding must be zero. */
static char tx[65536 + 8] __attribute__((aligned(8)));

/* Send the packet in tx (header fields other than size already set). */
SVC void send_tx(size_t size)
{
	struct gate_packet *p = (void *) tx;
	p->size = (uint32_t) size;
	size_t whole = GATE_ALIGN_PACKET(size);
	memset(tx + size, 0, whole - size);
	const char *d = tx;
	while (whole > 0) {
		size_t n = io_once(d, whole, -1);
		d += n;
		whole -= n;
	}
}

/* The oldest packet not yet taken from code in domain; waits for it. The
 * pointer is valid until the next await_packet/call. */
SVC struct gate_packet *await_packet(int16_t code, int domain)
{
	for (;;) {
		bool all_taken = true;
		for (size_t off = 0; off < inbox_len;) {
			struct gate_packet *p = (void *) (inbox + off);
			if (p->code != CONSUMED_CODE)
				all_taken = false;
			if (p->code == code && (p->domain & 0xf) == domain) {
				p->code = CONSUMED_CODE;
				return p;
			}
			off += GATE_ALIGN_PACKET(p->size);
		}
		if (all_taken)
			inbox_len = 0;
		wait_io(-1);
	}
}

/* Whether a packet of code in domain is waiting (without taking it). */
SVC bool has_packet(int16_t code, int domain)
{
	for (size_t off = 0; off < inbox_len;) {
		struct gate_packet *p = (void *) (inbox + off);
		if (p->code == code && (p->domain & 0xf) == domain)
			return true;
		off += GATE_ALIGN_PACKET(p->size);
	}
	return false;
}

/* ------------------------------------------------------------------------ */
/* Services. */

/* Request one service by name; its code if available, else -1. The code is
 * assigned either way (the next one in request order). */
SVC int16_t discover(const char *name)
{
	struct gate_service_name_packet *p = (void *) tx;
	*p = (struct gate_service_name_packet){
		.header = {.code = GATE_PACKET_CODE_SERVICES, .domain = GATE_PACKET_DOMAIN_CALL},
		.count = 1,
	};
	size_t len = str_len(name);
	tx[sizeof *p] = (char) len;
	memcpy(tx + sizeof *p + 1, name, len);
	unsigned code = svc_requested++;
	unsigned replies = svc_replies;
	send_tx(sizeof *p + 1 + len);
	while (svc_replies == replies)
		wait_io(-1);
	if (code < svc_known && (svc_state[code] & GATE_SERVICE_STATE_AVAIL))
		return (int16_t) code;
	return -1;
}

/* Send a packet with content to code in domain (no waiting for a reply). */
SVC void send_content(int16_t code, int domain, const void *content, size_t len)
{
	struct gate_packet *p = (void *) tx;
	*p = (struct gate_packet){.code = code, .domain = (uint8_t) domain};
	memcpy(tx + sizeof *p, content, len);
	send_tx(sizeof *p + len);
}

/* Send a call and wait for the next call-domain packet from code. Returns the
 * reply's content length; *reply points at the content. */
SVC size_t call(int16_t code, const void *content, size_t len, const char **reply)
{
	send_content(code, GATE_PACKET_DOMAIN_CALL, content, len);
	struct gate_packet *r = await_packet(code, GATE_PACKET_DOMAIN_CALL);
	if (reply)
		*reply = (const char *) r + sizeof *r;
	return r->size - sizeof *r;
}

/* Content of a packet and its length. */
SVC const char *content_of(const struct gate_packet *p, size_t *len)
{
	*len = p->size - sizeof *p;
	return (const char *) p + sizeof *p;
}

#endif
