#!/bin/sh
# Fast path for juju-log (charms.reactive logs a dozen lines per hook; a Python start-up per
# line doubled hook times). Handles the forms charmhelpers uses: [-l|--log-level LEVEL]
# [--debug] MESSAGE...; anything else goes to the Python tool (jujutool.py) for its errors.
# @LOGDIR@ and @TOOL@ are filled in when the model installs its bin dir.
simple=yes
expect=
for a in "$@"; do
  if [ -n "$expect" ]; then expect=; continue; fi
  case $a in
    -l|--log-level) expect=yes;;
    -l=*|--log-level=*|--debug) ;;
    -?*) simple=no;;
  esac
done
if [ "$simple" != yes ] || [ -n "$expect" ] || [ -z "$JUJU_CONTEXT_ID" ]; then
  exec "@TOOL@" juju-log "$@"
fi
level=INFO
while [ $# -gt 0 ]; do
  case $1 in
    -l|--log-level) level=$2; shift 2;;
    -l=*|--log-level=*) level=${1#*=}; shift;;
    --debug) level=DEBUG; shift;;
    *) break;;
  esac
done
if [ $# -eq 0 ]; then exec "@TOOL@" juju-log; fi
case $level in
  TRACE|trace) level=TRACE;; DEBUG|debug) level=DEBUG;; WARNING|warning) level=WARNING;;
  ERROR|error) level=ERROR;; CRITICAL|critical) level=CRITICAL;; *) level=INFO;;
esac
prefix=
if [ -n "$JUJU_RELATION_ID" ]; then prefix="$JUJU_RELATION_ID: "; fi
unit=$JUJU_UNIT_NAME
printf 'juju-log %s %s%s\n' "$level" "$prefix" "$*" >> "@LOGDIR@/${unit%/*}-${unit##*/}.log"
