#!/usr/bin/env bash
# Rebuild every guest .wasm from its source, next to the source:
#   examples/*.c -> examples/*.wasm   (clang, wasm32, no libc; printf.c with wasi-libc)
#   wat/*.wat    -> wat/*.wasm        (wat2wasm)
#
# The .wasm files are committed so that the runtime's tests need no compiler;
# run this script after changing a source and commit both.
#
# Usage: guest/build.sh            (from any directory)
# Environment: CLANG, WAT2WASM override the tool names.

set -euo pipefail
export LC_ALL=C

cd "$(dirname "$0")"

CLANG=${CLANG:-clang}
WAT2WASM=${WAT2WASM:-wat2wasm}
INSTALL_HINT="apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32 wabt"

missing() {
	echo "build.sh: $1" >&2
	echo "build.sh: on Debian/Ubuntu install the toolchain with:" >&2
	echo "    $INSTALL_HINT" >&2
	exit 1
}

command -v "$CLANG" >/dev/null 2>&1 || missing "clang not found ($CLANG)"
command -v "$WAT2WASM" >/dev/null 2>&1 || missing "wat2wasm not found ($WAT2WASM; package wabt)"
command -v wasm-ld >/dev/null 2>&1 || missing "wasm-ld not found (package lld)"

# Freestanding programs: no C library, our own gate.h and mem.h.  MVP
# instructions only (-mcpu=mvp), so the output is the same whatever newer
# features a later clang enables by default.  No -g: no file paths or debug
# sections end up in the output; the name section stays for readable traces.
CFLAGS=(
	--target=wasm32 -mcpu=mvp
	-std=c11 -O2
	-ffreestanding -fno-builtin -nostdlib
	-Wall -Wextra
	-Iinclude
)
LDFLAGS=(
	-Wl,--no-entry
	-Wl,--strip-debug
)

# printf.c is an ordinary WASI command linked with wasi-libc.
WASI_CFLAGS=(
	--target=wasm32-wasi
	-std=c11 -O2
	-Wall -Wextra
)
WASI_LDFLAGS=(
	-Wl,--strip-debug
)

build_c() {
	local src=$1 out=${1%.c}.wasm
	local extra=()
	case $(basename "$src") in
	printf.c)
		"$CLANG" "${WASI_CFLAGS[@]}" "$src" -o "$out" "${WASI_LDFLAGS[@]}" && chmod 644 "$out" ||
			missing "building $src failed (is wasi-libc installed?)"
		return
		;;
	hash.c)
		# Export the address of the `rounds` variable as the global "rounds".
		extra=(-Wl,--export=rounds)
		;;
	esac
	"$CLANG" "${CFLAGS[@]}" "$src" -o "$out" "${LDFLAGS[@]}" "${extra[@]}"
	chmod 644 "$out"
}

build_wat() {
	local src=$1 out=${1%.wat}.wasm
	"$WAT2WASM" "$src" -o "$out"
	chmod 644 "$out"
}

for src in examples/*.c; do
	build_c "$src"
	echo "built ${src%.c}.wasm"
done

for src in wat/*.wat; do
	build_wat "$src"
	echo "built ${src%.wat}.wasm"
done

# Service test programs (guest/services/*.c, with their own svc.h).
for src in services/*.c; do
	build_c "$src"
	echo "built ${src%.c}.wasm"
done
