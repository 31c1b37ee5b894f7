#!/usr/bin/env bash
# Builds every bpf/*.bpf.c into bpf/obj/*.bpf.o with fixed flags, and records the hash of the sources
# they came from in bpf/obj/SOURCES.sha256 (the Rust build refuses objects whose record does not match)
# and the clang that built them in bpf/obj/CLANG_VERSION.
#   bpf/build.sh           rebuild the objects and both records
#   bpf/build.sh --check   only compare the source record with the sources; exit 1 when stale
#   bpf/build.sh --verify  where the installed clang is the recorded one, rebuild into a scratch
#                          directory and exit 1 unless every object is byte-identical to the committed
#                          one (the committed objects are never touched: they are what users run)
set -euo pipefail
cd "$(dirname "$0")/.."

sources() { ls bpf/build.sh bpf/include/*.h bpf/*.bpf.c | LC_ALL=C sort; }
record() { sources | xargs sha256sum; }

CLANG=${CLANG:-clang}
STRIP=${LLVM_STRIP:-llvm-strip}
clang_version() { "$CLANG" --version | head -1; }

# build_into DIR: every object, with the fixed flags, into DIR.
build_into() {
	local out=$1
	mkdir -p "$out"
	for src in bpf/*.bpf.c; do
		obj=$out/$(basename "${src%.c}").o
		"$CLANG" -O2 -g -target bpf -D__TARGET_ARCH_x86 -std=gnu11 -Wall -Werror \
			-fdebug-prefix-map="$PWD"=. -fno-ident -I bpf/include -c "$src" -o "$obj.tmp"
		# Keep BTF (needed for CO-RE and the layout tests); drop DWARF so objects stay small.
		"$STRIP" -g "$obj.tmp" -o "$obj"
		rm -f "$obj.tmp"
	done
}

case "${1:-}" in
--check)
	if ! diff -u bpf/obj/SOURCES.sha256 <(record) >/dev/null 2>&1; then
		echo "bpf: the committed objects are stale (bpf/obj/SOURCES.sha256 does not match the sources);" >&2
		echo "bpf: run bpf/build.sh (needs clang, llvm and libbpf-dev) and commit bpf/obj/." >&2
		diff -u bpf/obj/SOURCES.sha256 <(record) >&2 || true
		exit 1
	fi
	exit 0
	;;
--verify)
	command -v "$CLANG" >/dev/null || { echo "bpf: no $CLANG installed: the objects' bytes were not compared" >&2; exit 0; }
	have=$(clang_version)
	want=$(cat bpf/obj/CLANG_VERSION 2>/dev/null || echo "(not recorded)")
	if [ "$have" != "$want" ]; then
		echo "bpf: the objects were built with \"$want\", and \"$have\" is installed: their bytes were not compared" >&2
		exit 0
	fi
	scratch=$(mktemp -d)
	trap 'rm -rf "$scratch"' EXIT
	build_into "$scratch"
	bad=0
	for obj in "$scratch"/*.o; do
		if ! cmp -s "$obj" "bpf/obj/$(basename "$obj")"; then
			echo "bpf: bpf/obj/$(basename "$obj") differs from what $have builds from the committed sources" >&2
			bad=1
		fi
	done
	extra=$(comm -13 <(cd "$scratch" && ls *.o) <(cd bpf/obj && ls *.o) || true)
	[ -z "$extra" ] || { echo "bpf: committed objects without a source: $extra" >&2; bad=1; }
	[ $bad -eq 0 ] || { echo "bpf: run bpf/build.sh and commit bpf/obj/" >&2; exit 1; }
	echo "bpf: the $(ls "$scratch"/*.o | wc -l) committed objects are byte-identical to a rebuild with $have"
	exit 0
	;;
"") ;;
*)
	echo "usage: bpf/build.sh [--check|--verify]" >&2
	exit 2
	;;
esac

command -v "$CLANG" >/dev/null || { echo "bpf/build.sh: $CLANG not found (apt-get install clang llvm libbpf-dev)" >&2; exit 1; }
build_into bpf/obj
record > bpf/obj/SOURCES.sha256
clang_version > bpf/obj/CLANG_VERSION
echo "bpf: built $(ls bpf/obj/*.o | wc -l) objects with $(clang_version)"
