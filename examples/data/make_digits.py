#!/usr/bin/python3
# SPDX-License-Identifier: BSD-3-Clause
"""Regenerate examples/data/digits.h5 from scikit-learn's bundled copy of the
UCI Optical Recognition of Handwritten Digits test set (1797 images of 8x8
pixels with values 0..16, labels 0..9), through tessera's own CSV converter.

    /usr/bin/python3 examples/data/make_digits.py [TESSERA_BINARY] [-o OUT]

TESSERA_BINARY defaults to build/tessera under the repository root. Debian's
python3-sklearn provides the CSV for the system python (/usr/bin/python3).
The result: /X float32 [1438, 64] scaled to 0..1 (x/16), /y int32 [1438],
/X_test, /y_test with 359 rows (20 %, seeded shuffle with seed 1).
"""
import argparse
import csv
import gzip
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def digits_csv():
    try:
        import sklearn.datasets
    except ImportError:
        sys.exit("make_digits.py: scikit-learn is not importable; run it with /usr/bin/python3 "
                 "(Debian package python3-sklearn)")
    path = os.path.join(os.path.dirname(sklearn.datasets.__file__), "data", "digits.csv.gz")
    if not os.path.exists(path):
        sys.exit("make_digits.py: %s not found in this scikit-learn" % path)
    return path


def check_source(path):
    """The bundled file should be 1797 rows of 64 features (0..16) + label (0..9)."""
    with gzip.open(path, "rt") as f:
        rows = [r for r in csv.reader(f) if r]
    if len(rows) != 1797 or any(len(r) != 65 for r in rows):
        sys.exit("make_digits.py: %s is not 1797 rows x 65 columns" % path)
    feats = {float(v) for r in rows for v in r[:64]}
    labels = {int(r[64]) for r in rows}
    if min(feats) < 0 or max(feats) > 16 or labels != set(range(10)):
        sys.exit("make_digits.py: unexpected values in %s" % path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tessera", nargs="?", default=os.path.join(ROOT, "build", "tessera"),
                    help="the tessera program (default: build/tessera)")
    ap.add_argument("-o", "--output", default=os.path.join(HERE, "digits.h5"))
    args = ap.parse_args()
    if not os.access(args.tessera, os.X_OK):
        sys.exit("make_digits.py: %s is not an executable; build tessera first "
                 "(cmake -S . -B build && make -C build)" % args.tessera)
    src = digits_csv()
    check_source(src)
    cmd = [args.tessera, "data", "convert", "--csv", src, "--label-col", "-1",
           "--test-fraction", "0.2", "--seed", "1", "--scale", "0.0625", "-o", args.output]
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    subprocess.run([args.tessera, "data", "info", args.output], check=True)


if __name__ == "__main__":
    main()
