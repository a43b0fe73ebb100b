/*
 * localhost.c - exercises the gate.computer/localhost service: HTTP
 * requests to the host's configured local server, encoded as FlatBuffers
 * (Gate's localhost.fbs: Call { function: Request }, reply Response).
 *
 * get: GET /hello -> "status=<code> type=<content type> body=<body>"
 * post: POST /echo with a text body, same output.
 * big: GET /big (a body too large for one packet) -> "status=502 ..."
 * bad: GET http://elsewhere/ (absolute URI) -> "status=400 ..."
 * concurrent: GET /c/a, /c/b, /c/c without waiting; print each reply's
 * index and body in arrival order ("index=<i> body=<b>").
 * unknown: a Call without a Request -> "unknown=0" (empty reply).
 * held: GET /held, printing "sent" first (the test suspends meanwhile).
 */

#include "svc.h"

/* ------------------------------------------------------------------------ */
/* Building a Call.  Layout, front to back: root offset, Call vtable, Call
 * table, Request vtable, Request table, then the strings and the body. */

static char *put_u16(char *p, uint16_t v)
{
	memcpy(p, &v, 2);
	return p + 2;
}

static char *put_u32(char *p, uint32_t v)
{
	memcpy(p, &v, 4);
	return p + 4;
}

/* Append a vector (length, bytes, NUL if string) aligned to 4; returns its position. */
static size_t put_vector(char *buf, size_t *len, const char *data, size_t n, int nul)
{
	while (*len % 4)
		buf[(*len)++] = 0;
	size_t at = *len;
	put_u32(buf + at, (uint32_t) n);
	memcpy(buf + at + 4, data, n);
	*len = at + 4 + n;
	if (nul)
		buf[(*len)++] = 0;
	return at;
}

static size_t build_call(char *buf, const char *method, const char *uri, const char *type, const char *body)
{
	memset(buf, 0, 64);
	/* 0: root offset -> Call table at 12. */
	put_u32(buf, 12);
	/* 4: Call vtable: size 8, table size 12, type at 4, function at 8. */
	char *p = put_u16(buf + 4, 8);
	p = put_u16(p, 12);
	p = put_u16(p, 4);
	put_u16(p, 8);
	/* 12: Call table: soffset to vtable, u8 type = Request, offset to Request. */
	put_u32(buf + 12, 12 - 4);
	buf[16] = 1;
	put_u32(buf + 20, 36 - 20);
	/* 24: Request vtable: size 12, table size 20, fields at 4, 8, 12, 16. */
	p = put_u16(buf + 24, 12);
	p = put_u16(p, 20);
	p = put_u16(p, method ? 4 : 0);
	p = put_u16(p, uri ? 8 : 0);
	p = put_u16(p, type ? 12 : 0);
	put_u16(p, body ? 16 : 0);
	/* 36: Request table. */
	put_u32(buf + 36, 36 - 24);
	size_t len = 56;
	const char *fields[4] = {method, uri, type, body};
	for (int i = 0; i < 4; i++) {
		if (!fields[i])
			continue;
		size_t at = put_vector(buf, &len, fields[i], str_len(fields[i]), i < 3);
		size_t field = 36 + 4 + 4 * i;
		put_u32(buf + field, (uint32_t) (at - field));
	}
	while (len % 4)
		buf[len++] = 0;
	return len;
}

/* ------------------------------------------------------------------------ */
/* Reading a Response (trusted host output, but checked anyway). */

static uint32_t get_u32(const char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint16_t get_u16(const char *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

struct response {
	unsigned status;
	const char *type;
	size_t type_len;
	const char *body;
	size_t body_len;
};

static const char *field(const char *buf, size_t table, size_t vtable, int slot)
{
	uint16_t vsize = get_u16(buf + vtable);
	if (4u + 2u * slot + 2u > vsize)
		return NULL;
	uint16_t off = get_u16(buf + vtable + 4 + 2 * slot);
	return off ? buf + table + off : NULL;
}

static const char *vector(const char *buf, const char *f, size_t *n)
{
	if (!f) {
		*n = 0;
		return NULL;
	}
	const char *v = f + get_u32(f);
	*n = get_u32(v);
	(void) buf;
	return v + 4;
}

static struct response parse_response(const char *buf, size_t len)
{
	struct response r = {0};
	if (len < 8)
		fail("response too short");
	size_t table = get_u32(buf);
	size_t vtable = table - (int32_t) get_u32(buf + table);
	const char *f = field(buf, table, vtable, 0);
	r.status = f ? get_u16(f) : 0;
	r.type = vector(buf, field(buf, table, vtable, 1), &r.type_len);
	r.body = vector(buf, field(buf, table, vtable, 2), &r.body_len);
	return r;
}

static void print_response(const char *reply, size_t len)
{
	struct response r = parse_response(reply, len);
	print("status=");
	print_uint(r.status);
	print(" type=");
	print_data(r.type, r.type_len);
	print(" body=");
	if (r.body_len > 64) {
		print_uint(r.body_len);
		print(" bytes");
	} else {
		print_data(r.body, r.body_len);
	}
	print("\n");
}

static char callbuf[4096] __attribute__((aligned(8)));

static int16_t localhost(void)
{
	int16_t code = discover("gate.computer/localhost");
	if (code < 0) {
		print("localhost unavailable\n");
		gate_exit(0);
	}
	return code;
}

static void request(const char *method, const char *uri, const char *type, const char *body)
{
	int16_t code = localhost();
	size_t n = build_call(callbuf, method, uri, type, body);
	const char *reply;
	size_t len = call(code, callbuf, n, &reply);
	print_response(reply, len);
}

EXPORT(get) void get(void)
{
	request(NULL, "/hello?x=1", NULL, NULL);
}

EXPORT(post) void post(void)
{
	request("POST", "/echo", "text/plain", "ping");
}

EXPORT(big) void big(void)
{
	request("GET", "/big", NULL, NULL);
}

EXPORT(bad) void bad(void)
{
	request("GET", "http://elsewhere/", NULL, NULL);
}

EXPORT(unknown) void unknown(void)
{
	int16_t code = localhost();
	/* A Call whose union is NONE: root offset 8 -> table with empty vtable. */
	static const char none[12] = {8, 0, 0, 0, 4, 0, 4, 0, 4, 0, 0, 0};
	print("unknown=");
	print_uint(call(code, none, sizeof none, NULL));
	print("\n");
}

EXPORT(concurrent) void concurrent(void)
{
	int16_t code = localhost();
	static const char *const uris[] = {"/c/a", "/c/b", "/c/c"};
	for (int i = 0; i < 3; i++) {
		size_t n = build_call(callbuf, NULL, uris[i], NULL, NULL);
		send_content(code, GATE_PACKET_DOMAIN_CALL, callbuf, n);
	}
	print("sent\n");
	for (int i = 0; i < 3; i++) {
		struct gate_packet *p = await_packet(code, GATE_PACKET_DOMAIN_CALL);
		size_t len;
		const char *c = content_of(p, &len);
		struct response r = parse_response(c, len);
		print("index=");
		print_uint(p->index);
		print(" body=");
		print_data(r.body, r.body_len);
		print("\n");
	}
}

EXPORT(held) void held(void)
{
	int16_t code = localhost();
	size_t n = build_call(callbuf, "GET", "/held", NULL, NULL);
	send_content(code, GATE_PACKET_DOMAIN_CALL, callbuf, n);
	print("sent\n");
	struct gate_packet *p = await_packet(code, GATE_PACKET_DOMAIN_CALL);
	size_t len;
	const char *c = content_of(p, &len);
	print_response(c, len);
}
