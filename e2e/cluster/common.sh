# shellcheck shell=bash disable=SC2034  # variables are used by the scripts that source this
# Shared settings for the e2e cluster scripts (sourced, not executed).

CLUSTER_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# All cluster state (kubeconfig, PKI, etcd data, pids, logs, Prometheus TSDB) lives
# here, outside the repo. XDG_RUNTIME_DIR is usually a tmpfs: etcd is faster there.
STATE=${TRIMTAB_CLUSTER_DIR:-${XDG_RUNTIME_DIR:-/tmp}/trimtab-cluster}
CLUSTER_NAME=${TRIMTAB_CLUSTER_NAME:-trimtab}
# Serialises up.sh/down.sh; kept beside (not in) STATE because down.sh deletes STATE.
LOCK_FILE="$STATE.lock"

KWOK_DIR="$STATE/kwok"                          # KWOK_WORKDIR: nothing goes to ~/.kwok
KWOK_CLUSTER_DIR="$KWOK_DIR/clusters/$CLUSTER_NAME"
KUBECONFIG_PATH="$STATE/kubeconfig"
PROM_DIR="$STATE/prometheus"
PROM_PID_FILE="$PROM_DIR/prometheus.pid"
ENV_FILE="$STATE/env"

TOOLS_BIN=$("$CLUSTER_HERE/tools.sh" --print-path)

# Take the cluster lock unless our caller (up.sh calling down.sh) already holds it.
take_lock() {
  [[ "${TRIMTAB_CLUSTER_LOCK_HELD:-0}" == 1 ]] && return 0
  mkdir -p "$(dirname "$LOCK_FILE")"
  exec 9>"$LOCK_FILE"
  if ! flock -n 9 && ! lock_held_only_by_our_daemons; then
    echo "[$(basename "$0")] waiting for another up.sh/down.sh ($LOCK_FILE)" >&2
    flock -w 300 9 || {
      echo "[$(basename "$0")] ERROR: $LOCK_FILE still locked after 300 s; holders: $(fuser "$LOCK_FILE" 2>&1)" >&2
      exit 1
    }
  fi
  export TRIMTAB_CLUSTER_LOCK_HELD=1
}

# Print the pid in each existing file, one a line (kwokctl's pid files lack a final
# newline, so a plain `cat` would glue them together).
read_pids() {
  local f
  for f in "$@"; do [[ -f "$f" ]] && echo "$(<"$f")"; done
  return 0
}

# Clusters started by an older up.sh let their daemons inherit the lock fd, so the lock
# stays taken for the cluster's whole life. If every holder is one of this cluster's own
# recorded daemons, no other up.sh/down.sh is running: go ahead.
lock_held_only_by_our_daemons() {
  local holders ours p
  holders=$(exec 9>&-; fuser "$LOCK_FILE" 2>/dev/null | tr -s ' ' '\n' | grep -vx "$$" | grep . || true)
  [[ -n "$holders" ]] || return 1
  ours=$(read_pids "$KWOK_CLUSTER_DIR"/pids/*.pid "$PROM_PID_FILE")
  for p in $holders; do grep -qx "$p" <<<"$ours" || return 1; done
  echo "[$(basename "$0")] note: $LOCK_FILE is held only by this cluster's own daemons (started by an older up.sh); proceeding" >&2
}

# Is PID alive and does its command line mention WORD? Guards against killing a
# recycled pid that now belongs to something else.
pid_is() {
  local pid=$1 word=$2
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$word"
}

# Stop PID (if it is still ours): TERM, wait up to 15 s, then KILL.
stop_pid() {
  local pid=$1 word=$2
  pid_is "$pid" "$word" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 150); do pid_is "$pid" "$word" || return 0; sleep 0.1; done
  echo "[$(basename "$0")] pid $pid ($word) ignored SIGTERM; sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 50); do pid_is "$pid" "$word" || return 0; sleep 0.1; done
  echo "[$(basename "$0")] ERROR: pid $pid ($word) survived SIGKILL" >&2
  return 1
}

# Is something listening on 127.0.0.1:PORT (or any address:PORT)?
port_busy() {
  ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}
