#!/bin/sh
# Entrypoint of the pulsewatch image: make sure the NAB corpus is in $PULSEWATCH_DATA_DIR (a
# volume), then exec pulsewatch with the container's arguments (so it gets SIGTERM directly
# and DELETEs its Pushgateway group on exit).
#
#   <no args>                 -> pulsewatch --headless --listen 0.0.0.0:9185 (the image's CMD)
#   --once | --headless ...   -> fetch the corpus when it is missing, then pulsewatch "$@"
#   <subcommand> ...          -> pulsewatch <subcommand> ... (no fetch; e.g. fetch-nab, print-config)
#
# PULSEWATCH_SKIP_FETCH=1 never fetches (e.g. when the corpus is bind-mounted read-only).
set -eu

DATA_DIR="${PULSEWATCH_DATA_DIR:-/data/nab}"

# The source the run uses: --source X / --source=X, else PULSEWATCH_SOURCE_KIND, else nab.
source_kind="${PULSEWATCH_SOURCE_KIND:-nab}"
prev=""
for a in "$@"; do
    case "$prev" in --source) source_kind="$a" ;; esac
    case "$a" in --source=*) source_kind="${a#--source=}" ;; esac
    prev="$a"
done

needs_corpus=0
case "${1:-}" in
    -*|"") if [ "$source_kind" = nab ]; then needs_corpus=1; fi ;;
esac

# Complete when the data folder and the label file the reader needs are both there.
if [ "$needs_corpus" = 1 ] && [ "${PULSEWATCH_SKIP_FETCH:-0}" != 1 ] \
    && { [ ! -d "$DATA_DIR/data" ] || [ ! -f "$DATA_DIR/labels/combined_windows.json" ]; }; then
    echo "entrypoint: no NAB corpus in $DATA_DIR; running pulsewatch fetch-nab" >&2
    # fetch-nab verifies every file's SHA-256, writes atomically and skips good files, so an
    # interrupted fetch is simply resumed by the next start.
    pulsewatch fetch-nab --dest "$DATA_DIR"
fi

exec pulsewatch "$@"
