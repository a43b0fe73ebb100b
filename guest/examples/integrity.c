/*
 * integrity.c - checks that execution state survives suspend and resume.
 *
 * The loop keeps the same counter in three places:
 *
 *   - a local variable of the looping function (a wasm local, saved and
 *     restored with the call stack),
 *   - a variable in linear memory (saved with the memory),
 *   - a derived value, counter * 123 + 7, in a mutable wasm global of its
 *     own (saved with the globals; declared with inline assembly because C
 *     has no other way to create a wasm global).
 *
 * Every round first verifies that the three agree, then increments the
 * counter and refreshes the copies.  The new counter travels through
 * barrier(), which stores it in memory and makes a gate_io call that
 * transfers nothing (timeout 0): a point where the host may suspend the
 * program while a call is in progress.
 *
 * Exports:
 *   check_forever  loop forever (until suspended, killed, or a mismatch)
 *   check          CHECK_ROUNDS rounds, then "integrity: <n> rounds ok\n"
 *                  to the debug log and return
 *
 * A mismatch logs "integrity: mismatch at round <n>\n" and terminates with
 * result 1.
 */

#include <gate.h>

#define EXPORT(name) __attribute__((export_name(#name)))
#define NOINLINE __attribute__((noinline))

#define CHECK_ROUNDS 500000

/* The wasm global "integrity_mirror" (mutable i32, initially 0). */
__asm__(".globaltype integrity_mirror, i32\n"
        "integrity_mirror:\n");

static inline uint32_t mirror_get(void)
{
	uint32_t value;
	__asm__ volatile("global.get integrity_mirror\n\tlocal.set %0" : "=r"(value));
	return value;
}

static inline void mirror_set(uint32_t value)
{
	__asm__ volatile("local.get %0\n\tglobal.set integrity_mirror" ::"r"(value));
}

static inline uint32_t derive(uint32_t counter)
{
	return counter * 123 + 7;
}

/* The memory copy.  volatile: every check really reads memory. */
static volatile uint32_t memory_copy;

/* Store the value in memory, give the host a chance to suspend us inside an
 * import call, and hand the value back. */
NOINLINE static uint32_t barrier(uint32_t value)
{
	memory_copy = value;
	gate_io(NULL, 0, NULL, NULL, 0, NULL, 0, NULL);
	return value;
}

GATE_NORETURN NOINLINE static void mismatch(uint32_t round)
{
	gate_debug_str("integrity: mismatch at round ");
	gate_debug_uint(round);
	gate_debug_str("\n");
	gate_exit(1);
}

/* Run until the counter reaches limit (0 = never). */
NOINLINE static uint32_t run(uint32_t limit)
{
	uint32_t counter = 0;
	memory_copy = 0;
	mirror_set(derive(0));

	for (;;) {
		if (memory_copy != counter || mirror_get() != derive(counter))
			mismatch(counter);
		if (limit != 0 && counter == limit)
			return counter;

		counter = barrier(counter + 1);
		mirror_set(derive(counter));
	}
}

EXPORT(check_forever) void check_forever(void)
{
	run(0);
}

EXPORT(check) void check(void)
{
	uint32_t n = run(CHECK_ROUNDS);
	gate_debug_str("integrity: ");
	gate_debug_uint(n);
	gate_debug_str(" rounds ok\n");
}
