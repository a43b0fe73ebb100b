/*
 * printf.c - an ordinary WASI command using only the C library.
 *
 * Built with clang --target=wasm32-wasi against wasi-libc, so it exports
 * _start (which becomes the entry function when no function is named).
 * Under Gate, file descriptors 1 and 2 both go to the debug log.  stdout
 * starts line-buffered, so its line is written at the newline, before the
 * stderr line: the log is "hello from printf 42\nhello from stderr\n".
 * main returns 0, so _start returns normally (no proc_exit): the instance
 * halts with result 0.
 */

#include <stdio.h>

int main(void)
{
	printf("hello from printf %d\n", 42);
	fprintf(stderr, "hello from stderr\n");
	return 0;
}
