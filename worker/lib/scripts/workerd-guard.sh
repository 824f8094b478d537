#!/bin/sh
# Runs workerd so that it dies with the process that started it (serve.mjs),
# even when that process is killed with SIGKILL and cannot stop it itself.
# serve.mjs points MINIFLARE_WORKERD_PATH here and WORKERD_BINARY at workerd.
exec setpriv --pdeathsig KILL -- "$WORKERD_BINARY" "$@"
