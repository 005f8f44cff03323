#!/usr/bin/env bash
# A training campaign that outlives sessions and machines: its run folder campaigns/NAME is committed.
#
#   scripts/campaign.sh start NAME [TRAIN OPTIONS...]   first start: records the options in command.txt
#   scripts/campaign.sh start NAME                      later starts: --resume with the recorded options
#   scripts/campaign.sh stop NAME                       SIGTERM: the run saves its state mid-epoch, exits 130
#   scripts/campaign.sh status NAME                     running or not, and the last finished epoch
#
# The run folder holds one state file (train_state.pt: weights, Adam, schedule, data-order generator,
# the epoch in progress, metrics), overwritten in place, plus checkpoint.safetensors, metrics.csv,
# curves.png, command.txt and train.log. Commit the folder after `stop`; on another machine, `start NAME`
# continues bit for bit. CIFAR-10 comes from $PBKIT_CIFAR (default ../shared/cifar10/cifar-10-batches-py);
# $PBKIT_CAMPAIGNS moves the campaigns folder (default campaigns/), $PBKIT the pbkit command.
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:?usage: campaign.sh start|stop|status NAME [TRAIN OPTIONS...]}
name=${2:?usage: campaign.sh start|stop|status NAME [TRAIN OPTIONS...]}
shift 2
dir=${PBKIT_CAMPAIGNS:-campaigns}/$name
pidfile=$dir/.pid
data=${PBKIT_CIFAR:-../shared/cifar10/cifar-10-batches-py}
pbkit=${PBKIT:-.venv/bin/pbkit}

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case $action in
  start)
    running && { echo "campaign $name is already running (pid $(cat "$pidfile"))"; exit 1; }
    [ -d "$data" ] || { echo "error: no CIFAR-10 at $data (set PBKIT_CIFAR to a cifar-10-batches-py folder;" \
                             "pbkit train --download fetches it)"; exit 1; }
    mkdir -p "$dir"
    if [ -f "$dir/command.txt" ]; then
      [ $# -eq 0 ] || { echo "error: $dir/command.txt already fixes the options; start it with no options"; exit 1; }
    else
      [ $# -gt 0 ] || { echo "error: a new campaign needs its pbkit train options"; exit 1; }
      printf '%s\n' "$*" > "$dir/command.txt"
    fi
    # shellcheck disable=SC2046
    nohup "$pbkit" train $(cat "$dir/command.txt") --data "$data" --out "$dir" --resume --no-progress \
      >> "$dir/train.log" 2>&1 &
    echo $! > "$pidfile"
    echo "campaign $name started (pid $!): pbkit train $(cat "$dir/command.txt") --resume; log $dir/train.log"
    ;;
  stop)
    running || { echo "campaign $name is not running"; rm -f "$pidfile"; exit 0; }
    pid=$(cat "$pidfile")
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 1; done
    rm -f "$pidfile"
    echo "campaign $name stopped; its state is in $dir/train_state.pt (commit $dir to carry it on)"
    ;;
  status)
    if running; then echo "campaign $name: running (pid $(cat "$pidfile"))"; else echo "campaign $name: stopped"; fi
    [ -f "$dir/metrics.csv" ] && tail -n 1 "$dir/metrics.csv"
    ;;
  *) echo "usage: campaign.sh start|stop|status NAME [TRAIN OPTIONS...]"; exit 2 ;;
esac
