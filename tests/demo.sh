#!/usr/bin/env bash
# A complete SMS login on this machine, without a Twilio account:
#   bash tests/demo.sh
# It builds smsotp, starts a private D-Bus bus and smsotpd with the "outbox"
# provider (SMS are written to a file instead of being sent), enrolls root,
# and logs root in through the real pam_sms.so with pamtester, typing the
# code from the SMS that would have been sent. Nothing on the machine is
# changed: the PAM service, the bus and the daemon's state live in a
# temporary directory that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ "$(id -u)" -ne 0 ]; then echo "run the demo as root" >&2; exit 1; fi
. tests/lib/need-rust.sh
need_rust
need=()
for p in libpam0g-dev pamtester bubblewrap dbus-daemon; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "== building smsotpd and pam_sms.so (release; a first build takes about 10 minutes on 2 cores, then seconds)"
cargo build --release -p smsotpd -p pam_sms
bin=$root/target/release

demo=$(mktemp -d /tmp/smsotp-demo.XXXXXX)
chmod 700 "$demo"
cleanup() {
  [ -n "${daemon_pid:-}" ] && kill "$daemon_pid" 2>/dev/null || true
  [ -n "${bus_pid:-}" ] && kill "$bus_pid" 2>/dev/null || true
  rm -rf "$demo"
}
trap cleanup EXIT

# A private bus shaped like the system bus, with smsotp's shipped policy.
sed -e "s|@SOCKET@|$demo/bus|" -e "s|@POLICY@|$root/etc/dbus-1/org.smsotp.SmsOtp1.conf|" \
  "$root/tests/dbus/system.conf" > "$demo/bus.conf"
dbus-daemon --nofork --config-file="$demo/bus.conf" 2>/dev/null &
bus_pid=$!
bus="unix:path=$demo/bus"
for _ in $(seq 100); do [ -S "$demo/bus" ] && break; sleep 0.1; done

cat > "$demo/smsotpd.toml" <<TOML
version = 1
provider = "outbox"
state_directory = "$demo/state"
[outbox]
path = "$demo/outbox"
TOML
chmod 600 "$demo/smsotpd.toml"
echo "== starting smsotpd (provider \"outbox\")"
"$bin/smsotpd" --config "$demo/smsotpd.toml" --bus "$bus" --log stderr 2> "$demo/smsotpd.log" &
daemon_pid=$!
for _ in $(seq 100); do grep -q "ready on" "$demo/smsotpd.log" 2>/dev/null && break; sleep 0.1; done
grep -q "ready on" "$demo/smsotpd.log" || { cat "$demo/smsotpd.log"; exit 1; }

echo "== smsotpctl enroll root +15555550100"
"$bin/smsotpctl" --bus "$bus" enroll root +15555550100

mkdir "$demo/pam.d"
echo "auth required $bin/libpam_sms.so bus=$bus" > "$demo/pam.d/smsotp-demo"
echo "== PAM service smsotp-demo: $(cat "$demo/pam.d/smsotp-demo")"
echo "== pamtester smsotp-demo root authenticate"
echo
{
  # Play the user: wait for the SMS, read it, type the code.
  for _ in $(seq 200); do [ -s "$demo/outbox" ] && break; sleep 0.05; done
  sms=$(tail -n 1 "$demo/outbox")
  code=$(sed -n 's/.*body=\([0-9]*\).*/\1/p' <<< "$sms")
  printf '\n   [the SMS that would have been sent]\n   %s\n   [typing the code: %s]\n' "$sms" "$code" >&2
  echo "$code"
} | bwrap --bind / / --bind "$demo/pam.d" /etc/pam.d --dev /dev \
      stdbuf -o0 -e0 pamtester smsotp-demo root authenticate && status=0 || status=$?
echo
echo "== audit log (smsotpd)"
sed 's/^<[0-9]>//' "$demo/smsotpd.log"
exit $status
