/*
 * sort.c - a CPU-bound program: recursive quicksort of a large array.
 *
 * Each round fills an array of SORT_SIZE u32 values from a xorshift32
 * generator (seed 0x9e3779b9 + round; steps <<13, >>17, <<5), sorts it with
 * a recursive quicksort (median of three, Hoare partition, insertion sort
 * below 16 elements), checks that the result is in order and folds it into
 * a checksum: sum over i of value[i] * (i + 1), mod 2^32, added up over the
 * rounds.
 *
 * Exports (no services; the result goes to the debug log):
 *   sort        SORT_ROUNDS rounds: "sort: <checksum>\n"
 *   sort_small  one round of SMALL_SIZE values, the same format
 * A result out of order logs "error: not sorted\n" and exits with 1.
 */

#include "util.h"

#define SORT_SIZE (1 << 20)
#define SORT_ROUNDS 3
#define SMALL_SIZE 1000

static uint32_t values[SORT_SIZE];

static void insertion_sort(uint32_t *a, int32_t n)
{
	for (int32_t i = 1; i < n; i++) {
		uint32_t v = a[i];
		int32_t j = i - 1;
		while (j >= 0 && a[j] > v) {
			a[j + 1] = a[j];
			j--;
		}
		a[j + 1] = v;
	}
}

static void swap(uint32_t *a, uint32_t *b)
{
	uint32_t t = *a;
	*a = *b;
	*b = t;
}

static void quicksort(uint32_t *a, int32_t n)
{
	if (n < 16) {
		insertion_sort(a, n);
		return;
	}
	/* Median of the first, middle and last value as the pivot. */
	int32_t mid = n / 2;
	if (a[mid] < a[0])
		swap(&a[mid], &a[0]);
	if (a[n - 1] < a[0])
		swap(&a[n - 1], &a[0]);
	if (a[n - 1] < a[mid])
		swap(&a[n - 1], &a[mid]);
	uint32_t pivot = a[mid];

	int32_t i = -1, j = n;
	for (;;) {
		do
			i++;
		while (a[i] < pivot);
		do
			j--;
		while (a[j] > pivot);
		if (i >= j)
			break;
		swap(&a[i], &a[j]);
	}
	quicksort(a, j + 1);
	quicksort(a + j + 1, n - j - 1);
}

static uint32_t sort_round(uint32_t seed, int32_t n)
{
	uint32_t x = seed;
	for (int32_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		values[i] = x;
	}
	quicksort(values, n);
	uint32_t sum = 0;
	for (int32_t i = 0; i < n; i++) {
		if (i > 0 && values[i - 1] > values[i])
			fail("not sorted");
		sum += values[i] * (uint32_t) (i + 1);
	}
	return sum;
}

static void run_sort(uint32_t rounds, int32_t n)
{
	uint32_t checksum = 0;
	for (uint32_t r = 0; r < rounds; r++)
		checksum += sort_round(0x9e3779b9 + r, n);
	gate_debug_str("sort: ");
	gate_debug_uint(checksum);
	gate_debug_str("\n");
}

EXPORT(sort) void sort(void)
{
	run_sort(SORT_ROUNDS, SORT_SIZE);
}

EXPORT(sort_small) void sort_small(void)
{
	run_sort(1, SMALL_SIZE);
}
