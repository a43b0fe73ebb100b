/*
 * matmul.c - a CPU-bound loop program: dense matrix multiplication.
 *
 Square f64 matrices of n rows: A and B are filled (A first, row by row)
 * with small integers from a xorshift32 generator (seed 0x2545f491, steps
 * <<13, >>17, <<5, each value x % 1024 - 512), so every product and sum is
 * exact in f64 and the result does not depend on the order of additions.
 * Round r (from 0) adds A_r x B to C (C starts at zero), where A_r is A with
 * its rows rotated up by r (row i of A_r is row (i + r) mod n of A); each
 * product runs in i-k-j loop order, the inner loop walking rows of B and C.
 * The checksum is the sum of C[i][j] * (i + 2j + 1) over all entries, as an
 * exact integer.
 *
 * Exports (no services; the result goes to the debug log):
 *   matmul        MATMUL_ROUNDS rounds of MATMUL_SIZE: "matmul: <checksum>\n"
 *   matmul_small  one round of SMALL_SIZE, the same format
 */

#include "util.h"

#define MATMUL_SIZE 256
#define MATMUL_ROUNDS 25
#define SMALL_SIZE 24

static double a[MATMUL_SIZE * MATMUL_SIZE];
static double b[MATMUL_SIZE * MATMUL_SIZE];
static double c[MATMUL_SIZE * MATMUL_SIZE];

static void fill(double *m, int n, uint32_t *x)
{
	for (int i = 0; i < n * n; i++) {
		*x ^= *x << 13;
		*x ^= *x >> 17;
		*x ^= *x << 5;
		m[i] = (double) ((int32_t) (*x % 1024) - 512);
	}
}

/* C += A_r x B */
static void multiply_add(int n, int r)
{
	for (int i = 0; i < n; i++)
		for (int k = 0; k < n; k++) {
			double aik = a[(i + r) % n * n + k];
			for (int j = 0; j < n; j++)
				c[i * n + j] += aik * b[k * n + j];
		}
}

static void run_matmul(int n, int rounds)
{
	uint32_t x = 0x2545f491;
	fill(a, n, &x);
	fill(b, n, &x);
	for (int i = 0; i < n * n; i++)
		c[i] = 0;
	for (int r = 0; r < rounds; r++)
		multiply_add(n, r);
	int64_t checksum = 0;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			checksum += (int64_t) c[i * n + j] * (i + 2 * j + 1);
	gate_debug_str("matmul: ");
	gate_debug_int(checksum);
	gate_debug_str("\n");
}

EXPORT(matmul) void matmul(void)
{
	run_matmul(MATMUL_SIZE, MATMUL_ROUNDS);
}

EXPORT(matmul_small) void matmul_small(void)
{
	run_matmul(SMALL_SIZE, 1);
}
