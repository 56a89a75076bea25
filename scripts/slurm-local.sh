#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, with accounting (sacct), for trying and
# testing the SLURM launcher: `scripts/slurm-local.sh up|down|status` (make cluster-up,
# cluster-down). Run as root: SLURM's daemons need it.
#
# up: writes /etc/slurm/slurm.conf and slurmdbd.conf for this host (its name, cores and memory;
# one partition, "local"), then starts munged, a MariaDB server on 127.0.0.1:$DB_PORT with its
# data under $STATE, slurmdbd, slurmctld and slurmd, and waits until sinfo shows the node idle.
# A second `up` changes nothing. It installs nothing: a missing program is named with the
# apt-get command that provides it. It refuses a /etc/slurm/slurm.conf it did not write (a real
# cluster's).
# down: stops the daemons it started (their PID files under $STATE) and removes the files it
# wrote in /etc/slurm; nothing else.
set -euo pipefail

STATE=${MNISTLAB_CLUSTER_STATE:-/var/tmp/mnistlab-cluster}
DB_PORT=${MNISTLAB_CLUSTER_DB_PORT:-3307}
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
MARK="# written by mnistlab's scripts/slurm-local.sh"
HOST=$(hostname)

say() { echo "slurm-local: $*"; }
die() { echo "slurm-local: error: $*" >&2; exit 1; }

need() {  # program, Debian package
    command -v "$1" > /dev/null || die "$1 is missing. Fix: apt-get install $2"
}

running() {  # pid file
    [ -f "$1" ] && kill -0 "$(cat "$1")" 2> /dev/null
}

wait_for() {  # seconds, what, command...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq $((seconds * 4))); do
        if "$@" > /dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    die "$what did not come up within ${seconds}s (logs: $STATE/log/)"
}

write_confs() {
    local cores memory
    cores=$(nproc)
    memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    mkdir -p /etc/slurm
    cat > "$CONF" <<EOF
$MARK
ClusterName=mnistlab
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
# A job's memory when it asks for none: a share of the node, so that jobs run side by side.
DefMemPerCPU=$((memory / cores))
NodeName=$HOST CPUs=$cores RealMemory=$memory State=UNKNOWN
PartitionName=local Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
    cat > "$DBD_CONF" <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
EOF
    chmod 600 "$DBD_CONF"
}

up() {
    [ "$(id -u)" -eq 0 ] || die "run as root (SLURM's daemons need it)"
    need munged munge
    need slurmctld slurm-wlm
    need slurmd slurm-wlm
    need slurmdbd slurmdbd
    need mariadbd mariadb-server
    if [ -f "$CONF" ] && ! grep -q "^$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script (a real cluster's?); not touching it"
    fi
    mkdir -p "$STATE/log" "$STATE/slurmctld" "$STATE/slurmd"
    write_confs

    if ! running "$STATE/munged.pid"; then
        mkdir -p /run/munge && chown munge:munge /run/munge
        rm -f /run/munge/munged.pid
        runuser -u munge -- munged  # as its own user; its PID file is /run/munge/munged.pid
        wait_for 10 munged test -s /run/munge/munged.pid
        cp /run/munge/munged.pid "$STATE/munged.pid"
    fi
    wait_for 10 munge sh -c "munge -n | unmunge"

    if ! running "$STATE/mariadb.pid"; then
        if [ ! -d "$STATE/mariadb/mysql" ]; then
            mkdir -p "$STATE/mariadb" && chown mysql:mysql "$STATE/mariadb"
            mariadb-install-db --user=mysql --datadir="$STATE/mariadb" \
                --auth-root-authentication-method=socket > "$STATE/log/mariadb-install.log" 2>&1
        fi
        # It runs as mysql: its socket, PID file and log go where that user may write.
        local run="$STATE/mariadb-run"
        mkdir -p "$run" && chown mysql:mysql "$run"
        mariadbd --user=mysql --datadir="$STATE/mariadb" --bind-address=127.0.0.1 \
            --port="$DB_PORT" --socket="$run/mariadb.sock" --pid-file="$run/mariadb.pid" \
            --log-error="$run/mariadb.log" 2>> "$STATE/log/mariadb.stderr" &
        wait_for 30 MariaDB mariadb --socket="$run/mariadb.sock" -e "select 1"
        cp "$run/mariadb.pid" "$STATE/mariadb.pid"
        mariadb --socket="$run/mariadb.sock" -e "
            CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
            CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
    fi

    if ! running "$STATE/slurmdbd.pid"; then
        slurmdbd
        wait_for 30 slurmdbd sacctmgr -n list cluster
        sacctmgr -i add cluster mnistlab > /dev/null 2>&1 || true
    fi
    if ! running "$STATE/slurmctld.pid"; then
        slurmctld
    fi
    if ! running "$STATE/slurmd.pid"; then
        slurmd
    fi
    wait_for 60 "the node" sh -c "sinfo -h -N -o %t | grep -qx idle"
    say "up: $(sinfo -h -o '%P %D node(s) %c cores %m MB %t') ($CONF; logs: $STATE/log/)"
}

down() {
    local stopped=""
    for daemon in slurmd slurmctld slurmdbd mariadb munged; do
        local pidfile="$STATE/$daemon.pid"
        if running "$pidfile"; then
            local pid
            pid=$(cat "$pidfile")
            kill "$pid"
            for _ in $(seq 120); do kill -0 "$pid" 2> /dev/null || break; sleep 0.25; done
            kill -0 "$pid" 2> /dev/null && kill -9 "$pid"
            stopped="$stopped $daemon"
        fi
        rm -f "$pidfile"
    done
    for file in "$CONF" "$DBD_CONF"; do
        if [ -f "$file" ] && grep -q "^$MARK" "$file"; then rm -f "$file"; fi
    done
    say "down: stopped${stopped:- nothing}; state kept in $STATE (remove it for a fresh cluster)"
}

status() {
    for daemon in munged mariadb slurmdbd slurmctld slurmd; do
        if running "$STATE/$daemon.pid"; then
            echo "$daemon: running (pid $(cat "$STATE/$daemon.pid"))"
        else
            echo "$daemon: not running"
        fi
    done
    if running "$STATE/slurmctld.pid"; then sinfo; fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
