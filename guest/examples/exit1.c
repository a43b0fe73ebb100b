/*
 * exit1.c - ending a program with gate_exit (WASI proc_exit).
 *
 * Exports:
 *   exit1       gate_exit(1): TERMINATED, result 1
 *   exit0       gate_exit(0): TERMINATED, result 0
 *   exit_other  gate_exit(42): any non-zero status is reported as result 1
 *   main_exit   same as exit1 (alias)
 */

#include <gate.h>

#define EXPORT(name) __attribute__((export_name(#name)))

EXPORT(exit1) void exit1(void)
{
	gate_exit(1);
}

EXPORT(exit0) void exit0(void)
{
	gate_exit(0);
}

EXPORT(exit_other) void exit_other(void)
{
	gate_exit(42);
}

EXPORT(main_exit) void main_exit(void)
{
	gate_exit(1);
}
