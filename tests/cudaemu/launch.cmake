# SPDX-License-Identifier: BSD-3-Clause
# Rewrites a .cu file's kernel launches for the CUDA emulator:
#   name<<<grid, block, shmem, stream>>>(args)
# becomes
#   tsr_emu_launch("name", grid, block, name, args)
# cmake -DIN=kernels.cu -DOUT=kernels.cpp -P launch.cmake
file(READ "${IN}" src)
set(id "[A-Za-z_][A-Za-z0-9_]*(<[A-Za-z0-9_ ]*>)?")
string(REGEX REPLACE "(${id})<<<([^,<>]+),([^,<>]+),([^,<>]+),([^<]*)>>>\\("
       "tsr_emu_launch(\"\\1\", \\3, \\4, \\1, " out "${src}")
string(FIND "${out}" "<<<" left)
if(NOT left EQUAL -1)
  message(FATAL_ERROR "${IN}: a kernel launch launch.cmake cannot rewrite (near offset ${left})")
endif()
file(WRITE "${OUT}" "/* Generated from ${IN} by tests/cudaemu/launch.cmake: do not edit. */\n#line 1 \"${IN}\"\n${out}")
