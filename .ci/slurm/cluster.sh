#!/usr/bin/env bash
# One-node SLURM cluster (munged + MariaDB + slurmdbd + slurmctld + slurmd) for tests and CI.
# Works without systemd: every daemon is started by hand, with its pid, state and log under STATE_DIR.
#
#   cluster.sh install            # apt-get install the packages (no-op when already installed)
#   cluster.sh start  STATE_DIR   # write configs, start all daemons, wait until the node is idle
#   cluster.sh stop   STATE_DIR   # stop all daemons (reverse order); fine when already stopped
#   cluster.sh status STATE_DIR   # sinfo, non-zero when the controller does not answer
#
# After `start`: `. STATE_DIR/env` makes sbatch/squeue/sacct/scontrol/sinfo talk to this cluster.
# Must run as root. STATE_DIR must be reachable (x bit on every parent) by the slurm, munge and
# mysql users, so e.g. /tmp/slurm-ci works but pytest's /tmp/pytest-of-root/... (mode 700) does not.
# Ports (override via env): SLURM_CI_PORT_BASE (default 6817) -> slurmctld, +1 slurmd, +2 slurmdbd,
# +3 mariadbd. Start timeout: SLURM_CI_TIMEOUT (default 90 s).
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
CLUSTER=${SLURM_CI_CLUSTER:-ci}
PORT_BASE=${SLURM_CI_PORT_BASE:-6817}
TIMEOUT=${SLURM_CI_TIMEOUT:-90}
CTLD_PORT=$PORT_BASE
SLURMD_PORT=$((PORT_BASE + 1))
DBD_PORT=$((PORT_BASE + 2))
DB_PORT=$((PORT_BASE + 3))
DB_PASS=slurmci

die() {
    echo "cluster.sh: $1" >&2
    if [[ -n ${2:-} && -f $2 ]]; then
        echo "---- tail of $2 ----" >&2
        tail -n 25 "$2" >&2
    fi
    if [[ ${STARTING:-0} == 1 ]]; then # a failed start stops what it started (logs stay in STATE_DIR)
        STARTING=0
        cmd_stop "$S" >/dev/null 2>&1 || true
    fi
    exit 1
}

usage() {
    echo "usage: $0 install | start STATE_DIR | stop STATE_DIR | status STATE_DIR" >&2
    exit 2
}

# ---------------------------------------------------------------- install
cmd_install() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        if [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) != "install ok installed" ]]; then
            missing+=("$p")
        fi
    done
    if ((${#missing[@]} == 0)); then
        echo "cluster.sh: all packages already installed"
        return 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    # apt-get update only when apt does not know the packages yet.
    if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
        apt-get update -q
    fi
    # No systemd here: keep the packages' maintainer scripts from trying to start the services.
    local own_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    local rc=0
    apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" || rc=$?
    ((own_policy)) && rm -f /usr/sbin/policy-rc.d
    ((rc == 0)) || die "apt-get install failed (exit $rc)"
}

# ---------------------------------------------------------------- helpers
# Absolute STATE_DIR and all paths derived from it.
set_paths() {
    [[ -n ${1:-} ]] || usage
    mkdir -p "$1"
    S=$(cd "$1" && pwd)
    ETC=$S/etc
    LOG=$S/log
    RUN=$S/run
    SLURM_CONF_FILE=$ETC/slurm.conf
    MUNGE_DIR=$S/munge
    MUNGE_SOCKET=$MUNGE_DIR/munge.socket
    DB_DIR=$S/mysql
    DB_SOCKET=$DB_DIR/mysqld.sock
    PID_MUNGED=$MUNGE_DIR/munged.pid
    PID_MARIADBD=$DB_DIR/mariadbd.pid
    PID_SLURMDBD=$RUN/slurmdbd.pid
    PID_SLURMCTLD=$RUN/slurmctld.pid
    PID_SLURMD=$RUN/slurmd.pid
}

pid_alive() { # pidfile
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# wait_for SECS WHAT LOGFILE PIDFILE CMD...: poll CMD until it succeeds; fail at once when the daemon
# whose pid is in PIDFILE (or PIDFILE itself when it is a number) has died.
wait_for() {
    local secs=$1 what=$2 logf=$3 pidspec=$4
    shift 4
    local end=$((SECONDS + secs)) pid
    until "$@" >/dev/null 2>&1; do
        pid=$pidspec
        [[ $pid =~ ^[0-9]+$ ]] || pid=$( [[ -s $pidspec ]] && cat "$pidspec" 2>/dev/null || true)
        if [[ $pid =~ ^[0-9]+$ ]] && ! kill -0 "$pid" 2>/dev/null; then
            die "$what exited during startup" "$logf"
        fi
        ((SECONDS < end)) || die "$what did not come up within ${secs}s" "$logf"
        sleep 0.2
    done
}

port_free() { # port name
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        die "port $1 for $2 is already in use (another cluster running? set SLURM_CI_PORT_BASE)"
    fi
}

# Stop a group of daemons together: TERM all, wait up to 15 s, then KILL what is left.
stop_pidfiles() { # name:pidfile...
    local item name pidf pid i pids=() names=()
    for item in "$@"; do
        name=${item%%:*} pidf=${item#*:}
        if pid_alive "$pidf"; then
            pid=$(<"$pidf")
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid") names+=("$name")
        fi
        rm -f "$pidf"
    done
    ((${#pids[@]})) || return 0
    local alive
    for ((i = 0; i < 150; i++)); do
        alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for i in "${!pids[@]}"; do
        if kill -0 "${pids[i]}" 2>/dev/null; then
            echo "cluster.sh: ${names[i]} (pid ${pids[i]}) ignored SIGTERM, sending SIGKILL" >&2
            kill -KILL "${pids[i]}" 2>/dev/null || true
        fi
    done
}

check_reachable() { # user dir: every parent must be traversable by user
    runuser -u "$1" -- test -x "$2" ||
        die "STATE_DIR $2 is not reachable by user '$1' (a parent directory lacks o+x); use e.g. /tmp/slurm-ci"
}

# ---------------------------------------------------------------- configs
write_configs() {
    local host cpus sockets cores threads mem_mb real_mem
    host=$(hostname -s)
    cpus=$(nproc --all)
    sockets=$(lscpu | awk -F: '/^Socket\(s\)/ {gsub(/ /,"",$2); print $2}')
    cores=$(lscpu | awk -F: '/^Core\(s\) per socket/ {gsub(/ /,"",$2); print $2}')
    threads=$(lscpu | awk -F: '/^Thread\(s\) per core/ {gsub(/ /,"",$2); print $2}')
    [[ $sockets =~ ^[0-9]+$ && $cores =~ ^[0-9]+$ && $threads =~ ^[0-9]+$ ]] ||
        { sockets=1; cores=$cpus; threads=1; }
    ((sockets * cores * threads == cpus)) || { sockets=1; cores=$cpus; threads=1; }
    mem_mb=$(awk '/^MemTotal/ {print int($2 / 1024)}' /proc/meminfo)
    real_mem=$((mem_mb * 8 / 10)) # leave room; slurmd drains a node with less memory than configured

    cat >"$SLURM_CONF_FILE" <<EOF
# Generated by .ci/slurm/cluster.sh -- one-node test cluster
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
StateSaveLocation=$S/slurmctld
SlurmdSpoolDir=$S/slurmd
SlurmctldPidFile=$PID_SLURMCTLD
SlurmdPidFile=$PID_SLURMD
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# for auth/munge this is the munge socket used towards slurmdbd (sacctmgr/sacct/slurmctld)
AccountingStoragePass=$MUNGE_SOCKET
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=5
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=30
InactiveLimit=0
Waittime=0
OverTimeLimit=0
SlurmctldTimeout=60
SlurmdTimeout=60
MessageTimeout=10
NodeName=$host NodeAddr=127.0.0.1 NodeHostname=$host CPUs=$cpus Sockets=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$real_mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

    # slurmdbd reads slurmdbd.conf from the directory of SLURM_CONF; it refuses a readable-by-others file.
    cat >"$ETC/slurmdbd.conf" <<EOF
# Generated by .ci/slurm/cluster.sh
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=slurm
LogFile=$LOG/slurmdbd.log
PidFile=$PID_SLURMDBD
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
    chown slurm:slurm "$ETC/slurmdbd.conf"
    chmod 600 "$ETC/slurmdbd.conf"

    # No cgroup.conf: proctrack/linuxproc + task/none need none (22.05 knows no CgroupPlugin=disabled).
    rm -f "$ETC/cgroup.conf"

    printf 'export SLURM_CONF=%q\n' "$SLURM_CONF_FILE" >"$S/env"
}

# ---------------------------------------------------------------- start
start_munged() {
    pid_alive "$PID_MUNGED" && return 0
    # A key of our own (the system one, /etc/munge/munge.key, is left alone).
    if [[ ! -s $MUNGE_DIR/munge.key ]]; then
        dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none
    fi
    chown munge:munge "$MUNGE_DIR" "$MUNGE_DIR/munge.key"
    chmod 755 "$MUNGE_DIR" # socket must be reachable by all users; key stays 400
    chmod 400 "$MUNGE_DIR/munge.key"
    touch "$LOG/munged.log" && chown munge:munge "$LOG/munged.log"
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
    runuser -u munge -- munged --socket="$MUNGE_SOCKET" --key-file="$MUNGE_DIR/munge.key" \
        --log-file="$LOG/munged.log" --pid-file="$PID_MUNGED" \
        --seed-file="$MUNGE_DIR/munge.seed" --force ||
        die "munged failed to start" "$LOG/munged.log"
    wait_for 10 munged "$LOG/munged.log" - test -s "$PID_MUNGED"
    wait_for 10 munged "$LOG/munged.log" "$PID_MUNGED" bash -c "munge -S '$MUNGE_SOCKET' -n | unmunge -S '$MUNGE_SOCKET'"
}

start_mariadbd() {
    pid_alive "$PID_MARIADBD" && return 0
    port_free "$DB_PORT" mariadbd
    mkdir -p "$DB_DIR"
    chown mysql:mysql "$DB_DIR"
    chmod 750 "$DB_DIR"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    touch "$LOG/mariadbd.log" && chown mysql:mysql "$LOG/mariadbd.log"
    local fresh=0
    if [[ ! -d $DB_DIR/data/mysql ]]; then
        mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR/data" \
            --auth-root-authentication-method=socket --skip-test-db \
            >"$LOG/mariadb-install-db.log" 2>&1 ||
            die "mariadb-install-db failed" "$LOG/mariadb-install-db.log"
        fresh=1
    fi
    setsid nohup mariadbd --no-defaults --user=mysql --datadir="$DB_DIR/data" \
        --socket="$DB_SOCKET" --pid-file="$PID_MARIADBD" --log-error="$LOG/mariadbd.log" \
        --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
        --innodb-buffer-pool-size=64M --innodb-log-file-size=16M --skip-log-bin \
        --innodb-lock-wait-timeout=900 --max-allowed-packet=16M \
        </dev/null >>"$LOG/mariadbd.log" 2>&1 &
    wait_for 60 mariadbd "$LOG/mariadbd.log" "$!" mariadb-admin --no-defaults --socket="$DB_SOCKET" ping
    wait_for 10 mariadbd "$LOG/mariadbd.log" - test -s "$PID_MARIADBD"
    if ((fresh)); then
        mariadb --no-defaults --socket="$DB_SOCKET" -u root <<EOF || die "creating the slurm DB user failed" "$LOG/mariadbd.log"
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
EOF
    fi
}

start_slurmdbd() {
    pid_alive "$PID_SLURMDBD" && return 0
    port_free "$DBD_PORT" slurmdbd
    slurmdbd || die "slurmdbd failed to start" "$LOG/slurmdbd.log"
    wait_for 30 slurmdbd "$LOG/slurmdbd.log" - pid_alive "$PID_SLURMDBD"
    # sacctmgr talks to slurmdbd directly; it answers once slurmdbd is ready.
    wait_for 60 slurmdbd "$LOG/slurmdbd.log" "$PID_SLURMDBD" sacctmgr -n list cluster
    if [[ -z $(sacctmgr -n -P list cluster "$CLUSTER" format=cluster) ]]; then
        sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr add cluster failed" "$LOG/slurmdbd.log"
    fi
    if [[ -z $(sacctmgr -n -P list account ci format=account) ]]; then
        sacctmgr -i add account ci cluster="$CLUSTER" description=ci organization=ci >/dev/null ||
            die "sacctmgr add account failed" "$LOG/slurmdbd.log"
        sacctmgr -i add user root account=ci cluster="$CLUSTER" >/dev/null ||
            die "sacctmgr add user failed" "$LOG/slurmdbd.log"
    fi
}

start_slurmctld() {
    pid_alive "$PID_SLURMCTLD" && return 0
    port_free "$CTLD_PORT" slurmctld
    slurmctld || die "slurmctld failed to start" "$LOG/slurmctld.log"
    wait_for 30 slurmctld "$LOG/slurmctld.log" "$PID_SLURMCTLD" scontrol ping
}

start_slurmd() {
    pid_alive "$PID_SLURMD" && return 0
    port_free "$SLURMD_PORT" slurmd
    slurmd -N "$(hostname -s)" || die "slurmd failed to start" "$LOG/slurmd.log"
    wait_for 30 slurmd "$LOG/slurmd.log" - pid_alive "$PID_SLURMD"
}

node_idle() {
    local state
    state=$(sinfo -h -N -o '%t' 2>/dev/null | head -n1)
    [[ $state == idle || $state == mix || $state == alloc ]]
}

cmd_start() {
    set_paths "${1:-}"
    [[ $(id -u) == 0 ]] || die "start must run as root"
    local c
    for c in munged mariadbd mariadb-install-db slurmdbd slurmctld slurmd sinfo sacctmgr; do
        command -v "$c" >/dev/null || die "$c not found; run '$0 install' first"
    done
    chmod 755 "$S"
    local u
    for u in slurm munge mysql; do check_reachable "$u" "$S"; done
    mkdir -p "$ETC" "$LOG" "$RUN" "$MUNGE_DIR" "$S/slurmctld" "$S/slurmd"
    chmod 755 "$ETC" "$LOG" "$RUN"
    chown slurm:slurm "$S/slurmctld"
    touch "$LOG/slurmctld.log" "$LOG/slurmdbd.log" "$LOG/slurmd.log"
    chown slurm:slurm "$LOG/slurmctld.log" "$LOG/slurmdbd.log"
    chown slurm:slurm "$RUN"
    write_configs
    export SLURM_CONF=$SLURM_CONF_FILE

    STARTING=1
    start_munged
    start_mariadbd
    start_slurmdbd
    start_slurmctld
    start_slurmd

    local end=$((SECONDS + TIMEOUT))
    until node_idle; do
        if ((SECONDS >= end)); then
            sinfo -N -l >&2 || true
            die "node not idle within ${TIMEOUT}s" "$LOG/slurmd.log"
        fi
        sleep 0.5
    done
    STARTING=0
    echo "cluster.sh: cluster '$CLUSTER' up; use: . $S/env"
    sinfo
}

# ---------------------------------------------------------------- stop / status
cmd_stop() {
    set_paths "${1:-}"
    # Reverse start order, in three groups so that it takes ~6 s rather than ~11 s.
    stop_pidfiles "slurmd:$PID_SLURMD" "slurmctld:$PID_SLURMCTLD"
    stop_pidfiles "slurmdbd:$PID_SLURMDBD"
    stop_pidfiles "mariadbd:$PID_MARIADBD" "munged:$PID_MUNGED"
    echo "cluster.sh: stopped"
}

cmd_status() {
    set_paths "${1:-}"
    [[ -f $SLURM_CONF_FILE ]] || die "no cluster config in $S"
    SLURM_CONF=$SLURM_CONF_FILE sinfo
}

case ${1:-} in
install) cmd_install ;;
start) cmd_start "${2:-}" ;;
stop) cmd_stop "${2:-}" ;;
status) cmd_status "${2:-}" ;;
*) usage ;;
esac
