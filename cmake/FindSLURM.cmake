# SPDX-License-Identifier: BSD-3-Clause
# Finds libslurm and slurm/slurm.h (Debian: libslurm-dev).
#   SLURM_FOUND, SLURM_INCLUDE_DIR, SLURM_LIBRARY, SLURM_VERSION
# Hints: SLURM_ROOT (environment or CMake variable).
find_path(SLURM_INCLUDE_DIR slurm/slurm.h HINTS ${SLURM_ROOT} ENV SLURM_ROOT PATH_SUFFIXES include)
find_library(SLURM_LIBRARY NAMES slurm HINTS ${SLURM_ROOT} ENV SLURM_ROOT PATH_SUFFIXES lib lib64)
if(SLURM_INCLUDE_DIR AND EXISTS "${SLURM_INCLUDE_DIR}/slurm/slurm_version.h")
  file(STRINGS "${SLURM_INCLUDE_DIR}/slurm/slurm_version.h" tsr_sv REGEX "^#define SLURM_VERSION_NUMBER")
  if(tsr_sv MATCHES "0x([0-9a-fA-F][0-9a-fA-F])([0-9a-fA-F][0-9a-fA-F])([0-9a-fA-F][0-9a-fA-F])")
    math(EXPR tsr_a "0x${CMAKE_MATCH_1}")
    math(EXPR tsr_b "0x${CMAKE_MATCH_2}")
    math(EXPR tsr_c "0x${CMAKE_MATCH_3}")
    set(SLURM_VERSION "${tsr_a}.${tsr_b}.${tsr_c}")
  endif()
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(SLURM REQUIRED_VARS SLURM_LIBRARY SLURM_INCLUDE_DIR VERSION_VAR SLURM_VERSION)
mark_as_advanced(SLURM_INCLUDE_DIR SLURM_LIBRARY)
