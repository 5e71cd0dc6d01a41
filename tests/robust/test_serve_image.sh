#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# /predict of an image model (input 2x2x2) against rows given as [C][H][W]
# arrays that are not: wrong nesting, a wrong count at each level, a
# non-number or a value beyond float32 deep inside, flat rows of the wrong
# length. Each is a 422 naming the row, the position and what was expected
# (422: valid JSON of the wrong shape, as for flat rows); the server keeps
# answering, and a good image row equals its flat row.
. "$(dirname "$0")/serve_lib.sh"
fixtures
"$TSR_BIN" train small.ini --set model.input=2x2x2 --set "model.layers=conv(4,1) relu flatten dense(3)" \
  --set train.output=img.h5 >train.log 2>&1 || { cat train.log; bad "training"; finish; exit 1; }
start_server "$WORK/run" "$WORK/img.h5" || { bad "serve did not start"; finish; exit 1; }
J=(-H "Content-Type: application/json")
P() { printf '{"inputs": [%s]}' "$1" >r.json; }

P '[[[0.1,0.2],[0.3,0.4]],[[0.5,0.6],[0.7,0.8]]]'
req "a [2][2][2] row" 200 '"outputs"' "${J[@]}" --data-binary @r.json "$URL/predict" && cp body.out img.out
P '[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]'
req "the same row flat" 200 '"outputs"' "${J[@]}" --data-binary @r.json "$URL/predict" && CASES=$((CASES + 1)) \
  && { cmp -s body.out img.out && ok "image and flat rows give the same answer" || bad "image and flat rows differ"; }

bad_row() { # bad_row NAME ROW PATTERN
  P "$2"
  req "$1" 422 "$3" "${J[@]}" --data-binary @r.json "$URL/predict"
}
bad_row "three channels" '[[[1,2],[3,4]],[[1,2],[3,4]],[[1,2],[3,4]]]' \
  'row 0 has 3 arrays; an image row is \[C\]\[H\]\[W\] = \[2\]\[2\]\[2\] \(or 8 numbers\)'
bad_row "a channel of three rows" '[[[1,2],[3,4],[5,6]],[[1,2],[3,4]]]' \
  'row 0, \[0\]: expected an array of 2 rows \(an image row is \[C\]\[H\]\[W\] = \[2\]\[2\]\[2\]\)'
bad_row "a channel that is a number" '[[[1,2],[3,4]],5]' 'row 0, \[1\]: expected an array of 2 rows'
bad_row "a line of three values" '[[[1,2],[3,4]],[[1,2],[3,4,5]]]' \
  'row 0, \[1\]\[1\]: expected an array of 2 numbers'
bad_row "one level short ([C][H*W])" '[[1,2,3,4],[5,6,7,8]]' 'row 0, \[0\]: expected an array of 2 rows'
bad_row "one level too deep" '[[[[1],[2]],[[3],[4]]],[[[5],[6]],[[7],[8]]]]' 'row 0, \[0\]\[0\]\[0\]: expected a number'
bad_row "a string pixel" '[[[1,2],[3,4]],[[1,2],[3,"x"]]]' 'row 0, \[1\]\[1\]\[1\]: expected a number'
bad_row "a pixel beyond float32" '[[[1,2],[3,4]],[[1,2],[3,1e39]]]' 'row 0, \[1\]\[1\]\[1\]: 1e\+39 is not a finite float32'
bad_row "a flat row of 7" '[1,2,3,4,5,6,7]' 'row 0 has 7 values; the model takes 8 inputs \(or a \[C\]\[H\]\[W\] = \[2\]\[2\]\[2\] array\)'
bad_row "flat and nested mixed" '[1,[2,3],4,5,6,7,8,9]' 'row 0, column 1: expected a number'
P '[[[1,2],[3,4]],[[1,2],[3,4]]], [[[1,2],[3,4]],[[1,2]]]'
req "the second row short" 422 'row 1, \[1\]: expected an array of 2 rows' "${J[@]}" --data-binary @r.json "$URL/predict"
bad_row "a row that is an object" '{"c": 1}' 'row 0: expected an array of 8 numbers or a \[C\]\[H\]\[W\] = \[2\]\[2\]\[2\] array'
P '[[[0.1,0.2],[0.3,0.4]],[[0.5,0.6],[0.7,0.8]]]'
req "still serving" 200 '"outputs"' "${J[@]}" --data-binary @r.json "$URL/predict"
no_server_paths
stop_server
robust_finish
