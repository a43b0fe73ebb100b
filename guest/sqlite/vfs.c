/*
 * vfs.c - SQLite's operating-system layer for a Gate program.
 *
 * Built with SQLITE_OS_OTHER=1, SQLite has no file system code and asks the
 * program for one VFS.  A Gate program has no file system, and the databases
 * here are ":memory:" ones with every temporary file in memory
 * (SQLITE_TEMP_STORE=3), which never reach a VFS.  So this VFS opens nothing
 * and offers only what SQLite asks of every VFS: randomness, time, sleep.
 *
 * Randomness is a fixed sequence: SQLite needs it only for temporary names
 * and rowids after the largest one, and a fixed sequence keeps runs
 * reproducible (Gate's random_get gives 16 bytes per run).  Time is Gate's
 * realtime clock.
 */

#include <gate.h>
#include <string.h>

#include "sqlite3.h"

static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags, int *out_flags)
{
	(void) vfs, (void) name, (void) flags, (void) out_flags;
	file->pMethods = NULL; /* nothing to close */
	return SQLITE_CANTOPEN;
}

static int vfs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	(void) vfs, (void) name, (void) sync_dir;
	return SQLITE_IOERR_DELETE;
}

static int vfs_access(sqlite3_vfs *vfs, const char *name, int flags, int *result)
{
	(void) vfs, (void) name, (void) flags;
	*result = 0; /* no file exists */
	return SQLITE_OK;
}

static int vfs_full_pathname(sqlite3_vfs *vfs, const char *name, int size, char *out)
{
	(void) vfs;
	sqlite3_snprintf(size, out, "%s", name);
	return SQLITE_OK;
}

static int vfs_randomness(sqlite3_vfs *vfs, int size, char *out)
{
	(void) vfs;
	static uint32_t x = 0x6d2b79f5;
	for (int i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		out[i] = (char) x;
	}
	return size;
}

static int vfs_sleep(sqlite3_vfs *vfs, int microseconds)
{
	(void) vfs;
	/* Nothing to wait for: one connection, no other process. */
	return microseconds;
}

/* Milliseconds since the Julian epoch (noon UTC, 24 November 4714 BC). */
static int vfs_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	(void) vfs;
	const sqlite3_int64 unix_epoch = 210866760000000LL;
	*out = unix_epoch + (sqlite3_int64) (gate_clock_realtime() / 1000000);
	return SQLITE_OK;
}

static int vfs_current_time(sqlite3_vfs *vfs, double *out)
{
	sqlite3_int64 ms;
	vfs_current_time_int64(vfs, &ms);
	*out = (double) ms / 86400000.0;
	return SQLITE_OK;
}

static int vfs_get_last_error(sqlite3_vfs *vfs, int size, char *out)
{
	(void) vfs;
	if (size > 0)
		out[0] = '\0';
	return 0;
}

static sqlite3_vfs gate_vfs = {
	.iVersion = 2,
	.szOsFile = sizeof(sqlite3_file),
	.mxPathname = 512,
	.zName = "gate",
	.xOpen = vfs_open,
	.xDelete = vfs_delete,
	.xAccess = vfs_access,
	.xFullPathname = vfs_full_pathname,
	.xRandomness = vfs_randomness,
	.xSleep = vfs_sleep,
	.xCurrentTime = vfs_current_time,
	.xGetLastError = vfs_get_last_error,
	.xCurrentTimeInt64 = vfs_current_time_int64,
};

int sqlite3_os_init(void)
{
	return sqlite3_vfs_register(&gate_vfs, 1);
}

int sqlite3_os_end(void)
{
	return SQLITE_OK;
}
