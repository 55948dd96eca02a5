#!/bin/sh
# The hello agent: reads a name on stdin, prints a greeting, and writes its results into the
# workspace (/workspace, its working directory), which Warren copies out when the run ends.
set -eu
name=$(cat)
[ -n "$name" ] || name=world
mkdir -p out
printf '%s, %s!\n' "$GREETING" "$name" | tee out/greeting.txt
{
  echo "agent: $WARREN_AGENT"
  echo "run: $WARREN_RUN_ID"
  echo "user: $(id -u)"
  echo "files: $(ls | tr '\n' ' ')"
} > out/report.txt
echo "wrote out/greeting.txt and out/report.txt" >&2
