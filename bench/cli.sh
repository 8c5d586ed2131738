#!/bin/sh
# The benchmark's "bao CLI" contender: the entrypoint script many images use
# today. Log in with the bao CLI, fetch each secret with `bao kv get -field`,
# exec the workload. BAO_ADDR and BAO_CACERT come from the environment.
# Usage: cli.sh BAO_BIN JWT_FILE ROLE NAME=MOUNT/PATH#KEY... -- COMMAND [ARG...]
set -eu
bao=$1 jwt_file=$2 role=$3
shift 3
BAO_TOKEN=$("$bao" write -field=token "auth/kubernetes/login" role="$role" jwt=@"$jwt_file")
export BAO_TOKEN
while [ "$1" != "--" ]; do
    name=${1%%=*} ref=${1#*=}
    value=$("$bao" kv get -field="${ref#*#}" "${ref%%#*}")
    export "$name=$value"
    shift
done
shift
unset BAO_TOKEN
exec "$@"
