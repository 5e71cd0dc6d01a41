#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The public API is what libtessera.so exports, and nothing else: its
# dynamic symbols (nm -D --defined-only) against the functions the installed
# headers (include/tessera/*.h) declare with TSR_API, both ways. Every
# function those headers declare carries TSR_API, and the program exports
# the same API to the layer plugins it loads.
. "$(dirname "$0")/lib.sh"
: "${TSR_BUILD:?}"
LIB=$TSR_BUILD/src/libtessera.so
H=("$TSR_SRC"/include/tessera/*.h)

# Declared: the name before the first '(' of each TSR_API declaration.
grep -h '^TSR_API ' "${H[@]}" | sed -E 's/\(.*//; s/.*[ *]//' | sort -u >declared.txt
# A function declared at file scope without TSR_API (a line that starts a
# declaration of a tsr_* function: not a typedef, macro or static inline).
grep -nE '^[A-Za-z_][A-Za-z0-9_ *]*[ *]tsr_[a-z0-9_]+\(' "${H[@]}" | grep -vE ':(TSR_API |typedef |static |#)' >bare.txt
[ -s declared.txt ] && [ "$(wc -l <declared.txt)" -gt 200 ] && ok "$(wc -l <declared.txt) functions declared with TSR_API" \
  || bad "too few TSR_API declarations found ($(wc -l <declared.txt))"
[ ! -s bare.txt ] && ok "every function of the installed headers carries TSR_API" \
  || { bad "declared without TSR_API:"; cat bare.txt; }
# The private kernels stay out of the installed headers.
! grep -qE 'tsr_gpu_(xent|mse|sumsq|clip|sgd|adamw)' "${H[@]}" && ok "GPU loss and optimizer kernels are not installed" \
  || bad "GPU loss/optimizer kernels in include/tessera"

# Exported: defined dynamic symbols of any kind, less the linker's own.
nm -D --defined-only "$LIB" | awk '{print $NF}' | grep -vxE '_init|_fini|_edata|_end|__bss_start' | sort -u >exported.txt
comm -23 exported.txt declared.txt >extra.txt
comm -13 exported.txt declared.txt >missing.txt
[ ! -s extra.txt ] && ok "libtessera.so exports nothing the headers do not declare ($(wc -l <exported.txt) symbols)" \
  || { bad "exported but not declared with TSR_API ($(wc -l <extra.txt)):"; head -40 extra.txt; }
[ ! -s missing.txt ] && ok "libtessera.so exports every TSR_API function" \
  || { bad "declared with TSR_API but not exported ($(wc -l <missing.txt)):"; head -40 missing.txt; }
# Internal prefixes by name, in case a header ever declared one.
! grep -qE '^(serve_|tsr_h5w_|tsr_h5_|tsr_shm_|sched_|farm_)' exported.txt && ok "no internal prefix exported" \
  || { bad "internal symbols exported:"; grep -E '^(serve_|tsr_h5w_|tsr_h5_|tsr_shm_|sched_|farm_)' exported.txt; }

# The program links the whole static archive and exports the same API to
# the layer plugins it dlopens (they call tsr_error_set and the like),
# none of the internals.
nm -D --defined-only "$TSR_BIN" | awk '{print $NF}' | grep -E '^(tsr_|serve_)' | sort -u >prog.txt
cmp -s prog.txt declared.txt && ok "tessera exports exactly the public API to plugins" \
  || { bad "tessera's exports differ from the TSR_API functions:"; diff prog.txt declared.txt | head -20; }
finish
