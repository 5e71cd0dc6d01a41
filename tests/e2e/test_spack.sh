#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# The Spack recipe, checked without Spack (which cannot be installed here):
# spack/packages/tessera/package.py is valid Python defining a CMakePackage
# and CudaPackage; every -D option its cmake_args passes exists in the
# project's CMake files; every variant (and CudaPackage's cuda) maps to one
# option; the versions it names match the project's; its dependencies cover
# what CMakeLists.txt finds; and it has a stand-alone test on 2 ranks.
. "$(dirname "$0")/lib.sh"
$PY - "$TSR_SRC" <<'PY'
import ast, glob, os, re, sys

src = sys.argv[1]
fails = []
def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        fails.append(what)

path = os.path.join(src, "spack/packages/tessera/package.py")
text = open(path).read()
try:
    tree = ast.parse(text, path)
except SyntaxError as e:
    print("FAIL: package.py does not parse:", e)
    print("0 passed, 1 failed")
    sys.exit(1)
check(True, "package.py parses")
cls = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Tessera"]
check(len(cls) == 1, "defines class Tessera")
cls = cls[0]
bases = {b.id for b in cls.bases if isinstance(b, ast.Name)}
check({"CMakePackage", "CudaPackage"} <= bases, "Tessera(CMakePackage, CudaPackage)")

def calls(node, name):
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            fname = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if fname == name:
                yield n

def lit(n):
    return n.value if isinstance(n, ast.Constant) and isinstance(n.value, str) else None

# CMake options the project knows: set(X ... CACHE), option(X ...), or a
# variable a find module reads (SLURM_ROOT); CMake's own CMAKE_* and
# BUILD_TESTING (include(CTest)) are always there.
cmake_text = ""
for f in [os.path.join(src, "CMakeLists.txt")] + glob.glob(os.path.join(src, "*/CMakeLists.txt")) \
        + glob.glob(os.path.join(src, "cmake/*.cmake")):
    cmake_text += open(f).read() + "\n"
def known(opt):
    if opt.startswith("CMAKE_") or opt == "BUILD_TESTING":
        return True
    if re.search(r"(set|option)\(\s*%s\b[^)]*(CACHE|\")" % re.escape(opt), cmake_text):
        return True
    # options set in a foreach over names: TESSERA_WITH_${opt}
    m = re.match(r"(TESSERA_WITH_)(\w+)$", opt)
    if m and re.search(r"set\(TESSERA_WITH_\$\{opt\}", cmake_text) and \
            re.search(r"foreach\(opt [A-Z ]*\b%s\b" % m.group(2), cmake_text):
        return True
    return re.search(r"\$\{%s\}" % re.escape(opt), cmake_text) is not None

cm = [f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "cmake_args"]
check(len(cm) == 1, "has cmake_args")
opts, mapped = [], {}
for c in calls(cm[0], "define_from_variant"):
    o, v = lit(c.args[0]), lit(c.args[1])
    opts.append(o)
    mapped[v] = o
for c in calls(cm[0], "define"):
    opts.append(lit(c.args[0]))
for n in ast.walk(cm[0]):
    s = lit(n)
    if s and s.startswith("-D"):
        opts.append(re.match(r"-D(\w+)", s).group(1))
check(len(opts) >= 5 and None not in opts, "cmake_args passes %d options: %s" % (len(opts), ", ".join(map(str, opts))))
for o in opts:
    check(o is not None and known(o), "-D%s exists in the project's CMake files" % o)

variants = [lit(c.args[0]) for c in calls(cls, "variant")]
for v in variants + ["cuda"]:
    check(v in mapped, "variant %s maps to %s" % (v, mapped.get(v, "nothing")))
check({"cuda", "nccl", "papi", "slurm"} <= set(mapped), "variants cuda, nccl, papi, slurm all mapped")
check(len(set(mapped.values())) == len(mapped), "one option per variant")

proj = re.search(r"project\(tessera VERSION ([0-9.]+)", cmake_text).group(1)
def vkey(v):
    return tuple(int(x) for x in v.split("."))
versions = [lit(c.args[0]) for c in calls(cls, "version")]
numeric = [v for v in versions if v and re.fullmatch(r"[0-9]+(\.[0-9]+)*", v)]
check(proj in numeric, "version %s (CMakeLists.txt) is in the recipe (%s)" % (proj, ", ".join(versions)))
check(all(vkey(v) <= vkey(proj) for v in numeric), "no version newer than the project's")
for c in calls(cls, "conflicts"):
    w = [k.value for k in c.keywords if k.arg == "when"]
    for when in w:
        for v in re.findall(r"@:?([0-9][0-9.]*)", lit(when) or ""):
            check(vkey(v) <= vkey(proj), "conflicts(... when=%s) names a known version" % lit(when))

deps = " ".join(filter(None, (lit(c.args[0]) for c in calls(cls, "depends_on"))))
for d in ["mpi", "hdf5+mpi", "hwloc", "openblas", "inih", "libmicrohttpd", "jansson", "protobuf-c", "zlib",
          "cmake", "pkgconfig", "slurm", "papi", "nccl"]:
    check(re.search(r"(^| )%s" % re.escape(d), deps) is not None, "depends_on %s" % d)

tests = [f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name.startswith("test")]
body = ast.get_source_segment(text, tests[0]) if tests else ""
check(bool(tests) and '"-n", "2"' in body and '"train"' in body,
      "a stand-alone test method (%s) trains on 2 ranks" % (tests[0].name if tests else "none"))
sys.exit(1 if fails else 0)
PY
rc=$?
[ $rc -eq 0 ] && ok "spack recipe consistent with the project" || bad "spack recipe"
finish
