#!/usr/bin/env bash
# Builds every bpf/*.bpf.c into bpf/obj/*.bpf.o with fixed flags, and records the hash of the sources
# they came from in bpf/obj/SOURCES.sha256 (the Rust build refuses objects whose record does not match).
#   bpf/build.sh          rebuild the objects and the record
#   bpf/build.sh --check  only compare the record with the sources; exit 1 when stale
set -euo pipefail
cd "$(dirname "$0")/.."

sources() { ls bpf/build.sh bpf/include/*.h bpf/*.bpf.c | LC_ALL=C sort; }
record() { sources | xargs sha256sum; }

if [ "${1:-}" = "--check" ]; then
	if ! diff -u bpf/obj/SOURCES.sha256 <(record) >/dev/null 2>&1; then
		echo "bpf: the committed objects are stale (bpf/obj/SOURCES.sha256 does not match the sources);" >&2
		echo "bpf: run bpf/build.sh (needs clang, llvm and libbpf-dev) and commit bpf/obj/." >&2
		diff -u bpf/obj/SOURCES.sha256 <(record) >&2 || true
		exit 1
	fi
	exit 0
fi

CLANG=${CLANG:-clang}
STRIP=${LLVM_STRIP:-llvm-strip}
command -v "$CLANG" >/dev/null || { echo "bpf/build.sh: $CLANG not found (apt-get install clang llvm libbpf-dev)" >&2; exit 1; }
mkdir -p bpf/obj
for src in bpf/*.bpf.c; do
	obj=bpf/obj/$(basename "${src%.c}").o
	"$CLANG" -O2 -g -target bpf -D__TARGET_ARCH_x86 -std=gnu11 -Wall -Werror \
		-fdebug-prefix-map="$PWD"=. -fno-ident -I bpf/include -c "$src" -o "$obj.tmp"
	# Keep BTF (needed for CO-RE and the layout tests); drop DWARF so objects stay small.
	"$STRIP" -g "$obj.tmp" -o "$obj"
	rm -f "$obj.tmp"
done
record > bpf/obj/SOURCES.sha256
echo "bpf: built $(ls bpf/obj/*.o | wc -l) objects with $("$CLANG" --version | head -1)"
