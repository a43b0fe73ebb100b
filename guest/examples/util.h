/*
 * util.h - a small packet event loop shared by the example programs.
 *
 * Gate programs talk to the host through one byte stream of packets in each
 * direction (see guest/README.md).  This header keeps the bookkeeping in one
 * place:
 *
 *   - every gate_io call also receives, and every complete packet that
 *     arrives is dispatched at once into the state below (service states,
 *     accept replies, stream credit, stream input).  Program logic then just
 *     waits until the state says what it needs ("wait until X");
 *   - receiving on every call matters: the host may refuse to take our
 *     output while it has packets for us that we do not read;
 *   - only one origin stream is "current" at a time; packets for other
 *     stream ids (for example the closing handshake of an earlier
 *     connection) are ignored.
 *
 * Include it from exactly one C file per program.
 */

#ifndef EXAMPLES_UTIL_H
#define EXAMPLES_UTIL_H

#include <gate.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Programs built with wasi-libc (--target=wasm32-wasi) take these from it. */
#ifdef __wasi__
#include <string.h>
#else
#include "mem.h"
#endif

/* Export a C function under the given wasm export name. */
#define EXPORT(name) __attribute__((export_name(#name)))

/* Helpers are static; not every program uses all of them. */
#define UTIL static __attribute__((unused))

/* Largest data payload that fits in one packet we send (65536 - header). */
#define MAX_DATA_PAYLOAD (65536 - (int) sizeof(struct gate_data_packet))

/* ------------------------------------------------------------------------ */
/* Failure: explain in the debug log, then terminate with result 1.  A
 * returned value would not be observable, gate_exit(1) is. */

GATE_NORETURN UTIL void fail(const char *msg)
{
	gate_debug_str("error: ");
	gate_debug_str(msg);
	gate_debug_str("\n");
	gate_exit(1);
}

/* ------------------------------------------------------------------------ */
/* State filled in by the dispatcher. */

#define MAX_SERVICES 16

static unsigned svc_requested;          /* names requested so far = next code */
static unsigned svc_known;              /* count in the latest state packet */
static uint8_t svc_state[MAX_SERVICES]; /* state byte per service code */
static unsigned svc_replies;            /* discovery replies received */

static int16_t origin_code = -1; /* -1 until discovered and available */
static int16_t test_code = -1;

static bool accept_pending; /* an accept call is waiting for its reply */

/* The current origin stream. */
struct stream {
	int32_t id;            /* -1 = none yet */
	int64_t send_credit;   /* bytes the host still lets us send */
	bool send_closed;      /* host sent flow 0: it takes no more data */
	bool sent_eof;         /* we sent our end-of-data packet */
	int64_t recv_window;   /* bytes we granted to the host, not yet used */
	bool recv_closed;      /* we sent flow 0: we want no more input */
	bool recv_eof;         /* host sent end of input */
	uint32_t recv_packets; /* input data packets received (non-empty) */
	size_t in_head;        /* unread input is in_buf[in_head..in_tail) */
	size_t in_tail;
};

#define IN_CAP 32768 /* input buffer: we never grant more than its free space */

static char in_buf[IN_CAP];
static struct stream cur = {.id = -1};

/* Reply to the most recent call to the "test" service (hello's test_ext). */
static char test_reply[64];
static size_t test_reply_len;
static bool test_replied;

/* ------------------------------------------------------------------------ */
/* Dispatcher. */

static void handle_services(const struct gate_packet *p)
{
	const struct gate_service_state_packet *s = (const void *) p;
	if (p->size < sizeof *s || p->size < sizeof *s + s->count)
		fail("service state packet is too short");

	svc_known = s->count;
	for (unsigned i = 0; i < s->count && i < MAX_SERVICES; i++)
		svc_state[i] = s->states[i];

	/* A call-domain packet answers our request; an info-domain one is a
	 * notification (sent after a resume) and only updates the states. */
	if ((p->domain & 0xf) == GATE_PACKET_DOMAIN_CALL)
		svc_replies++;
}

static void handle_origin(const struct gate_packet *p)
{
	switch (p->domain & 0xf) {
	case GATE_PACKET_DOMAIN_CALL: {
		/* Accept reply: i32 stream id, i32 error (always 0). */
		if (p->size < sizeof(struct gate_packet) + 8)
			fail("origin accept reply is too short");
		int32_t id;
		memcpy(&id, (const char *) p + sizeof(struct gate_packet), sizeof id);
		cur = (struct stream){.id = id};
		accept_pending = false;
		break;
	}

	case GATE_PACKET_DOMAIN_FLOW: {
		const struct gate_flow_packet *f = (const void *) p;
		size_t n = (p->size - sizeof *f) / sizeof(struct gate_flow);
		for (size_t i = 0; i < n; i++) {
			if (f->flows[i].id != cur.id)
				continue; /* an earlier connection */
			int32_t value = f->flows[i].value;
			if (value > 0)
				cur.send_credit += value;
			else if (value == 0)
				cur.send_closed = true;
			/* negative values are notes; origin sends none */
		}
		break;
	}

	case GATE_PACKET_DOMAIN_DATA: {
		const struct gate_data_packet *d = (const void *) p;
		if (p->size < sizeof *d)
			fail("origin data packet is too short");
		if (d->id != cur.id)
			break;
		size_t len = p->size - sizeof *d;
		if (len == 0) {
			cur.recv_eof = true;
			break;
		}
		if ((int64_t) len > cur.recv_window)
			fail("origin sent more data than granted");
		cur.recv_window -= len;
		if (cur.in_tail + len > IN_CAP) {
			/* Move unread bytes to the front; the window guarantees room. */
			memmove(in_buf, in_buf + cur.in_head, cur.in_tail - cur.in_head);
			cur.in_tail -= cur.in_head;
			cur.in_head = 0;
		}
		memcpy(in_buf + cur.in_tail, d->data, len);
		cur.in_tail += len;
		cur.recv_packets++;
		break;
	}

	default:
		break; /* info packets: origin sends none worth reading */
	}
}

static void handle_test(const struct gate_packet *p)
{
	if ((p->domain & 0xf) != GATE_PACKET_DOMAIN_CALL)
		return;
	size_t len = p->size - sizeof(struct gate_packet);
	if (len > sizeof test_reply)
		len = sizeof test_reply;
	memcpy(test_reply, (const char *) p + sizeof(struct gate_packet), len);
	test_reply_len = len;
	test_replied = true;
}

static void handle_packet(const struct gate_packet *p)
{
	if (p->code == GATE_PACKET_CODE_SERVICES)
		handle_services(p);
	else if (p->code < 0)
		return; /* reserved codes: must be ignored */
	else if (p->code == origin_code)
		handle_origin(p);
	else if (p->code == test_code)
		handle_test(p);
	/* anything else: a service we did not talk to; ignore */
}

/* ------------------------------------------------------------------------ */
/* Raw I/O.  Incoming bytes collect in rx_buf until a whole packet (with its
 * padding) is there.  Every complete packet is handled right away, so at
 * most one partial packet remains and 64 KiB is always enough room. */

#define RX_CAP 65536

static char rx_buf[RX_CAP] __attribute__((aligned(8)));
static size_t rx_len;

static void dispatch_received(void)
{
	size_t off = 0;
	while (rx_len - off >= sizeof(struct gate_packet)) {
		const struct gate_packet *p = (const void *) (rx_buf + off);
		if (p->size < sizeof(struct gate_packet) || p->size > RX_CAP)
			fail("received packet has invalid size");
		size_t whole = GATE_ALIGN_PACKET(p->size);
		if (rx_len - off < whole)
			break;
		handle_packet(p);
		off += whole;
	}
	if (off > 0) {
		memmove(rx_buf, rx_buf + off, rx_len - off);
		/* Clear what was consumed: stale bytes would make memory depend on
		 * how the host happened to batch packets, not on the input alone. */
		memset(rx_buf + rx_len - off, 0, off);
		rx_len -= off;
	}
}

/* One gate_io call: send up to len bytes (may be 0), receive whatever is
 * there, dispatch it.  Returns the number of bytes sent; *received (if not
 * NULL) gets the number of bytes received. */
static size_t io_once(const void *data, size_t len, int64_t timeout, size_t *received)
{
	struct gate_iovec recv = {rx_buf + rx_len, RX_CAP - rx_len};
	struct gate_iovec send = {(void *) data, len};
	size_t nrecv = 0;
	size_t nsent = 0;

	gate_io(&recv, 1, &nrecv, &send, len > 0 ? 1 : 0, &nsent, timeout, NULL);

	rx_len += nrecv;
	dispatch_received();
	if (received)
		*received = nrecv;
	return nsent;
}

/* Wait for incoming packets (timeout in nanoseconds, -1 = forever) and
 * dispatch them.  Returns the number of bytes received (0 on timeout, or when
 * the host interrupted the wait, e.g. to suspend the instance). */
UTIL size_t wait_io(int64_t timeout)
{
	size_t received;
	io_once(NULL, 0, timeout, &received);
	return received;
}

/* Send bytes completely, handling incoming packets meanwhile. */
static void send_all(const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		size_t n = io_once(p, len, -1, NULL);
		p += n;
		len -= n;
	}
}

/* Outgoing packets are built here; padding bytes must be zero. */
static char tx_buf[65536] __attribute__((aligned(8)));

/* Send the packet in tx_buf: set its size, zero the padding, send it. */
static void send_tx(size_t size)
{
	struct gate_packet *p = (void *) tx_buf;
	p->size = (uint32_t) size;
	size_t whole = GATE_ALIGN_PACKET(size);
	memset(tx_buf + size, 0, whole - size);
	send_all(tx_buf, whole);
}

/* ------------------------------------------------------------------------ */
/* Services. */

/* Ask for the named services; codes[i] gets the code of names[i] if it is
 * available, else -1.  Codes are assigned in request order across all
 * discovery requests, starting at 0. */
UTIL void discover(int count, const char *const names[], int16_t codes[])
{
	struct gate_service_name_packet *p = (void *) tx_buf;
	size_t size = sizeof *p;

	*p = (struct gate_service_name_packet){
		.header = {.code = GATE_PACKET_CODE_SERVICES, .domain = GATE_PACKET_DOMAIN_CALL},
		.count = (uint16_t) count,
	};
	for (int i = 0; i < count; i++) {
		size_t len = 0;
		while (names[i][len] != '\0')
			len++;
		tx_buf[size++] = (char) len; /* 1..127 */
		memcpy(tx_buf + size, names[i], len);
		size += len;
	}

	unsigned first = svc_requested;
	unsigned replies = svc_replies;
	svc_requested += count;
	send_tx(size);

	while (svc_replies == replies)
		wait_io(-1);

	for (int i = 0; i < count; i++) {
		unsigned code = first + i;
		bool avail = code < svc_known && code < MAX_SERVICES &&
		             (svc_state[code] & GATE_SERVICE_STATE_AVAIL);
		codes[i] = avail ? (int16_t) code : -1;
	}
}

/* Discover only "origin"; it must be available. */
UTIL void discover_origin(void)
{
	static const char *const names[] = {"origin"};
	discover(1, names, &origin_code);
	if (origin_code < 0)
		fail("origin service is unavailable");
}

/* ------------------------------------------------------------------------ */
/* Origin streams. */

/* Send one flow entry for the current stream.  value > 0 grants that many
 * more input bytes; 0 says we want no (more) input. */
static void stream_flow(int32_t value)
{
	struct gate_flow_packet *p = (void *) tx_buf;
	*p = (struct gate_flow_packet){
		.header = {.code = origin_code, .domain = GATE_PACKET_DOMAIN_FLOW},
	};
	p->flows[0] = (struct gate_flow){.id = cur.id, .value = value};

	/* Update the window first: the reply data may arrive during the very
	 * gate_io call that sends this packet. */
	if (value > 0)
		cur.recv_window += value;
	else if (value == 0)
		cur.recv_closed = true;

	send_tx(sizeof *p + sizeof(struct gate_flow));
}

/* Wait for a client: send an (empty) accept call to origin and wait for the
 * reply carrying the new stream id, then grant recv_flow bytes of input
 * (0 = the program wants no input; the flow entry is sent either way). */
UTIL void accept_stream(int32_t recv_flow)
{
	struct gate_packet *p = (void *) tx_buf;
	*p = (struct gate_packet){.code = origin_code, .domain = GATE_PACKET_DOMAIN_CALL};
	accept_pending = true;
	send_tx(sizeof *p);

	while (accept_pending)
		wait_io(-1);

	if (recv_flow > IN_CAP)
		recv_flow = IN_CAP;
	stream_flow(recv_flow);
}

/* Write bytes to the current stream, in as many data packets as the host's
 * flow credit requires.  Waits for credit.  Returns false if the host
 * closed the stream (flow 0) before everything was sent. */
UTIL bool stream_write(const void *data, size_t len)
{
	const char *src = data;
	while (len > 0) {
		while (cur.send_credit <= 0 && !cur.send_closed)
			wait_io(-1);
		if (cur.send_closed)
			return false;

		size_t n = len;
		if ((int64_t) n > cur.send_credit)
			n = (size_t) cur.send_credit;
		if (n > MAX_DATA_PAYLOAD)
			n = MAX_DATA_PAYLOAD;

		struct gate_data_packet *p = (void *) tx_buf;
		*p = (struct gate_data_packet){
			.header = {.code = origin_code, .domain = GATE_PACKET_DOMAIN_DATA},
			.id = cur.id,
		};
		memcpy(p->data, src, n);
		cur.send_credit -= n; /* before sending: the host may top it up meanwhile */
		send_tx(sizeof *p + n);

		src += n;
		len -= n;
	}
	return true;
}

UTIL bool stream_write_str(const char *s)
{
	size_t len = 0;
	while (s[len] != '\0')
		len++;
	return stream_write(s, len);
}

/* Grant the host more input when enough buffer space has been freed. */
static void stream_refill(void)
{
	if (cur.recv_closed || cur.recv_eof)
		return;
	int64_t unread = (int64_t) (cur.in_tail - cur.in_head);
	int64_t room = IN_CAP - unread - cur.recv_window;
	/* Batch small grants, but never leave the host with nothing. */
	if (room >= IN_CAP / 4 || (room > 0 && cur.recv_window == 0))
		stream_flow((int32_t) room);
}

/* Wait until input is available or the input has ended. */
UTIL void stream_wait_input(void)
{
	while (cur.in_head == cur.in_tail && !cur.recv_eof)
		wait_io(-1);
}

/* Read up to size input bytes, waiting for at least one.  Returns 0 at the
 * end of input.  Consumed bytes are granted back to the host. */
UTIL size_t stream_read(void *buf, size_t size)
{
	stream_wait_input();
	size_t n = cur.in_tail - cur.in_head;
	if (n > size)
		n = size;
	memcpy(buf, in_buf + cur.in_head, n);
	cur.in_head += n;
	if (cur.in_head == cur.in_tail)
		cur.in_head = cur.in_tail = 0;
	stream_refill();
	return n;
}

/* Drop all buffered input (and grant the space back). */
UTIL void stream_discard_input(void)
{
	cur.in_head = cur.in_tail = 0;
	stream_refill();
}

/* Close both directions of the current stream: flow 0 (no more input
 * wanted) unless already sent, and an empty data packet (end of output). */
UTIL void stream_close(void)
{
	if (!cur.recv_closed)
		stream_flow(0);
	if (!cur.sent_eof) {
		struct gate_data_packet *p = (void *) tx_buf;
		*p = (struct gate_data_packet){
			.header = {.code = origin_code, .domain = GATE_PACKET_DOMAIN_DATA},
			.id = cur.id,
		};
		send_tx(sizeof *p);
		cur.sent_eof = true;
	}
}

/* ------------------------------------------------------------------------ */
/* Time. */

/* Wait about ns nanoseconds, handling incoming packets meanwhile.  The wait
 * ends when a gate_io call with the remaining time returns without having
 * received anything (its timeout expired or the host interrupted it); the
 * host rounds timeouts down to its clock resolution, so the interval can be
 * a little shorter than asked. */
UTIL void sleep_ns(int64_t ns)
{
	uint64_t start = gate_clock_monotonic();
	int64_t remaining = ns;
	while (remaining > 0) {
		if (wait_io(remaining) == 0)
			return;
		remaining = ns - (int64_t) (gate_clock_monotonic() - start);
	}
}

/* ------------------------------------------------------------------------ */
/* Formatting. */

/* Decimal digits of n into buf (at least 20 bytes); returns the length. */
UTIL size_t format_uint(char *buf, uint64_t n)
{
	char tmp[20];
	size_t len = 0;
	do {
		tmp[len++] = (char) ('0' + n % 10);
		n /= 10;
	} while (n != 0);
	for (size_t i = 0; i < len; i++)
		buf[i] = tmp[len - 1 - i];
	return len;
}

#endif
