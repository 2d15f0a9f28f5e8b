#!/usr/bin/env bash
# The Debian package, installed for real: run by .ci/run (as root, with dpkg), after the
# static build it packages.
#
#   tests/deb.sh PACKAGE.deb [UPGRADE.deb]
#
# Installs PACKAGE.deb with dpkg -i; checks the layout (binary, unit, config, docs, the
# system user and its state directory); runs `backup-monitor --version`, `migrate` and `check`
# from the installed paths as the service user; starts the installed binary as that user to
# get the first admin token file and puts a job and a report in the database through the
# API. Then installs UPGRADE.deb (default: the same file again, which runs the maintainer
# scripts of an upgrade) over an edited configuration, and checks that the database, the
# token file and the edit survive and the token still opens the API; `dpkg -r` keeps the
# data and the configuration, `dpkg -P` deletes both. The system user stays after a purge,
# as Debian packages leave theirs; this script deletes it at the end if it made it.
#
# There need not be a running systemd (a container has none): the package's scripts must
# cope, and this script starts the binary itself.
set -euo pipefail

package=${1:?usage: tests/deb.sh PACKAGE.deb [UPGRADE.deb]}
upgrade=${2:-$package}
user=backup-monitor
state=/var/lib/backup-monitor
config=/etc/backup-monitor/monitor.toml

say() { printf '== deb: %s\n' "$*" >&2; }
die() {
  printf 'tests/deb.sh: %s\n' "$*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "needs root (dpkg -i)"
command -v dpkg >/dev/null || die "needs dpkg"
command -v curl >/dev/null || die "needs curl"
! dpkg-query -W -f='${Status}' backup-monitor 2>/dev/null | grep -q 'install ok' ||
  die "backup-monitor is already installed here: this test would replace and purge it"
[ ! -e "$state" ] || die "$state exists already: this test would delete it"
user_existed=0
! getent passwd "$user" >/dev/null || user_existed=1

server_pid=
# Runs at exit; keeps the script's own exit status (a last `getent group` that finds no group
# would otherwise make a passing run exit 2).
cleanup() {
  local status=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if dpkg-query -W -f='${Status}' backup-monitor 2>/dev/null | grep -q 'installed\|config-files'; then
    dpkg -P backup-monitor >/dev/null 2>&1 || true
  fi
  if [ "$user_existed" = 0 ] && getent passwd "$user" >/dev/null; then
    deluser --quiet --system "$user" >/dev/null 2>&1 || userdel "$user" 2>/dev/null || true
    if getent group "$user" >/dev/null; then
      delgroup --quiet --system "$user" >/dev/null 2>&1 || groupdel "$user" 2>/dev/null || true
    fi
  fi
  exit "$status"
}
trap cleanup EXIT

as_service() { runuser -u "$user" -- "$@"; }
mode_of() { stat -c '%a %U:%G' "$1"; }
expect_mode() { # path "mode user:group"
  [ "$(mode_of "$1")" = "$2" ] || die "$1 is $(mode_of "$1"), not $2"
}

say "dpkg -i $package"
dpkg -i "$package" >/dev/null || die "dpkg -i failed"

say "layout"
[ -x /usr/bin/backup-monitor ] || die "no /usr/bin/backup-monitor"
unit=$(dpkg -L backup-monitor | grep '/systemd/system/backup-monitor.service$') ||
  die "no systemd unit in the package"
[ -f "$unit" ] || die "$unit is missing"
grep -q '^User=backup-monitor$' "$unit" || die "$unit does not run as the backup-monitor user"
[ -f /usr/share/doc/backup-monitor/monitor.toml.example ] || die "no monitor.toml.example in /usr/share/doc"
dpkg-query -W -f='${Conffiles}\n' backup-monitor | grep -q " $config " || die "$config is not a conffile"
getent passwd "$user" >/dev/null || die "no system user $user"
[ "$(getent passwd "$user" | cut -d: -f3)" -lt 1000 ] || die "$user is not a system user"
expect_mode "$state" "750 $user:$user"
expect_mode /etc/backup-monitor "750 root:$user"
expect_mode "$config" "640 root:$user"
echo "   $unit; /usr/bin/backup-monitor; $config; $state" >&2

say "backup-monitor --version, migrate and check, from the installed paths"
/usr/bin/backup-monitor --version
cd /
as_service backup-monitor --config "$config" migrate
# (Its mode is the umask's: the service's own is 0077; the directory is 0750 anyway.)
[ "$(stat -c %U:%G "$state/backup-monitor.db")" = "$user:$user" ] || die "the database is not the service user's"
set +e
as_service backup-monitor --config "$config" check
status=$?
set -e
# Nagios codes: an empty database is OK (0); 3 (UNKNOWN) would mean it could not look.
[ "$status" = 0 ] || die "check on the new database exited $status"

# Starts the installed service as its user on a free port, with the installed config.
port=
start() {
  port=$((20000 + RANDOM % 12000))
  runuser -u "$user" -- env -u BACKUP_MONITOR_ADMIN_TOKEN backup-monitor --config "$config" \
    serve --bind "127.0.0.1:$port" 2>>/tmp/backup-monitor-deb-test.log &
  server_pid=$!
  for _ in $(seq 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" = 200 ] && return
    kill -0 "$server_pid" 2>/dev/null || die "the installed service exited: $(tail -5 /tmp/backup-monitor-deb-test.log)"
    sleep 0.1
  done
  die "the installed service did not answer within 30 s"
}
stop() {
  kill "$server_pid"
  wait "$server_pid" || true
  server_pid=
}
api() { # method path [json]
  curl -sf -X "$1" -H "Authorization: Bearer $(cat "$state/backup-monitor.admin-token")" \
    -H 'Content-Type: application/json' ${3:+-d "$3"} "http://127.0.0.1:$port/api/v1$2"
}
entries() {
  curl -sf -o /dev/null -D - -H "Authorization: Bearer $(cat "$state/backup-monitor.admin-token")" \
    "http://127.0.0.1:$port/api/v1/entries/?limit=1" | tr -d '\r' |
    awk 'tolower($1) == "x-total-count:" { print $2 }'
}

say "first start: the admin token file, a job and a report"
: >/tmp/backup-monitor-deb-test.log
start
expect_mode "$state/backup-monitor.admin-token" "600 $user:$user"
api POST /jobs/ '{"database_name": "erp", "agent_id_responsible": "agent-1", "company_name": "acme",
  "city": "Lyon", "expected_hour_utc": 2, "expected_minute_utc": 30, "backup_frequency": "daily",
  "final_storage_path_template": "/backups/{database_name}/%Y-%m-%d.dump"}' >/dev/null ||
  die "could not create a job"
api POST /entries/ '{"expected_job_id": 1, "status": "success"}' >/dev/null || die "could not report"
[ "$(entries)" = 1 ] || die "the report was not stored"
stop
token_sum=$(sha256sum "$state/backup-monitor.admin-token")
db_inode=$(stat -c %i "$state/backup-monitor.db")
echo "# edited by tests/deb.sh" >>"$config"

say "upgrade: dpkg -i $upgrade"
dpkg -i "$upgrade" >/dev/null || die "the upgrade failed"
[ "$(dpkg-query -W -f='${Version}' backup-monitor)" = "$(dpkg-deb -f "$upgrade" Version)" ] ||
  die "the installed version is not $upgrade's"
[ "$(sha256sum "$state/backup-monitor.admin-token")" = "$token_sum" ] || die "the token file changed"
[ "$(stat -c %i "$state/backup-monitor.db")" = "$db_inode" ] || die "the database was replaced"
grep -q '^# edited by tests/deb.sh$' "$config" || die "the upgrade replaced the edited $config"
expect_mode "$state" "750 $user:$user"
as_service backup-monitor --config "$config" migrate
start
[ "$(api GET /jobs/ | grep -o '"database_name":"erp"' | wc -l)" = 1 ] || die "the job is gone after the upgrade"
[ "$(entries)" = 1 ] || die "the report is gone after the upgrade"
stop
echo "   the database (1 job, 1 entry), the token file (it still opens the API) and the edited config survived" >&2

say "dpkg -r: the binary goes, the data and the configuration stay"
dpkg -r backup-monitor >/dev/null || die "dpkg -r failed"
[ ! -e /usr/bin/backup-monitor ] || die "/usr/bin/backup-monitor is still there"
[ -f "$state/backup-monitor.db" ] && [ -f "$state/backup-monitor.admin-token" ] ||
  die "dpkg -r deleted the data"
[ -f "$config" ] || die "dpkg -r deleted $config"

say "dpkg -P: the data and the configuration go; the system user stays"
dpkg -P backup-monitor >/dev/null || die "dpkg -P failed"
[ ! -e "$state" ] || die "$state survived the purge"
[ ! -e /etc/backup-monitor ] || die "/etc/backup-monitor survived the purge"
getent passwd "$user" >/dev/null || die "the purge deleted the user (Debian packages keep theirs)"
say "ok"
