#!/usr/bin/env bash
# A real single-node Slurm on this machine, for the sweep tests (tests/sweep_slurm.rs) and for
# trying `gapscope sweep --backend slurm` without a cluster. Debian's packages (Slurm 22.05,
# munge); no systemd, so the daemons are started here. Facts behind each setting:
# ../shared/scaleout.md and docs/sweeps.md.
#
#   bash scripts/slurm-local.sh start    install if needed, start munged, slurmctld, slurmd
#   bash scripts/slurm-local.sh stop     stop the three daemons (safe when nothing runs)
#   bash scripts/slurm-local.sh status   sinfo's node state
#   bash scripts/slurm-local.sh env      the line to source: export SLURM_CONF=...
#
# Everything lives under $GAPSCOPE_SLURM_DIR (default /tmp/gapscope-slurm); ports of its own
# (GAPSCOPE_SLURM_PORT, default 16817 and the next one) so it never meets another Slurm.
set -uo pipefail
ROOT=${GAPSCOPE_SLURM_DIR:-/tmp/gapscope-slurm}
PORT=${GAPSCOPE_SLURM_PORT:-16817}
CONF=$ROOT/slurm.conf
MUNGE=$ROOT/munge

say() { echo "slurm-local: $*" >&2; }

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then say "slurmctld/slurmd/munge are missing and installing them needs root"; return 1; fi
    say "installing slurmctld slurmd slurm-client munge from Debian"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null; }
}

write_conf() {
    local host cpus mem
    host=$(hostname -s)
    cpus=$(nproc)
    # Leave the OS some memory; slurmd refuses a node that claims more than it has.
    mem=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) * 9 / 10 ))
    mkdir -p "$ROOT"/{state,spool,log}
    cat > "$CONF" <<EOF
ClusterName=gapscope
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
AuthType=auth/munge
AuthInfo=socket=$MUNGE/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$ROOT/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MailProg=/bin/true
ReturnToService=2
StateSaveLocation=$ROOT/state
SlurmdSpoolDir=$ROOT/spool
SlurmctldPidFile=$ROOT/slurmctld.pid
SlurmdPidFile=$ROOT/slurmd.pid
SlurmctldLogFile=$ROOT/log/slurmctld.log
SlurmdLogFile=$ROOT/log/slurmd.log
MaxArraySize=${GAPSCOPE_SLURM_MAX_ARRAY:-1001}
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    mkdir -p "$MUNGE"
    chmod 755 "$ROOT" "$MUNGE"   # a non-root sbatch must reach the socket
    [ -f "$MUNGE/munge.key" ] || mungekey -c -k "$MUNGE/munge.key" >/dev/null 2>&1 || return 1
    chmod 600 "$MUNGE/munge.key"
    munged --force --key-file="$MUNGE/munge.key" --socket="$MUNGE/munge.socket" \
        --pid-file="$MUNGE/munged.pid" --log-file="$MUNGE/munged.log" --seed-file="$MUNGE/munged.seed"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
    install || return 1
    if alive "$ROOT/slurmctld.pid" && alive "$ROOT/slurmd.pid"; then say "already running"; return 0; fi
    stop >/dev/null 2>&1
    write_conf
    export SLURM_CONF=$CONF
    start_munge || { say "munged did not start (see $MUNGE/munged.log)"; return 1; }
    slurmctld -f "$CONF" || { say "slurmctld did not start (see $ROOT/log/slurmctld.log)"; return 1; }
    slurmd -f "$CONF" || { say "slurmd did not start (see $ROOT/log/slurmd.log)"; return 1; }
    for _ in $(seq 1 60); do
        if [ "$(sinfo -h -o %T 2>/dev/null)" = idle ]; then say "up: export SLURM_CONF=$CONF"; return 0; fi
        sleep 0.5
    done
    say "the node did not become idle: $(sinfo -h -o '%T %E' 2>&1)"
    return 1
}

stop() {
    for p in "$ROOT/slurmd.pid" "$ROOT/slurmctld.pid" "$MUNGE/munged.pid"; do
        if alive "$p"; then kill "$(cat "$p")" 2>/dev/null; fi
    done
    # Give them a moment, then make sure (a daemon stuck on a dead job must not outlive CI).
    for _ in $(seq 1 20); do
        alive "$ROOT/slurmd.pid" || alive "$ROOT/slurmctld.pid" || alive "$MUNGE/munged.pid" || break
        sleep 0.25
    done
    for p in "$ROOT/slurmd.pid" "$ROOT/slurmctld.pid" "$MUNGE/munged.pid"; do
        if alive "$p"; then kill -9 "$(cat "$p")" 2>/dev/null; fi
        rm -f "$p"
    done
    # slurmd's job processes (slurmstepd) would otherwise keep running sweep tasks.
    pkill -f "slurmstepd.*$ROOT" 2>/dev/null || true
    rm -rf "$ROOT/state" "$ROOT/spool"
    say "stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) SLURM_CONF=$CONF sinfo -h -o '%N %T' ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
