#!/usr/bin/env bash
# A single-node SLURM on this machine, for testing the workflow's SLURM profile for real.
#
#   tests/slurm/start_slurm.sh [start]   install if missing, configure, start munged, slurmctld, slurmd
#   tests/slurm/start_slurm.sh stop      stop the daemons this script started (by their pid files)
#                                        and remove the configuration it wrote
#   tests/slurm/start_slurm.sh status    exit 0 when the node accepts jobs
#
# Needs root on a Debian-like machine (apt-get). Idempotent: a second `start` finds the daemons
# up and returns. The node is exactly what `slurmd -C` reports, plus fake GPUs (gres.conf
# `Name=gpu File=/dev/null,...`; SLURM_FAKE_GPUS, default 2, so two GPU jobs can share the two
# cores of the test machine) that are scheduled and recorded like real ones. There is no
# accounting database (no sacct): finished jobs stay visible to squeue / scontrol for MinJobAge
# (SLURM_MIN_JOB_AGE, default 600 s). Partitions: `cpu` (default) and `gpu`, both on this node,
# like profiles/slurm/partitions.yaml. It writes /etc/slurm/slurm.conf and gres.conf, and
# refuses to replace a slurm.conf it did not write.
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
MARK="# written by tests/slurm/start_slurm.sh"
LOG_DIR=/var/log/slurm
MIN_JOB_AGE=${SLURM_MIN_JOB_AGE:-600}
FAKE_GPUS=${SLURM_FAKE_GPUS:-2}   # GPUs the node claims; jobs get GPU ids but no device

running() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_ready() {
    local state
    state=$(sinfo -h -N -o %t 2>/dev/null | head -n1) || return 1
    [[ $state == idle* || $state == mix* || $state == alloc* ]]
}

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null && return
    [[ $(id -u) == 0 ]] || { echo "start_slurm.sh: installing SLURM needs root" >&2; exit 2; }
    command -v apt-get >/dev/null || { echo "start_slurm.sh: no apt-get (not Debian-like)" >&2; exit 2; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null; }
}

configure() {
    if [[ -f $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
        echo "start_slurm.sh: $CONF exists and was not written by this script; leaving it alone" >&2
        exit 3
    fi
    local host node
    host=$(hostname -s)
    # NodeName=<host> CPUs=.. Boards=.. SocketsPerBoard=.. CoresPerSocket=.. ThreadsPerCore=.. RealMemory=..
    node=$(slurmd -C | head -n1)
    mkdir -p "$CONF_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
    cat > "$CONF.tmp" <<CONF
$MARK
ClusterName=qup-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
DefMemPerCPU=1000
MinJobAge=$MIN_JOB_AGE
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
$node NodeAddr=127.0.0.1 Gres=gpu:$FAKE_GPUS State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP
CONF
    mv "$CONF.tmp" "$CONF"
    # A fake GPU is a harmless device file (/dev/null, then /dev/zero, ...): SLURM counts one GPU
    # per file, and jobs get GPU ids (CUDA_VISIBLE_DEVICES) but no device.
    local files=(/dev/null /dev/zero /dev/full /dev/random /dev/urandom)
    (( FAKE_GPUS >= 1 && FAKE_GPUS <= ${#files[@]} )) || { echo "SLURM_FAKE_GPUS: 1..${#files[@]}" >&2; exit 2; }
    printf '%s\nName=gpu File=%s\n' "$MARK" "$(IFS=,; echo "${files[*]:0:FAKE_GPUS}")" > "$CONF_DIR/gres.conf"
}

start() {
    if running /run/slurmctld.pid && running /run/slurmd.pid && node_ready; then
        echo "SLURM already up: $(sinfo -h -o '%P %N %t %G' | tr '\n' ' ')"
        return
    fi
    install_packages
    configure
    # Daemons up but the node not ready were started with another configuration: restart them.
    stop_daemon /run/slurmd.pid
    stop_daemon /run/slurmctld.pid
    if ! running /run/munge/munged.pid; then
        [[ -f /etc/munge/munge.key ]] || runuser -u munge -- /usr/sbin/mungekey --create
        install -d -o munge -g munge -m 0755 /run/munge
        runuser -u munge -- /usr/sbin/munged
    fi
    slurmctld -c
    slurmd
    for _ in $(seq 60); do
        node_ready && { echo "SLURM up: $(sinfo -h -o '%P %N %t %G' | tr '\n' ' ')"; return; }
        # A node left DOWN/DRAINED by an earlier run (e.g. a restart) is returned to service.
        scontrol update NodeName="$(hostname -s)" State=RESUME >/dev/null 2>&1 || true
        sleep 1
    done
    echo "start_slurm.sh: the node did not become idle; see $LOG_DIR/slurmctld.log and slurmd.log" >&2
    sinfo -N -l >&2 || true
    exit 1
}

stop_daemon() {
    local pidfile=$1 pid
    running "$pidfile" || return 0
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
}

stop() {
    stop_daemon /run/slurmd.pid
    stop_daemon /run/slurmctld.pid
    stop_daemon /run/munge/munged.pid
    # Without its controller, a client that still finds slurm.conf waits ~10 s per call, and
    # the SLURM executor plugin calls `scontrol show config` each time snakemake starts.
    if [[ -f $CONF ]] && grep -qF "$MARK" "$CONF"; then
        rm -f "$CONF" "$CONF_DIR/gres.conf"
    fi
    echo "SLURM stopped"
}

case ${1:-start} in
    start) start ;;
    stop) stop ;;
    status) running /run/slurmctld.pid && running /run/slurmd.pid && node_ready ;;
    *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
