/*
 * hello.c - greets clients of the origin service (our equivalent of Gate's
 * testdata/hello program).
 *
 * Exports:
 *   greet     one connection, one greeting, stream left open, return
 *   twice     one connection, two greetings, stream left open, return
 *   multi     forever: accept, greet, close the stream
 *   repl      one connection: a greeting per input data packet until EOF
 *   fail      log a message and terminate with result 1
 *   test_ext  echo check against a service named "test"
 *
 * Every function discovers the services "origin" and "test" first (one
 * request, so origin gets code 0 and test code 1).
 */

#include "util.h"

static const char greeting[] = "hello, world\n";

/* Discover origin and test; origin must be available. */
static void discover_services(void)
{
	static const char *const names[] = {"origin", "test"};
	int16_t codes[2];
	discover(2, names, codes);
	origin_code = codes[0];
	test_code = codes[1];
	if (origin_code < 0)
		fail("origin service is unavailable");
}

static void send_greeting(void)
{
	if (!stream_write(greeting, sizeof greeting - 1))
		fail("client closed the stream");
}

/* Accept with no input wanted, greet once.  The stream is not closed: the
 * run ends with it open, and the host must still deliver the greeting. */
EXPORT(greet) int greet(void)
{
	discover_services();
	accept_stream(0);
	send_greeting();
	return 0;
}

EXPORT(twice) int twice(void)
{
	discover_services();
	accept_stream(0);
	send_greeting();
	send_greeting();
	return 0;
}

/* Serve one greeting per connection, forever.  Never returns, so the
 * instance keeps running and each new client gets a greeting. */
EXPORT(multi) void multi(void)
{
	discover_services();
	for (;;) {
		gate_debug_str("multi: accepting stream\n");
		accept_stream(0);
		gate_debug_str("multi: greeting connection\n");
		send_greeting();
		stream_close();
	}
}

/* Answer every input data packet with a greeting until the client's input
 * ends; then close the stream and return.  (Several packets arriving
 * together get one greeting each.) */
EXPORT(repl) int repl(void)
{
	discover_services();
	accept_stream(4096);
	gate_debug_str("repl: connection accepted\n");

	uint32_t answered = 0;
	for (;;) {
		while (cur.recv_packets == answered && !cur.recv_eof)
			wait_io(-1);
		if (cur.recv_packets == answered)
			break; /* end of input and nothing left to answer */
		stream_discard_input();
		while (answered < cur.recv_packets) {
			answered++;
			gate_debug_str("repl: command\n");
			send_greeting();
		}
	}

	stream_close();
	return 0;
}

EXPORT(fail) int fail_export(void)
{
	gate_debug_str("exiting with return value 1\n");
	gate_exit(1);
}

/* Send a call with 8 known bytes to "test" and expect them echoed back.
 * Without a "test" service this logs a note and terminates with result 1. */
EXPORT(test_ext) int test_ext(void)
{
	discover_services();
	if (test_code < 0) {
		gate_debug_str("test service is unavailable\n");
		gate_exit(1);
	}

	static const char payload[8] = {8, 7, 6, 5, 4, 3, 2, 1}; /* u64 0x0102030405060708 */
	struct gate_packet *p = (void *) tx_buf;
	*p = (struct gate_packet){.code = test_code, .domain = GATE_PACKET_DOMAIN_CALL};
	memcpy(tx_buf + sizeof *p, payload, sizeof payload);
	test_replied = false;
	send_tx(sizeof *p + sizeof payload);

	while (!test_replied)
		wait_io(-1);

	if (test_reply_len != sizeof payload || memcmp(test_reply, payload, sizeof payload) != 0)
		fail("test service reply differs from the call");
	gate_debug_str("test_ext: ok\n");
	return 0;
}
