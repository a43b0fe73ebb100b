/*
 * gate.h - C API for programs that run under Gate (TypeScript edition).
 *
 * Everything here is header-only: static inline helpers on top of the few
 * functions the host imports into a Gate program (see the guest ABI notes in
 * guest/README.md).  The header is written for C11 and clang; it works both
 * with --target=wasm32-wasi (wasi-libc) and freestanding --target=wasm32
 * -nostdlib.
 *
 * Imports produced, only for the functions a program actually uses:
 *
 *   __wasi__ defined (wasm32-wasi target):
 *     wasi_snapshot_preview1.fd_write, .clock_time_get, .proc_exit
 *     env.__gate_fd_<N>, env.__gate_io_<N>
 *   otherwise:
 *     env.__wasi_fd_write, env.__wasi_clock_time_get, env.__wasi_proc_exit
 *     env.__gate_fd_<N>, env.__gate_io_<N>
 *
 * where <N> is GATE_MAX_RECV_SIZE.  The imports carry explicit import module
 * and name attributes, so no --allow-undefined linker flag is needed and the
 * result does not depend on whether wasi-libc is linked.
 *
 * Debug output goes to WASI file descriptor 2, which the host routes to the
 * instance's debug log.  Defining NDEBUG turns all debug helpers into no-ops.
 */

#ifndef GATE_H_INCLUDED
#define GATE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Configuration (each may be defined before including this header).        */

#ifdef GATE_ABI_VERSION
#if GATE_ABI_VERSION != 0
#error "gate.h supports only GATE_ABI_VERSION 0"
#endif
#else
#define GATE_ABI_VERSION 0
#endif

/* Size of the largest packet the program is prepared to receive.  It is
 * pasted into the import names, so it must be a plain decimal literal of at
 * least 65536 (the host refuses smaller values and other spellings). */
#ifndef GATE_MAX_RECV_SIZE
#define GATE_MAX_RECV_SIZE 65536
#endif

#ifndef GATE_NOEXCEPT
#ifdef __cplusplus
#define GATE_NOEXCEPT noexcept
#else
#define GATE_NOEXCEPT
#endif
#endif

#ifndef GATE_NORETURN
#define GATE_NORETURN __attribute__((noreturn))
#endif

#ifndef GATE_PACKED
#define GATE_PACKED __attribute__((packed))
#endif

#ifndef GATE_PURE
#define GATE_PURE __attribute__((pure))
#endif

/* ------------------------------------------------------------------------ */
/* Constants and types.                                                     */

#define GATE_API_VERSION 0

/* Packets are padded with zero bytes to a multiple of this size. */
#define GATE_PACKET_ALIGNMENT 8

/* Code of service discovery packets (requests, replies, notifications). */
#define GATE_PACKET_CODE_SERVICES -1

enum {
	GATE_PACKET_DOMAIN_CALL = 0, /* request/reply */
	GATE_PACKET_DOMAIN_INFO = 1, /* unsolicited notification */
	GATE_PACKET_DOMAIN_FLOW = 2, /* stream receive capacity */
	GATE_PACKET_DOMAIN_DATA = 3, /* stream bytes (empty = end of stream) */
};

/* Bit of a service state byte: the service can be used. */
#define GATE_SERVICE_STATE_AVAIL 0x1

/* Round a packet size up to the packet alignment (as a size_t). */
#define GATE_ALIGN_PACKET(size) \
	(((size_t) (size) + (size_t) (GATE_PACKET_ALIGNMENT - 1)) & ~(size_t) (GATE_PACKET_ALIGNMENT - 1))

/* Flags word reported by gate_io: bit 0 is set when the instance was started
 * or resumed since the previous gate_io call that asked for the flags. */
typedef uint64_t gate_flags_t;

/* Scatter/gather buffer: same layout as a WASI iovec (8 bytes on wasm32). */
struct gate_iovec {
	void *iov_base;
	size_t iov_len;
};

/* The variable-length tails below are zero-length arrays (a GNU extension
 * that clang accepts); silence the pedantic warning about them. */
#ifdef __clang__
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wzero-length-array"
#endif

/* Common packet header.  size excludes the padding that follows the packet. */
struct gate_packet {
	uint32_t size;
	int16_t code;   /* service code, or GATE_PACKET_CODE_SERVICES */
	uint8_t domain; /* GATE_PACKET_DOMAIN_* (high 4 bits zero) */
	uint8_t index;  /* send as 0; position of a call reply in the queue */
} GATE_PACKED;

/* Discovery request: count names, each a length byte (1..127) and bytes. */
struct gate_service_name_packet {
	struct gate_packet header;
	uint16_t count;
	char names[0];
} GATE_PACKED;

/* Discovery reply or notification: one state byte per discovered service,
 * in service code order. */
struct gate_service_state_packet {
	struct gate_packet header;
	uint16_t count;
	uint8_t states[0];
} GATE_PACKED;

/* One stream flow entry: value > 0 grants that many more bytes, 0 means the
 * sender of the flow packet will accept no more data, < 0 is a note. */
struct gate_flow {
	int32_t id;
	int32_t value;
} GATE_PACKED;

struct gate_flow_packet {
	struct gate_packet header;
	struct gate_flow flows[0];
} GATE_PACKED;

/* Stream data.  A packet without data (size 16) ends the stream direction. */
struct gate_data_packet {
	struct gate_packet header;
	int32_t id;
	int32_t note;
	char data[0];
} GATE_PACKED;

#ifdef __clang__
#pragma clang diagnostic pop
#endif

#ifdef __cplusplus
#define GATE_IMPL_STATIC_ASSERT static_assert
#else
#define GATE_IMPL_STATIC_ASSERT _Static_assert
#endif

GATE_IMPL_STATIC_ASSERT(sizeof(struct gate_packet) == 8, "gate_packet layout");
GATE_IMPL_STATIC_ASSERT(sizeof(struct gate_service_name_packet) == 10, "gate_service_name_packet layout");
GATE_IMPL_STATIC_ASSERT(sizeof(struct gate_service_state_packet) == 10, "gate_service_state_packet layout");
GATE_IMPL_STATIC_ASSERT(sizeof(struct gate_flow) == 8, "gate_flow layout");
GATE_IMPL_STATIC_ASSERT(sizeof(struct gate_flow_packet) == 8, "gate_flow_packet layout");
GATE_IMPL_STATIC_ASSERT(sizeof(struct gate_data_packet) == 16, "gate_data_packet layout");

/* ------------------------------------------------------------------------ */
/* Imported functions.  Not part of the API: use the wrappers below.        */

#define GATE_IMPL_STR_(x) #x
#define GATE_IMPL_STR(x) GATE_IMPL_STR_(x)

#ifdef __wasi__
#define GATE_IMPL_WASI(name) \
	__attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))
#else
#define GATE_IMPL_WASI(name) \
	__attribute__((import_module("env"), import_name("__wasi_" #name)))
#endif

#define GATE_IMPL_GATE(name) \
	__attribute__((import_module("env"), import_name("__gate_" #name "_" GATE_IMPL_STR(GATE_MAX_RECV_SIZE))))

GATE_IMPL_WASI(fd_write)
uint16_t gate_impl_fd_write(uint32_t fd, const struct gate_iovec *iovs, size_t iovcount, size_t *nwritten) GATE_NOEXCEPT;

GATE_IMPL_WASI(clock_time_get)
uint16_t gate_impl_clock_time_get(uint32_t clock, uint64_t precision, uint64_t *time) GATE_NOEXCEPT;

GATE_IMPL_WASI(proc_exit) GATE_NORETURN
void gate_impl_proc_exit(uint32_t status) GATE_NOEXCEPT;

GATE_IMPL_GATE(fd) GATE_PURE
uint32_t gate_impl_fd(void) GATE_NOEXCEPT;

GATE_IMPL_GATE(io)
void gate_impl_io(const struct gate_iovec *recv, int recvveclen, size_t *nreceived,
                  const struct gate_iovec *send, int sendveclen, size_t *nsent,
                  int64_t timeout, gate_flags_t *flags) GATE_NOEXCEPT;

/* ------------------------------------------------------------------------ */
/* Packet I/O.                                                              */

/* Receive and/or send packet stream bytes.  Waits until something can be
 * transferred or the timeout (nanoseconds) expires; a negative timeout waits
 * without limit, 0 does not wait.  May return having transferred nothing
 * (for example when the instance is being suspended), so callers loop.
 * Result pointers may be NULL.  Bytes sent must form whole packets, each
 * followed by zero padding up to GATE_PACKET_ALIGNMENT. */
static inline void gate_io(const struct gate_iovec *recv, int recvveclen, size_t *nreceived,
                           const struct gate_iovec *send, int sendveclen, size_t *nsent,
                           int64_t timeout, gate_flags_t *flags) GATE_NOEXCEPT
{
	gate_impl_io(recv, recvveclen, nreceived, send, sendveclen, nsent, timeout, flags);
}

/* Receive into one buffer; returns the number of bytes received. */
static inline size_t gate_recv(void *buf, size_t size, int64_t timeout) GATE_NOEXCEPT
{
	struct gate_iovec iov = {buf, size};
	size_t n = 0;
	gate_impl_io(&iov, 1, &n, NULL, 0, NULL, timeout, NULL);
	return n;
}

/* Send from one buffer; returns the number of bytes sent. */
static inline size_t gate_send(const void *data, size_t size, int64_t timeout) GATE_NOEXCEPT
{
	struct gate_iovec iov = {(void *) data, size};
	size_t n = 0;
	gate_impl_io(NULL, 0, NULL, &iov, 1, &n, timeout, NULL);
	return n;
}

/* The WASI file descriptor of the packet stream (always 4), for programs
 * that prefer fd_read/fd_write/poll_oneoff.  Extension of this header. */
static inline int gate_fd(void) GATE_NOEXCEPT
{
	return (int) gate_impl_fd();
}

/* ------------------------------------------------------------------------ */
/* Exit and clocks.                                                         */

/* End the program for good: status 0 = success, anything else = failure.
 * The instance becomes TERMINATED and cannot be resumed. */
GATE_NORETURN static inline void gate_exit(int status) GATE_NOEXCEPT
{
	gate_impl_proc_exit((uint32_t) status);
}

/* Wall-clock time in nanoseconds since the Unix epoch. */
static inline uint64_t gate_clock_realtime(void) GATE_NOEXCEPT
{
	uint64_t t = 0;
	(void) gate_impl_clock_time_get(0, 1, &t);
	return t;
}

/* Monotonic time in nanoseconds.  It belongs to the instance: it does not
 * advance while the instance is suspended. */
static inline uint64_t gate_clock_monotonic(void) GATE_NOEXCEPT
{
	uint64_t t = 0;
	(void) gate_impl_clock_time_get(1, 1, &t);
	return t;
}

/* ------------------------------------------------------------------------ */
/* Debug log.  Each primitive write is one fd_write call on fd 2; the result
 * is ignored (the log may be disabled by the host).                        */

static inline void gate_impl_debug_write(const char *data, size_t size) GATE_NOEXCEPT
{
	struct gate_iovec iov = {(void *) data, size};
	size_t written;
	(void) gate_impl_fd_write(2, &iov, 1, &written);
}

static inline void gate_impl_debug_uint(uint64_t n) GATE_NOEXCEPT
{
	char buf[20]; /* enough for 2^64-1 */
	size_t i = sizeof buf;
	do {
		buf[--i] = (char) ('0' + n % 10);
		n /= 10;
	} while (n != 0);
	gate_impl_debug_write(buf + i, sizeof buf - i);
}

static inline void gate_impl_debug_hex(uint64_t n) GATE_NOEXCEPT
{
	char buf[16]; /* enough for 2^64-1 */
	size_t i = sizeof buf;
	do {
		unsigned digit = (unsigned) (n & 0xf);
		buf[--i] = (char) (digit < 10 ? '0' + digit : 'a' + (digit - 10));
		n >>= 4;
	} while (n != 0);
	gate_impl_debug_write(buf + i, sizeof buf - i);
}

/* Signed decimal.  A negative number is written as "-" and its magnitude
 * (two writes); the magnitude is computed in unsigned arithmetic so that
 * INT64_MIN works. */
static inline void gate_debug_int(int64_t n) GATE_NOEXCEPT
{
#ifdef NDEBUG
	(void) n;
#else
	uint64_t magnitude = (uint64_t) n;
	if (n < 0) {
		gate_impl_debug_write("-", 1);
		magnitude = 0 - magnitude;
	}
	gate_impl_debug_uint(magnitude);
#endif
}

/* Unsigned decimal, no padding. */
static inline void gate_debug_uint(uint64_t n) GATE_NOEXCEPT
{
#ifdef NDEBUG
	(void) n;
#else
	gate_impl_debug_uint(n);
#endif
}

/* Lower-case hexadecimal without prefix or leading zeros. */
static inline void gate_debug_hex(uint64_t n) GATE_NOEXCEPT
{
#ifdef NDEBUG
	(void) n;
#else
	gate_impl_debug_hex(n);
#endif
}

/* "0x" followed by the address in hexadecimal (two writes). */
static inline void gate_debug_ptr(const void *ptr) GATE_NOEXCEPT
{
#ifdef NDEBUG
	(void) ptr;
#else
	gate_impl_debug_write("0x", 2);
	gate_impl_debug_hex((uintptr_t) ptr);
#endif
}

/* A NUL-terminated string (without the NUL). */
static inline void gate_debug_str(const char *s) GATE_NOEXCEPT
{
#ifdef NDEBUG
	(void) s;
#else
	size_t len = 0;
	while (s[len] != '\0')
		len++;
	gate_impl_debug_write(s, len);
#endif
}

/* Exactly size bytes. */
static inline void gate_debug_data(const char *data, size_t size) GATE_NOEXCEPT
{
#ifdef NDEBUG
	(void) data;
	(void) size;
#else
	gate_impl_debug_write(data, size);
#endif
}

/* Selected by gate_debug() for argument types it cannot print (floats, plain
 * char, structs, other pointer types).  Never defined: when the compiler
 * supports the error attribute the call is a compile-time error, otherwise it
 * becomes an unresolvable import that the host refuses at load time. */
#if defined(__has_attribute)
#if __has_attribute(error)
__attribute__((error("gate_debug: argument type is not supported")))
#endif
#endif
void __gate_debug_type_not_supported();

#ifdef __cplusplus
}
#endif

/* gate_debug(x): print one value, choosing the helper from its static type.
 * No separators or newlines are added.  (C only: _Generic.) */
#ifndef __cplusplus
#define gate_debug(x) \
	do { \
		_Generic((x), \
			_Bool: gate_debug_uint, \
			signed char: gate_debug_int, \
			short: gate_debug_int, \
			int: gate_debug_int, \
			long: gate_debug_int, \
			long long: gate_debug_int, \
			unsigned char: gate_debug_uint, \
			unsigned short: gate_debug_uint, \
			unsigned int: gate_debug_uint, \
			unsigned long: gate_debug_uint, \
			unsigned long long: gate_debug_uint, \
			char *: gate_debug_str, \
			const char *: gate_debug_str, \
			void *: gate_debug_ptr, \
			const void *: gate_debug_ptr, \
			default: __gate_debug_type_not_supported)(x); \
	} while (0)
#endif

#endif /* GATE_H_INCLUDED */
