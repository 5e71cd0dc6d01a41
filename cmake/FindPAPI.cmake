# SPDX-License-Identifier: BSD-3-Clause
# Finds PAPI and its software-defined-events library (Debian: libpapi-dev).
#   PAPI_FOUND, PAPI_INCLUDE_DIR, PAPI_LIBRARY, PAPI_SDE_LIBRARY, PAPI_VERSION
# Hints: PAPI_ROOT (environment or CMake variable).
find_path(PAPI_INCLUDE_DIR papi.h HINTS ${PAPI_ROOT} ENV PAPI_ROOT PATH_SUFFIXES include)
find_path(PAPI_SDE_INCLUDE_DIR sde_lib.h HINTS ${PAPI_ROOT} ENV PAPI_ROOT PATH_SUFFIXES include)
find_library(PAPI_LIBRARY NAMES papi HINTS ${PAPI_ROOT} ENV PAPI_ROOT PATH_SUFFIXES lib lib64)
find_library(PAPI_SDE_LIBRARY NAMES sde HINTS ${PAPI_ROOT} ENV PAPI_ROOT PATH_SUFFIXES lib lib64)
if(PAPI_INCLUDE_DIR AND EXISTS "${PAPI_INCLUDE_DIR}/papi.h")
  file(STRINGS "${PAPI_INCLUDE_DIR}/papi.h" tsr_pv REGEX "^#define PAPI_VERSION[ \t]+PAPI_VERSION_NUMBER")
  if(tsr_pv MATCHES "PAPI_VERSION_NUMBER\\(([0-9]+),([0-9]+),([0-9]+)")
    set(PAPI_VERSION "${CMAKE_MATCH_1}.${CMAKE_MATCH_2}.${CMAKE_MATCH_3}")
  endif()
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(PAPI REQUIRED_VARS PAPI_LIBRARY PAPI_INCLUDE_DIR PAPI_SDE_LIBRARY
                                  PAPI_SDE_INCLUDE_DIR VERSION_VAR PAPI_VERSION)
mark_as_advanced(PAPI_INCLUDE_DIR PAPI_SDE_INCLUDE_DIR PAPI_LIBRARY PAPI_SDE_LIBRARY)
