/*
 * mem.h - the four memory functions that clang may call on its own.
 *
 * The examples are linked without any C library (-nostdlib), but the compiler
 * still emits calls to memcpy/memmove/memset/memcmp for struct copies and
 * large initialisations, so each program gets these small definitions.  They
 * are compiled with -fno-builtin (see build.sh) so that clang does not turn
 * the loops below back into calls to themselves.
 */

#ifndef EXAMPLES_MEM_H
#define EXAMPLES_MEM_H

#include <stddef.h>

void *memcpy(void *restrict dest, const void *restrict src, size_t n)
{
	unsigned char *d = dest;
	const unsigned char *s = src;
	while (n--)
		*d++ = *s++;
	return dest;
}

void *memmove(void *dest, const void *src, size_t n)
{
	unsigned char *d = dest;
	const unsigned char *s = src;
	if (d < s) {
		while (n--)
			*d++ = *s++;
	} else {
		while (n--)
			d[n] = s[n];
	}
	return dest;
}

void *memset(void *dest, int c, size_t n)
{
	unsigned char *d = dest;
	while (n--)
		*d++ = (unsigned char) c;
	return dest;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i])
			return x[i] - y[i];
	return 0;
}

#endif
