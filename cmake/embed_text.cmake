# SPDX-License-Identifier: BSD-3-Clause
# cmake -DIN=FILE -DOUT=HEADER -DNAME=SYMBOL [-DFROM=TEXT] -P embed_text.cmake
# Writes HEADER with `static const char SYMBOL[]`: FILE's text (from the
# first occurrence of TEXT to the end, when FROM is given), NUL-terminated.
# Bytes, not a string literal, so no quote, backslash or trigraph in the
# text needs escaping. HEADER is rewritten only when its content changes.
file(READ "${IN}" text)
if(DEFINED FROM)
  string(FIND "${text}" "${FROM}" at)
  if(at LESS 0)
    message(FATAL_ERROR "embed_text: '${FROM}' not found in ${IN}")
  endif()
  string(SUBSTRING "${text}" ${at} -1 text)
endif()
string(HEX "${text}" hex)
string(REGEX REPLACE "(..)" "0x\\1," bytes "${hex}")
string(REPLACE "0x0a," "0x0a,\n    " bytes "${bytes}")  # a row per line of text
file(WRITE "${OUT}.tmp" "/* Generated from ${IN} by cmake/embed_text.cmake: do not edit. */\n"
     "static const char ${NAME}[] = {\n    ${bytes}0x00};\n")
configure_file("${OUT}.tmp" "${OUT}" COPYONLY)
file(REMOVE "${OUT}.tmp")
