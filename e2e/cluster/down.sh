#!/usr/bin/env bash
# Stop the e2e cluster started by up.sh and delete its state dir. Idempotent: with no
# cluster it does nothing. Only processes recorded in the state dir's pid files are
# stopped (never by name), and each pid's command line is checked before the signal.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

log() { echo "[down.sh] $*" >&2; }

# Whether this down.sh took the lock itself (and so may remove the lock file at the end), or
# runs inside an up.sh that holds it.
own_lock=1
[[ "${TRIMTAB_CLUSTER_LOCK_HELD:-0}" == 1 ]] && own_lock=0
take_lock

if [[ ! -e "$STATE" ]]; then
  log "no cluster state at $STATE; nothing to do"
  exit 0
fi

failed=0
# Remember every pid we are about to stop, for the zombie wait at the end.
ALL_PIDS=$(read_pids "$PROM_PID_FILE" "$KWOK_CLUSTER_DIR"/pids/*.pid)

# 1. Prometheus (ours, by pid file).
if [[ -f "$PROM_PID_FILE" ]]; then
  stop_pid "$(cat "$PROM_PID_FILE")" "$PROM_DIR" || failed=1
fi

# 2. Control plane and kwok: kwokctl stops them from its own pid files.
if [[ -d "$KWOK_CLUSTER_DIR" ]]; then
  if [[ -x "$TOOLS_BIN/kwokctl" ]]; then
    KWOK_WORKDIR="$KWOK_DIR" "$TOOLS_BIN/kwokctl" delete cluster --name "$CLUSTER_NAME" \
      --kubeconfig "$KUBECONFIG_PATH" >"$STATE/kwokctl-delete.log" 2>&1 ||
      { log "kwokctl delete cluster failed (falling back to pid files):"; cat "$STATE/kwokctl-delete.log" >&2; }
  fi
  # Whatever kwokctl left behind (or all of it, if kwokctl is missing): pid files are
  # <component>.pid, and the component's command line names the cluster dir.
  for f in "$KWOK_CLUSTER_DIR"/pids/*.pid; do
    [[ -f "$f" ]] || continue
    stop_pid "$(cat "$f")" "$KWOK_CLUSTER_DIR" || failed=1
  done
fi

[[ $failed -eq 0 ]] || { log "ERROR: some processes could not be stopped; keeping $STATE for inspection"; exit 1; }

# The daemons were re-parented to pid 1 (kwokctl and up.sh exit after starting them), so
# they stay <defunct> until init reaps them; give it a few seconds so that a `pgrep`
# right after down.sh comes back clean. Zombies hold no ports or files: not an error.
for _ in $(seq 50); do
  zombies=0
  for pid in $ALL_PIDS; do
    [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" == Z* ]] && zombies=1
  done
  [[ $zombies -eq 0 ]] && break
  sleep 0.2
done

rm -rf "$STATE"
# Leave nothing behind: the lock file goes too, unless an up.sh we run inside still needs it.
[[ $own_lock -eq 1 ]] && rm -f "$LOCK_FILE"
log "cluster stopped, $STATE removed"
