/*
 * recurse.c - deep but bounded recursion.
 *
 * Export recurse: walk(10000), a recursion 10000 calls deep (plus the entry
 * function), then writes "recurse: <result>\n" to the debug log and returns.
 *
 *   walk(0) = 1
 *   walk(n) = walk(n - 1) * 31 + n   (mod 2^32)
 *
 * The result of the recursive call is multiplied and then added to, so clang
 * cannot turn the recursion into a loop (check: wasm2wat shows
 * "call $walk" inside $walk).  The expected line is
 * "recurse: 1588990601\n".
 *
 * Export recurse_shallow does the same with depth 1000
 * ("recurse: 4128127861\n"), as a control that needs little stack.
 */

#include <gate.h>

#define EXPORT(name) __attribute__((export_name(#name)))

static volatile uint32_t depth = 10000;
static volatile uint32_t shallow_depth = 1000;

__attribute__((noinline)) static uint32_t walk(uint32_t n)
{
	if (n == 0)
		return 1;
	return walk(n - 1) * 31 + n;
}

static void report(uint32_t n)
{
	uint32_t result = walk(n);
	gate_debug_str("recurse: ");
	gate_debug_uint(result);
	gate_debug_str("\n");
}

EXPORT(recurse) void recurse(void)
{
	report(depth);
}

EXPORT(recurse_shallow) void recurse_shallow(void)
{
	report(shallow_depth);
}
