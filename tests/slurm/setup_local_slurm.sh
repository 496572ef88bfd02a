#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine, to test `snakemake --profile slurm` for real.
#
# - Debian 12 (SLURM 22.05); run as root; no systemd: every daemon is started by hand.
# - One node named `localhost` with this machine's cores, two fake GPUs of type l40s as a typed
#   GRES (File=/dev/null,/dev/zero: a count-only GRES drains the node), partitions `cpu`
#   (default) and `gpu`, named as in workflow/profiles/slurm/config.yaml.
# - Two accounting modes (ACCOUNTING=...), the two kinds of site the slurm profile must serve:
#   slurmdbd (default): slurmdbd + MariaDB, so that `sacct` works: the slurm executor plugin
#     polls job status with sacct, and the test reads SLURM's own records of each job
#     (partition, requested GPUs, the `rule_<name>` comment the plugin sets) from it;
#   none: AccountingStorageType=accounting_storage/none and slurmdbd stopped (sacct and
#     sacctmgr fail, as on a cluster without accounting); jobs stay listed by squeue/scontrol
#     for MinJobAge=600 s, so the profile's `slurm-status-command: squeue` works.
#   Switching mode restarts slurmctld (AccountingStorageType needs a restart); jobs survive.
# - JobRequeue=0: a job can be requeued only when sbatch got --requeue (the profile's
#   slurm-requeue), so the requeue test fails when the profile stops asking for it.
# - Idempotent: re-running rewrites the config but restarts nothing that is already running in
#   the requested mode.
#
# Usage: tests/slurm/setup_local_slurm.sh            (installs packages with apt if missing)
#        INSTALL=0 tests/slurm/setup_local_slurm.sh  (never installs; exits 3 when SLURM is absent)
#        ACCOUNTING=none tests/slurm/setup_local_slurm.sh   (no accounting daemon)
# Exit status: 0 cluster up, 3 packages missing (with INSTALL=0), anything else a failure.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
INSTALL=${INSTALL:-1}
ACCOUNT=${SLURM_TEST_ACCOUNT:-default}
ACCOUNTING=${ACCOUNTING:-slurmdbd}
case "$ACCOUNTING" in
slurmdbd | none) ;;
*)
  echo "setup_local_slurm: ACCOUNTING=$ACCOUNTING: use slurmdbd or none" >&2
  exit 2
  ;;
esac

say() { echo "setup_local_slurm: $*" >&2; }
# true if a non-zombie process with exactly this name exists
running() {
  local p
  for p in $(pgrep -x "$1"); do
    ps -o stat= -p "$p" | grep -qv Z && return 0
  done
  return 1
}
not_running() { ! running "$1"; }
wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq "$seconds"); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  say "gave up after ${seconds}s waiting for $what"
  return 1
}

if [ "$(id -u)" != 0 ]; then
  say "must run as root (it writes /etc/slurm and starts daemons)"
  exit 2
fi

missing=()
for binary in slurmctld slurmd munged slurmdbd mariadbd sacct; do
  command -v "$binary" >/dev/null || [ -x "/usr/sbin/$binary" ] || missing+=("$binary")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$INSTALL" != 1 ]; then
    say "not installed: ${missing[*]} (apt-get install slurm-wlm munge slurmdbd mariadb-server)"
    exit 3
  fi
  apt-get update
  apt-get install -y slurm-wlm munge
  apt-get install -y --no-install-recommends slurmdbd mariadb-server
fi

# ---- munge ---------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge && chown munge:munge /run/munge && chmod 0755 /run/munge
running munged || runuser -u munge -- /usr/sbin/munged
wait_for 10 munged sh -c 'munge -n | unmunge'

# ---- slurm.conf / gres.conf ----------------------------------------------------------------
mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
cpus=$(nproc)
if [ "$ACCOUNTING" = slurmdbd ]; then
  accounting_lines="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
# typed GPU counts (gres/gpu:l40s) are recorded in ReqTRES/AllocTRES only when listed here
AccountingStorageTRES=gres/gpu,gres/gpu:l40s
# keep sbatch --comment (the plugin writes rule_<name>) in the accounting records
AccountingStoreFlags=job_comment"
else
  accounting_lines="AccountingStorageType=accounting_storage/none"
fi
cat >/etc/slurm/slurm.conf <<EOF
ClusterName=localcluster
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
# The node advertises more memory than a test machine has, so that every rule's mem_mb fits;
# nothing is enforced (no cgroups), and config_overrides keeps slurmd from draining the node.
SlurmdParameters=config_overrides
$accounting_lines
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
# finished jobs stay visible to squeue/scontrol for 10 min (the plugin trusts squeue from 120 s)
MinJobAge=600
JobRequeue=0
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=256000 Gres=gpu:l40s:2 State=UNKNOWN
PartitionName=cpu Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
EOF
echo 'NodeName=localhost Name=gpu Type=l40s File=/dev/null,/dev/zero' >/etc/slurm/gres.conf

# ---- accounting: MariaDB + slurmdbd --------------------------------------------------------
start_slurmdbd() {
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  if ! running mariadbd; then
    # detached, with no inherited stdout/stderr (a pipe held open would hang the caller)
    (cd / && exec nohup /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
      </dev/null >/var/log/slurm/mariadb.stdout 2>&1 &)
  fi
  wait_for 30 MariaDB mariadb-admin ping
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmdbpass';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  cat >/etc/slurm/slurmdbd.conf <<'EOF'
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=root
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=3306
StorageUser=slurm
StoragePass=slurmdbpass
StorageLoc=slurm_acct_db
EOF
  chmod 600 /etc/slurm/slurmdbd.conf
  running slurmdbd || slurmdbd
  wait_for 30 slurmdbd sacctmgr -n list cluster
  sacctmgr -n -P list cluster format=cluster | grep -qx localcluster ||
    sacctmgr -i add cluster localcluster
  sacctmgr -n -P list account format=account | grep -qx "$ACCOUNT" ||
    sacctmgr -i add account "$ACCOUNT" Description=local-test Organization=local
  sacctmgr -n -P list assoc users=root accounts="$ACCOUNT" format=user | grep -qx root ||
    sacctmgr -i add user root Account="$ACCOUNT" DefaultAccount="$ACCOUNT"
}

stop_slurmdbd() { # by the pid it wrote (this script started it)
  local pid
  running slurmdbd || return 0
  pid=$(cat /run/slurm/slurmdbd.pid 2>/dev/null || true)
  [ -n "$pid" ] || { say "slurmdbd runs but /run/slurm/slurmdbd.pid is missing"; return 1; }
  kill "$pid"
  wait_for 30 "slurmdbd to stop" not_running slurmdbd
}

# the accounting mode slurmctld runs with now (empty when it is not running)
current_accounting() {
  scontrol show config 2>/dev/null | sed -n 's/^AccountingStorageType *= *accounting_storage\///p'
}

if [ "$ACCOUNTING" = slurmdbd ]; then
  start_slurmdbd
fi

# ---- slurmctld + slurmd --------------------------------------------------------------------
wanted=$([ "$ACCOUNTING" = slurmdbd ] && echo slurmdbd || echo none)
if running slurmctld && [ "$(current_accounting)" != "$wanted" ]; then
  say "restarting slurmctld: accounting $(current_accounting) -> $wanted"
  scontrol shutdown slurmctld || true
  wait_for 30 "slurmctld to stop" not_running slurmctld
fi
if running slurmctld; then
  scontrol reconfigure || true # pick up a rewritten slurm.conf
else
  slurmctld
fi
wait_for 30 slurmctld scontrol ping
[ "$ACCOUNTING" = slurmdbd ] || stop_slurmdbd
running slurmd || slurmd -N localhost # NodeName=localhost differs from the hostname
wait_for 30 "node localhost to register" sh -c \
  'sinfo -h -n localhost -o %T | grep -qvE "^(unknown|down|not_responding)"'
# a node that registered with an earlier, bad config stays DRAIN/INVAL: clear it
if scontrol show node localhost | grep -qE 'State=[A-Z+]*(DRAIN|DOWN|INVAL)'; then
  scontrol update nodename=localhost state=resume || true
fi
wait_for 30 "node localhost to become idle" sh -c \
  'sinfo -h -n localhost -o %T | grep -qE "^(idle|mixed|allocated)"'
if [ "$ACCOUNTING" = slurmdbd ]; then
  wait_for 30 "the cluster to show up in accounting" sh -c \
    'sacct -n -X -S now-1minute >/dev/null'
elif sacct -n -X -S now-1minute >/dev/null 2>&1; then
  say "ACCOUNTING=none, but sacct still answers"
  exit 1
fi
sinfo
pids() { pgrep -d, -x "$1" || echo none; }
say "up: munged=$(pids munged) mariadbd=$(pids mariadbd) slurmdbd=$(pids slurmdbd)" \
  "slurmctld=$(pids slurmctld) slurmd=$(pids slurmd); accounting=$ACCOUNTING account=$ACCOUNT"
