#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The INI parser and --set against hostile files: duplicate keys (both
# lines named), empty list items (the key named), binary garbage, escape
# sequences and invalid UTF-8 (shown escaped: the one error line holds no
# control byte and is valid UTF-8, so nothing reaches the terminal raw).
. "$(dirname "$0")/lib.sh"
fixtures
T=$TSR_BIN

# printable NAME: h.err (of the last hostile case) is valid UTF-8 without
# control bytes other than its newlines.
printable() {
  $PY - h.err <<'PY' && ok "$1: stderr is printable UTF-8" || bad "$1: raw bytes reach the terminal: $(od -c h.err | head -3)"
import sys
b = open(sys.argv[1], "rb").read()
t = b.decode("utf-8")               # raises on invalid UTF-8
bad = [c for c in t if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f]
sys.exit(1 if bad else 0)
PY
}

printf '[data]\npath = small.h5\n[train]\nepochs = 1\nbatch_size = 4\nepochs = 2\n' > dup.ini
hostile "duplicate key" 2 "dup.ini:6: duplicate key 'epochs' in \[train\]; it is already set on line 4" "$T" train dup.ini
printf '[data]\npath = small.h5\n[train]\nepochs = 1\n[model]\nhidden = 8\n[train]\nepochs = 3\n' > dup2.ini
hostile "duplicate key in a repeated section" 2 "dup2.ini:8: duplicate key 'epochs' in \[train\]; it is already set on line 4" \
  "$T" train dup2.ini
printf '[serve]\nport = 1\nport = 2\n' > dup3.ini
hostile "duplicate key (serve --config)" 2 "dup3.ini:3: duplicate key 'port' in \[serve\]; it is already set on line 2" \
  "$T" serve model.h5 --config dup3.ini
hostile "duplicate key (submit)" 2 "dup.ini:6: duplicate key 'epochs'" "$T" submit dup.ini --print-script
# --set after the file is an override, not a duplicate.
"$T" train small.ini --set train.epochs=1 --set train.epochs=1 --print-config >/dev/null 2>&1 \
  && ok "--set may override a key the file sets" || bad "--set override refused"

for v in "16,,16" "16," ",16" "16, ,16" ","; do
  printf '[data]\npath = small.h5\n[model]\nhidden = %s\n' "$v" > list.ini
  hostile "empty list item in hidden = '$v' (file)" 2 "list.ini:4: \[model\] hidden = .*: item [0-9] is empty" "$T" train list.ini
  hostile "empty list item in hidden = '$v' (--set)" 2 "\[model\] hidden = .*: item [0-9] is empty" \
    "$T" train small.ini --set "model.hidden=$v"
done
"$T" train small.ini --set model.hidden= --print-config >/dev/null 2>&1 \
  && ok "an empty hidden list still means no hidden layers" || bad "empty hidden refused"

# Binary garbage: as a key, a section, a value, a whole file.
printf '[train]\n\033[2J\033]0;owned\007epochs = 1\n' > esc-key.ini
hostile "escape sequences in a key" 2 "esc-key.ini:2: unknown key '\\\\x1B\[2J\\\\x1B\]0;owned\\\\x07epochs'" "$T" train esc-key.ini
printable "escape sequences in a key"
printf '[tr\033[31main]\nepochs = 1\n' > esc-sec.ini
hostile "escape sequence in a section" 2 "esc-sec.ini:2: unknown section \[tr\\\\x1B\[31main\]" "$T" train esc-sec.ini
printable "escape sequence in a section"
printf '[train]\nepochs = 1\377\376\r\n' > utf.ini
hostile "invalid UTF-8 in a value" 2 "\[train\] epochs = '1\\\\xFF\\\\xFE': expected an integer" "$T" train utf.ini
printable "invalid UTF-8 in a value"
printf '[train]\noutput = caf\303\251\302\233[2J\n[data]\npath = nothere.h5\n' > c1.ini
hostile "a C1 control (U+009B, CSI) in a path" 3 "nothere.h5" "$T" train c1.ini
printable "a C1 control in a path"
printf '[train]\nepochs = 1\000\033[2J\n' > nul.ini
hostile "NUL and escapes after a value" 2 "nul.ini" "$T" train nul.ini
printable "NUL and escapes after a value"
$PY -c 'import random, sys; r = random.Random(11); sys.stdout.buffer.write(bytes(r.randrange(256) for _ in range(4096)) + b"\n[\x1b[2J\n")' > garbage.ini
hostile "random bytes as a config" 2 "garbage.ini" "$T" train garbage.ini
printable "random bytes as a config"
hostile "escape sequences in --set" 2 "\[train\] epochs = '\\\\x1B\[2J\\\\x07'" "$T" train small.ini --set "train.epochs=$(printf '\033[2J\007')"
printable "escape sequences in --set"
hostile "a config path with a newline and escapes" 2 "no\\\\nsuch\\\\x1B\[2J.ini" "$T" train "$(printf 'no\nsuch\033[2J.ini')"
printable "a config path with a newline and escapes"
long=$(head -c 20000 /dev/zero | tr '\0' 'x')
printf '[train]\nepochs = %s\n' "$long" > long.ini
hostile "a 20000-byte value" 2 "long.ini" "$T" train long.ini
hostile "an unknown GEMM library" 2 "\[runtime\] gemm = 'mkl': expected one of auto|onednn|openblas" \
  "$T" train small.ini --set runtime.gemm=mkl
robust_finish
