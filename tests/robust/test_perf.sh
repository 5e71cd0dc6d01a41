#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# [monitor] papi_events and perf against hostile values (issue 17): unknown
# events and components stop the run before training (exit 2, one line
# naming them and the close names PAPI knows), on 1 and 2 ranks; events
# this machine cannot count, or not all at once, are one warning line and
# the run goes on.
. "$(dirname "$0")/lib.sh"
fixtures
T=$TSR_BIN
R=("$T" train small.ini --set train.output=never.h5)
E=monitor.papi_events
if [ "${TSR_HAVE_PAPI:-ON}" != ON ]; then
  echo "skip: built without PAPI (TESSERA_WITH_PAPI): only the refusal is checked"
  hostile "papi_events without PAPI" 2 "built without PAPI" "${R[@]}" --set $E=PAPI_TOT_INS
  robust_finish
  exit
fi

hostile "unknown preset" 2 "papi_events.*unknown PAPI event PAPI_TOT_INZ (close: PAPI_TOT_INS" "${R[@]}" --set $E=PAPI_TOT_INZ
hostile "two unknown names" 2 "unknown PAPI event PAPI_FP_OPZ (close: PAPI_FP_OPS.*; unknown PAPI event PAPI_L2_DCX" \
  "${R[@]}" --set $E=PAPI_TOT_INS,PAPI_FP_OPZ,PAPI_L2_DCX
hostile "unknown tessera counter" 2 "unknown PAPI event sde:::tessera::step (close: sde:::tessera::steps" \
  "${R[@]}" --set $E=sde:::tessera::step
hostile "component PAPI lacks" 2 "no PAPI component 'nvml' (this PAPI has perf_event" "${R[@]}" --set "$E=nvml:::Tesla:power"
hostile "listed twice" 2 "PAPI_TOT_CYC is listed twice" "${R[@]}" --set $E=PAPI_TOT_CYC,PAPI_TOT_CYC
hostile "more than 8 events" 2 "more than 8 events listed" "${R[@]}" \
  --set $E=PAPI_TOT_INS,PAPI_TOT_CYC,PAPI_FP_OPS,PAPI_L1_DCM,PAPI_L2_DCM,PAPI_L3_TCM,PAPI_BR_MSP,PAPI_TLB_DM,PAPI_SP_OPS
hostile "a name too long" 2 "the name 'AAAAAAAA.* is too long" "${R[@]}" --set "$E=$(printf 'A%.0s' $(seq 300))"
hostile "shell text as a name" 2 'unknown PAPI event PAPI_$(id)' "${R[@]}" --set "$E=PAPI_\$(id)"
hostile "control bytes in a name" 2 'unknown PAPI event PAPI_\\x1B\[2J' "${R[@]}" --set "$E=PAPI_$(printf '\033')[2J"
hostile "unknown name on 2 ranks" 2 "unknown PAPI event PAPI_TOT_INZ" "$TSR_MPIEXEC" --oversubscribe --bind-to none -n 2 \
  "$T" train small.ini --set train.output=never.h5 --set $E=PAPI_TOT_INZ
hostile "perf not a boolean" 2 "monitor.*perf" "${R[@]}" --set monitor.perf=sometimes
[ ! -e never.h5 ] && ok "no refused run wrote a model" || bad "a refused run wrote never.h5"

# Events this machine cannot count: one warning line, training goes on.
warns() { # warns NAME PATTERN ARGS...: exit 0, exactly one warning matching PATTERN, the model written
  local name=$1 pat=$2; shift 2
  rm -f w.h5
  timeout 60 "$T" train small.ini --set train.output=w.h5 "$@" >w.out 2>w.err
  local rc=$? n
  n=$(grep -c "warning: monitor:" w.err)
  if [ $rc -eq 0 ] && [ "$n" -eq 1 ] && grep -q -- "$pat" w.err && [ -s w.h5 ]; then
    ok "$name ($(grep 'warning: monitor:' w.err))"
  else
    bad "$name: exit $rc, $n warnings"
    cat w.err
  fi
}
warns "a disabled component" "rocm_smi:::x: PAPI component rocm_smi is disabled" --set $E=rocm_smi:::x
EIGHT=PAPI_TOT_INS,PAPI_TOT_CYC,PAPI_FP_OPS,PAPI_L1_DCM,PAPI_L2_DCM,PAPI_L3_TCM,PAPI_BR_MSP,PAPI_TLB_DM
if papi_avail 2>/dev/null | grep -q 'Number Hardware Counters : [1-9]' &&
  ! papi_command_line PAPI_TOT_INS 2>&1 | grep -q "Failed adding"; then
  hw=$(papi_avail | sed -n 's/^Number Hardware Counters : //p')
  warns "8 events on $hw hardware counters" "dropped PAPI events" --set $E=$EIGHT
elif papi_avail 2>/dev/null | grep -q 'Number Hardware Counters : [1-9]'; then
  # A virtual machine may list a PMU whose events the kernel then refuses.
  echo "skip: too many events for the hardware: PAPI lists counters here but cannot add PAPI_TOT_INS; checked instead that"
  warns "8 hardware events listed but refused" "PAPI lists them but cannot add them" --set $E=$EIGHT
else
  echo "skip: too many events for the hardware: this machine has no hardware counters (papi_avail); checked instead that"
  warns "8 hardware events without counters" "$(echo $EIGHT | sed 's/,/, /g'): PAPI component perf_event is disabled" \
    --set $E=$EIGHT
fi
robust_finish
