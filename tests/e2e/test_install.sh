#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# cmake --install into a fresh prefix, then, in a fresh login shell with Lmod:
# `module load tessera` (the Lua modulefile, then the Tcl one) puts a working
# tessera on PATH with its man page, and a C program builds and runs against
# the installed library through find_package(tessera) (shared and static)
# and through pkg-config (shared).
. "$(dirname "$0")/lib.sh"
: "${TSR_BUILD:?}"
P=$WORK/prefix
cmake --install "$TSR_BUILD" --prefix "$P" >install.txt 2>&1 && ok "cmake --install" || { bad "cmake --install"; cat install.txt; }
V=$("$TSR_BIN" --version | awk '{print $2}')
for f in bin/tessera lib/libtessera.so lib/libtessera.a lib/pkgconfig/tessera.pc lib/cmake/tessera/tesseraConfig.cmake \
         share/man/man1/tessera.1 share/tessera/jobs/train.sbatch "share/modulefiles/tessera/$V.lua" \
         "share/modulefiles/tessera/$V"; do
  [ -e "$P/$f" ] || bad "not installed: $f"
done
grep -q "\"$P\"" "$P/share/modulefiles/tessera/$V.lua" && grep -q "^set root \"$P\"" "$P/share/modulefiles/tessera/$V" \
  && ok "modulefiles carry the install prefix" || bad "modulefiles prefix"

cat > app.c <<'C'
#include <stdio.h>
#include <tessera/config.h>
#include <tessera/error.h>
#include <tessera/runtime.h>
int main(void)
{
    tsr_config_t *c = NULL;
    if (tsr_config_create(&c) != TSR_OK)
        return 1;
    printf("app: output=%s day=%ld min\n", tsr_config_get(c, "train", "output"), tsr_slurm_parse_time("1-00:00:00"));
    tsr_config_destroy(c);
    return 0;
}
C
cat > CMakeLists.txt <<'CM'
cmake_minimum_required(VERSION 3.18)
project(app C)
find_package(tessera REQUIRED)
add_executable(app app.c)
target_link_libraries(app PRIVATE tessera::tessera)
add_executable(app_static app.c)
target_link_libraries(app_static PRIVATE tessera::tessera_static)
CM
# A fresh login shell: nothing from this one but HOME, PATH's system part and the module path.
fresh() { # fresh MODULEPATH_DIR SCRIPT
  env -i HOME="$WORK" USER=root TERM=dumb PATH=/usr/local/bin:/usr/bin:/bin D="$1" W="$WORK" \
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 bash -lc "$2"
}
if ! fresh / 'type module' >/dev/null 2>&1; then
  echo "SKIP: no module command in a login shell (scripts/install-deps.sh installs lmod)"; finish; exit $?
fi
fresh "$P/share/modulefiles" 'module use "$D" && module load tessera && module list 2>&1 && command -v tessera \
  && tessera --version && echo "ROOT=$TESSERA_ROOT" && man -w tessera && tessera submit --help | head -1' >mod.txt 2>&1
grep -q "^$P/bin/tessera$" mod.txt && grep -q "^tessera $V$" mod.txt && grep -q "^ROOT=$P$" mod.txt \
  && grep -q "^$P/share/man/man1/tessera.1" mod.txt && grep -q 'usage: tessera submit' mod.txt \
  && ok "module load tessera (Lua): tessera, TESSERA_ROOT, man page" || { bad "module load tessera (Lua)"; cat mod.txt; }
fresh "$P/share/modulefiles" 'module use "$D" && module whatis tessera 2>&1; module help tessera 2>&1' >whatis.txt 2>&1
grep -q 'Version: '"$V" whatis.txt && grep -q 'find_package(tessera)' whatis.txt && ok "whatis and help" \
  || { bad "whatis/help"; cat whatis.txt; }
# The Tcl file alone (Lmod prefers .lua when both are present).
mkdir -p tcl/tessera && cp "$P/share/modulefiles/tessera/$V" tcl/tessera/
fresh "$WORK/tcl" 'module use "$D" && module load tessera && command -v tessera && tessera --version && echo "ROOT=$TESSERA_ROOT" \
  && echo "PKG=$PKG_CONFIG_PATH" && echo "CM=$CMAKE_PREFIX_PATH"' >tcl.txt 2>&1
grep -q "^$P/bin/tessera$" tcl.txt && grep -q "^ROOT=$P$" tcl.txt && grep -q "^PKG=$P/lib/pkgconfig" tcl.txt \
  && grep -q "^CM=$P" tcl.txt && ok "module load tessera (Tcl)" || { bad "module load tessera (Tcl)"; cat tcl.txt; }

# An external consumer, with nothing but the module loaded.
fresh "$P/share/modulefiles" 'module use "$D" && module load tessera && cd "$W" && cmake -S . -B build-app -DCMAKE_BUILD_TYPE=Release \
  && cmake --build build-app && ./build-app/app && ./build-app/app_static' >cmake.txt 2>&1
[ "$(grep -c '^app: output=model.h5 day=1440 min$' cmake.txt)" = 2 ] \
  && ok "find_package(tessera): shared and static programs build and run" || { bad "find_package(tessera)"; cat cmake.txt; }
fresh "$P/share/modulefiles" 'module use "$D" && module load tessera && cd "$W" \
  && cc app.c -o app-pc $(pkg-config --cflags --libs tessera) && ./app-pc && pkg-config --static --libs tessera' >pc.txt 2>&1
grep -q '^app: output=model.h5 day=1440 min$' pc.txt && grep -q 'libopenblas' pc.txt \
  && ok "pkg-config tessera: a program builds and runs; --static names the archive's libraries" \
  || { bad "pkg-config tessera"; cat pc.txt; }
# The apply plugin examples as an outside project builds them (examples/apply/CMakeLists.txt),
# then one of them run by the installed tessera.
cp -r "$TSR_SRC/examples/apply" "$WORK/apply-src"
$PY -c "import h5py, numpy as np; f = h5py.File('$WORK/ap.h5', 'w'); f['X'] = np.arange(12, dtype=np.float32).reshape(4, 3)"
fresh "$P/share/modulefiles" 'module use "$D" && module load tessera && cd "$W" && cmake -S apply-src -B build-apply \
  && cmake --build build-apply && tessera apply ./build-apply/libtessera_apply_colsum.so --input ap.h5 --quiet -o sums.json' \
  >apply.txt 2>&1
[ -f build-apply/libtessera_apply_norms.so ] && grep -q '"result": \[4, 18, 22, 26\]' sums.json 2>/dev/null \
  && ok "find_package(tessera): the apply plugin examples build outside the tree and run" || { bad "apply plugins outside"; cat apply.txt; }
finish
