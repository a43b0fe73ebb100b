#!/usr/bin/env bash
# Rebuild sqlite.wasm: SQLite as a Gate program (see README.md in guest/).
#
# The SQLite amalgamation (sqlite3.c, sqlite3.h: about 10 MB of C) is not
# kept in this repository: it is taken from the npm package better-sqlite3,
# which ships it, at a pinned version whose tarball integrity is checked.
# Set SQLITE_SRC to a directory holding sqlite3.c and sqlite3.h to build
# from those instead (no download).
#
# Needs clang, wasm-ld, wasi-libc and npm:
#   apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32

set -euo pipefail
cd "$(dirname "$0")"

CLANG=${CLANG:-clang}
PACKAGE=better-sqlite3@13.2.0
INTEGRITY=sha512-Z8Q/9x/uNyKxA1v4FNodyItRVRw1TeKBrmj32JhxhR0ceNcBY+wMobt/Bv7M7TzwPAXjnZRtNaEsATnUZSKWZQ==

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

src=${SQLITE_SRC:-}
if [ -z "$src" ]; then
	echo "fetching $PACKAGE from the npm registry"
	tarball=$(cd "$work" && npm pack --silent "$PACKAGE")
	actual="sha512-$(openssl dgst -sha512 -binary "$work/$tarball" | base64 -w0)"
	if [ "$actual" != "$INTEGRITY" ]; then
		echo "build.sh: $tarball has integrity $actual, expected $INTEGRITY" >&2
		exit 1
	fi
	tar -xzf "$work/$tarball" -C "$work" package/deps/sqlite3/sqlite3.c package/deps/sqlite3/sqlite3.h
	src=$work/package/deps/sqlite3
fi

# SQLite's options: no threads, no file system (SQLITE_OS_OTHER: vfs.c is
# the whole OS layer), every temporary file in memory, no extension
# loading, no local time zone (UTC only). The optional features are those
# better-sqlite3 builds with, so the program has the size of a real one.
SQLITE_DEFINES=(
	-DSQLITE_OS_OTHER=1
	-DSQLITE_THREADSAFE=0
	-DSQLITE_TEMP_STORE=3
	-DSQLITE_OMIT_LOAD_EXTENSION
	-DSQLITE_OMIT_LOCALTIME
	-DSQLITE_OMIT_DEPRECATED
	-DSQLITE_OMIT_SHARED_CACHE
	-DSQLITE_OMIT_WAL
	-DSQLITE_OMIT_UTF16
	-DSQLITE_OMIT_PROGRESS_CALLBACK
	-DSQLITE_OMIT_TCL_VARIABLE
	-DSQLITE_OMIT_COMPLETE
	-DSQLITE_OMIT_GET_TABLE
	-DSQLITE_OMIT_AUTHORIZATION
	-DSQLITE_OMIT_DECLTYPE
	-DSQLITE_OMIT_JSON
	-DSQLITE_OMIT_AUTOVACUUM
	-DSQLITE_OMIT_INCRBLOB
	-DSQLITE_OMIT_DESERIALIZE
	-DSQLITE_OMIT_COMPILEOPTION_DIAGS
	-DSQLITE_UNTESTABLE
	-DSQLITE_OMIT_TRACE
	-DSQLITE_OMIT_INTROSPECTION_PRAGMAS
	-DSQLITE_OMIT_SCHEMA_VERSION_PRAGMAS
	-DSQLITE_OMIT_XFER_OPT
	-DSQLITE_DEFAULT_MEMSTATUS=0
	-DSQLITE_DEFAULT_FOREIGN_KEYS=1
	-DSQLITE_DQS=0
	-DSQLITE_MAX_MMAP_SIZE=0
	-DSQLITE_ENABLE_MATH_FUNCTIONS
)

# wasm32-wasi with wasi-libc (malloc, strings, math), but no start files:
# the exports are the entry functions. MVP instructions only (see
# guest/build.sh). The stack gets 256 KiB (SQLite's parser and VDBE use more
# than wasm-ld's default 64 KiB). No -g; the name section stays for readable
# traces. SQLite's own warnings are not ours to fix (-w).
CFLAGS=(--target=wasm32-wasi -mcpu=mvp -O2 -std=c11 -I../include -I"$src")
"$CLANG" "${CFLAGS[@]}" "${SQLITE_DEFINES[@]}" -w -c "$src/sqlite3.c" -o "$work/sqlite3.o"
for c in queries vfs; do
	"$CLANG" "${CFLAGS[@]}" "${SQLITE_DEFINES[@]}" -Wall -Wextra -c $c.c -o "$work/$c.o"
done
"$CLANG" --target=wasm32-wasi -nostartfiles \
	-Wl,--no-entry -Wl,--strip-debug -Wl,-z,stack-size=262144 \
	"$work/queries.o" "$work/vfs.o" "$work/sqlite3.o" -o sqlite.wasm
chmod 644 sqlite.wasm
echo "built guest/sqlite/sqlite.wasm ($(stat -c %s sqlite.wasm) bytes)"
