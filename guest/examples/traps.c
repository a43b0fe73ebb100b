/*
 * traps.c - one export per WebAssembly trap.
 *
 * Operands come from volatile variables so that clang can neither compute
 * the result at compile time nor delete the trapping instruction (division
 * by zero and friends are undefined behaviour in C, which an optimiser may
 * otherwise exploit).  build.sh keeps the name section, so wasm2wat shows
 * which instruction each export executes:
 *
 *   unreachable          unreachable                         UNREACHABLE
 *   divide_by_zero       i32.div_s 1 / 0                     INTEGER_DIVIDE_BY_ZERO
 *   remainder_by_zero    i32.rem_u 1 % 0                     INTEGER_DIVIDE_BY_ZERO
 *   integer_overflow     i32.div_s INT_MIN / -1              INTEGER_OVERFLOW
 *   float_conversion     i32.trunc_f64_s of NaN              INTEGER_OVERFLOW
 *   out_of_bounds        i32.load from 0xfffffff0            MEMORY_ACCESS_OUT_OF_BOUNDS
 *   stack_exhaustion     unbounded recursion (call)          CALL_STACK_EXHAUSTED
 *   indirect_index       call_indirect, index 0x10000        INDIRECT_CALL_INDEX_OUT_OF_BOUNDS
 *   indirect_signature   call_indirect, wrong type           INDIRECT_CALL_SIGNATURE_MISMATCH
 *   indirect_null        call_indirect, null slot 0          INDIRECT_CALL_SIGNATURE_MISMATCH
 *
 * Each export writes one line to the debug log before trapping, so a test can
 * also check that output made before a trap is kept.
 */

#include <gate.h>
#include <limits.h>
#include <stdint.h>

#define EXPORT(name) __attribute__((export_name(#name)))
#define NOINLINE __attribute__((noinline))

static volatile int zero = 0;
static volatile int one = 1;
static volatile int int_min = INT_MIN;
static volatile int minus_one = -1;
static volatile unsigned uzero = 0;
static volatile double not_a_number = __builtin_nan("");
static volatile uintptr_t far_address = 0xfffffff0u;
static volatile uintptr_t bad_table_index = 0x10000;
static volatile uintptr_t null_table_index = 0;
static volatile int sink; /* results are stored here so they count as used */

EXPORT(unreachable) void trap_unreachable(void)
{
	gate_debug_str("trap: unreachable\n");
	__builtin_trap();
}

EXPORT(divide_by_zero) void divide_by_zero(void)
{
	gate_debug_str("trap: divide_by_zero\n");
	sink = one / zero;
}

EXPORT(remainder_by_zero) void remainder_by_zero(void)
{
	gate_debug_str("trap: remainder_by_zero\n");
	sink = (int) ((unsigned) one % uzero);
}

EXPORT(integer_overflow) void integer_overflow(void)
{
	gate_debug_str("trap: integer_overflow\n");
	sink = int_min / minus_one;
}

/* A plain C cast would be compiled with a range check (clang avoids the
 * trapping instruction), so use the builtin for the raw instruction. */
EXPORT(float_conversion) void float_conversion(void)
{
	gate_debug_str("trap: float_conversion\n");
	sink = __builtin_wasm_trunc_s_i32_f64(not_a_number);
}

EXPORT(out_of_bounds) void out_of_bounds(void)
{
	gate_debug_str("trap: out_of_bounds\n");
	sink = *(volatile int *) far_address;
}

/* Each level stores its depth (a side effect that must happen in order) and
 * uses the callee's result in arithmetic, so this is neither a tail call nor
 * a loop in disguise.  stop_at is 0, which n never reaches again. */
static volatile unsigned depth;
static volatile unsigned stop_at = 0;

NOINLINE static unsigned recurse_forever(unsigned n)
{
	depth = n;
	if (n == stop_at)
		return n;
	return recurse_forever(n + 1) * 3 + 1;
}

EXPORT(stack_exhaustion) void stack_exhaustion(void)
{
	gate_debug_str("trap: stack_exhaustion\n");
	sink = (int) recurse_forever(1);
}

typedef void (*void_fn)(void);

EXPORT(indirect_index) void indirect_index(void)
{
	gate_debug_str("trap: indirect_index\n");
	void_fn f = (void_fn) bad_table_index;
	f();
}

NOINLINE static int add(int a, int b)
{
	return a + b;
}

/* The table slot of add has type (i32, i32) -> i32. */
static int (*volatile add_ptr)(int, int) = add;

EXPORT(indirect_signature) void indirect_signature(void)
{
	gate_debug_str("trap: indirect_signature\n");
	void_fn f = (void_fn) add_ptr;
	f();
}

/* Slot 0 of the table is never filled (function pointer value NULL). */
EXPORT(indirect_null) void indirect_null(void)
{
	gate_debug_str("trap: indirect_null\n");
	void_fn f = (void_fn) null_table_index;
	f();
}
