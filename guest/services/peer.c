/*
 * peer.c - two programs talking over the peer service (docs/services.md).
 *
 * echoer: join, print "joined", wait for a peer to connect ("accepted"),
 * grant it credit, then send every message back until the peer ends its
 * data; then end ours and print "done".
 * caller: join, list the visible peers (prints "no peers" and returns if
 * there are none), connect to the first ("connected"), grant credit, send
 * "msg0" … "msg2" one at a time, printing each echo ("echo=msg0"), then end
 * the data, wait for the peer's end and print "done".
 * The *_public variants join as public (visible across principals).
 */

#include "svc.h"

#define CALL_JOIN 0
#define CALL_LIST 1
#define CALL_CONNECT 2
#define EVENT_CONNECTED 1
#define CREDIT 4096

static int16_t code = -1;
static int32_t link_id = -1;
static int64_t send_credit;
static bool peer_closed;

static void join(int public_flag)
{
	code = discover("peer");
	if (code < 0)
		fail("peer unavailable");
	char c[2] = {CALL_JOIN, (char) public_flag};
	const char *r;
	if (call(code, c, 2, &r) != 2 || r[0] != 0 || r[1] != 0)
		fail("join failed");
}

static void send_flow(int32_t value)
{
	struct gate_flow_packet *p = (void *) tx;
	*p = (struct gate_flow_packet){.header = {.code = code, .domain = GATE_PACKET_DOMAIN_FLOW}};
	p->flows[0] = (struct gate_flow){.id = link_id, .value = value};
	send_tx(sizeof *p + sizeof(struct gate_flow));
}

/* Take the flow packets that have arrived into account. */
static void take_flows(void)
{
	while (has_packet(code, GATE_PACKET_DOMAIN_FLOW)) {
		struct gate_flow_packet *f = (void *) await_packet(code, GATE_PACKET_DOMAIN_FLOW);
		size_t n = (f->header.size - sizeof *f) / sizeof(struct gate_flow);
		for (size_t i = 0; i < n; i++) {
			if (f->flows[i].id != link_id)
				continue;
			if (f->flows[i].value > 0)
				send_credit += f->flows[i].value;
			else if (f->flows[i].value == 0)
				peer_closed = true;
		}
	}
}

static void send_data(const char *data, size_t len)
{
	for (;;) {
		take_flows();
		if (peer_closed)
			fail("peer closed the link");
		if (send_credit >= (int64_t) len)
			break;
		wait_io(-1);
	}
	struct gate_data_packet *p = (void *) tx;
	*p = (struct gate_data_packet){.header = {.code = code, .domain = GATE_PACKET_DOMAIN_DATA}, .id = link_id};
	memcpy(p->data, data, len);
	send_credit -= len;
	send_tx(sizeof *p + len);
}

/* The next data packet of the link (its payload length; 0 = end of data). */
static size_t recv_data(const char **data)
{
	struct gate_data_packet *d = (void *) await_packet(code, GATE_PACKET_DOMAIN_DATA);
	if (d->id != link_id)
		fail("data for an unknown link");
	*data = d->data;
	return d->header.size - sizeof *d;
}

static void echoer(int public_flag)
{
	join(public_flag);
	print("joined\n");
	struct gate_packet *e = await_packet(code, GATE_PACKET_DOMAIN_INFO);
	size_t len;
	const char *c = content_of(e, &len);
	if (len < 24 || c[0] != EVENT_CONNECTED)
		fail("unexpected info packet");
	memcpy(&link_id, c + 4, 4);
	print("accepted\n");
	send_flow(CREDIT);
	for (;;) {
		const char *data;
		size_t n = recv_data(&data);
		if (n == 0)
			break;
		static char copy[CREDIT];
		memcpy(copy, data, n);
		send_data(copy, n);
		send_flow((int32_t) n); /* room for the next message */
		print("echoed=");
		print_data(copy, n);
		print("\n");
	}
	send_data(NULL, 0);
	print("done\n");
}

static void caller(int public_flag)
{
	join(public_flag);
	char list = CALL_LIST;
	const char *r;
	size_t n = call(code, &list, 1, &r);
	uint16_t count;
	if (n < 4 || r[0] != 0)
		fail("list failed");
	memcpy(&count, r + 2, 2);
	if (count == 0) {
		print("no peers\n");
		return;
	}
	char conn[17] = {CALL_CONNECT};
	memcpy(conn + 1, r + 4, 16);
	n = call(code, conn, sizeof conn, &r);
	int16_t error;
	memcpy(&error, r, 2);
	if (n != 8 || error != 0)
		fail("connect failed");
	memcpy(&link_id, r + 4, 4);
	print("connected\n");
	send_flow(CREDIT);
	for (int i = 0; i < 3; i++) {
		char msg[4] = {'m', 's', 'g', (char) ('0' + i)};
		send_data(msg, 4);
		const char *data;
		size_t len = recv_data(&data);
		print("echo=");
		print_data(data, len);
		print("\n");
		send_flow((int32_t) len);
	}
	send_data(NULL, 0);
	const char *data;
	if (recv_data(&data) != 0)
		fail("expected end of data");
	print("done\n");
}

EXPORT(echoer) void echoer_private(void)
{
	echoer(0);
}

EXPORT(echoer_public) void echoer_public(void)
{
	echoer(1);
}

EXPORT(caller) void caller_private(void)
{
	caller(0);
}

EXPORT(caller_public) void caller_public(void)
{
	caller(1);
}
