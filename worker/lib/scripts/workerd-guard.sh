#!/bin/sh
# Runs workerd so that it dies with the process that started it (serve.mjs),
# even when that process is killed with SIGKILL and cannot stop it itself.
# serve.mjs points MINIFLARE_WORKERD_PATH here and WORKERD_BINARY at workerd.
# setsid: a signal to the terminal's process group (Ctrl-C) reaches serve.mjs only, which
# then closes WebSockets with 1001 before it stops the runtime.
exec setsid setpriv --pdeathsig KILL -- "$WORKERD_BINARY" "$@"
