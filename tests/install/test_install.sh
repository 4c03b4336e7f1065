#!/bin/sh
# Installs sdvk like a library and uses it from outside (tests/install.cmake):
#   test_install.sh SOURCE_DIR WORK_DIR
# 1. configure, build and `cmake --install` the source tree into WORK/prefix
#    from its own build folder, then delete that build folder;
# 2. build consumer.c with `pkg-config --cflags --libs sdvk` and run it on the
#    installed demo model;
# 3. build it with find_package(sdvk) (static and shared) and run both;
# 4. run the installed `sdvk` without -m: it must find the installed demo model.
set -eu
SRC=$1 WORK=$2
rm -rf "$WORK"
mkdir -p "$WORK"
PREFIX=$WORK/prefix
jobs=$(nproc)
echo "== build and install into $PREFIX"
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DSDVK_TESTS=OFF \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" > "$WORK/configure.log"
cmake --build "$WORK/build" -j"$jobs" > "$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log"; exit 1; }
cmake --install "$WORK/build" > "$WORK/install.log"
rm -rf "$WORK/build"
echo "== installed files"
(cd "$PREFIX" && find . -type f -o -type l | sort | grep -v '/models/demo/tokenizer/' | sed 's/^/   /')
DEMO=$PREFIX/share/sdvk/models/demo/sdvk-demo.safetensors
[ -f "$DEMO" ] || { echo "FAIL: no installed demo model"; exit 1; }

echo "== pkg-config"
PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig
export PKG_CONFIG_PATH
flags=$(pkg-config --cflags --libs sdvk)
echo "   pkg-config --cflags --libs sdvk: $flags"
[ "$(pkg-config --variable=demo_model sdvk)" = "$DEMO" ] || { echo "FAIL: pkg-config demo_model"; exit 1; }
cc -std=c11 -o "$WORK/consumer_pc" "$SRC/tests/install/consumer.c" $flags
LD_LIBRARY_PATH=$PREFIX/lib "$WORK/consumer_pc" "$DEMO" "$WORK/pc.png"
ldd "$WORK/consumer_pc" | grep -q "libsdvk.so" || { echo "FAIL: not linked to libsdvk.so"; exit 1; }

echo "== find_package(sdvk)"
cmake -S "$SRC/tests/install" -B "$WORK/consumer" -DCMAKE_PREFIX_PATH="$PREFIX" > "$WORK/consumer.log"
cmake --build "$WORK/consumer" >> "$WORK/consumer.log" 2>&1 || { tail -20 "$WORK/consumer.log"; exit 1; }
[ "$(cat "$WORK/consumer/demo_model.txt")" = "$DEMO" ] || { echo "FAIL: SDVK_DEMO_MODEL"; exit 1; }
"$WORK/consumer/consumer_static" "$DEMO" "$WORK/static.png"
LD_LIBRARY_PATH=$PREFIX/lib "$WORK/consumer/consumer_shared" "$DEMO" "$WORK/shared.png"
cmp "$WORK/static.png" "$WORK/shared.png" || { echo "FAIL: static and shared pictures differ"; exit 1; }
cmp "$WORK/static.png" "$WORK/pc.png" || { echo "FAIL: pkg-config and find_package pictures differ"; exit 1; }

echo "== the installed CLI finds the installed demo model"
(cd "$WORK" && env -u SDVK_DEMO_MODEL "$PREFIX/bin/sdvk" -p "a red circle on a blue background" \
    --steps 8 -o cli.png) 2> "$WORK/cli.log" || { cat "$WORK/cli.log"; exit 1; }
grep -q "$DEMO" "$WORK/cli.log" || { cat "$WORK/cli.log"; echo "FAIL: the CLI did not use $DEMO"; exit 1; }
echo "OK: installed, found by pkg-config and find_package, demo model found by the library users and the CLI"
