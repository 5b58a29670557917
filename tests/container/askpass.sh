#!/usr/bin/env bash
# SSH_ASKPASS for the container tests. ssh (with SSH_ASKPASS_REQUIRE=force)
# runs this once per keyboard-interactive prompt, the prompt in $1, and
# sends what it prints (Enter for pam_sms's closing "(press Enter)" prompt). Every prompt is appended to $SMSOTP_PROMPT_LOG.
#   SMSOTP_PASSWORD   the answer to "Password:"
#   SMSOTP_SMS_LOG    the fake Twilio's SMS file (one "<to>\t<body>" per SMS)
#   SMSOTP_SMS_SEEN   SMS in that file before this login; the code is in the next
#   SMSOTP_ANSWER     right | wrong (the right code + 1) | none (refuse the prompt)
set -u
prompt=${1-}
printf '%s\n' "$prompt" >> "$SMSOTP_PROMPT_LOG"
case "$prompt" in
  *"Password:"*)
    printf '%s\n' "$SMSOTP_PASSWORD" ;;
  *"SMS code:"*)
    [ "$SMSOTP_ANSWER" = none ] && exit 1
    want=$((SMSOTP_SMS_SEEN + 1))
    for _ in $(seq 200); do
      [ "$(wc -l < "$SMSOTP_SMS_LOG" 2>/dev/null || echo 0)" -ge "$want" ] && break
      sleep 0.1
    done
    code=$(sed -n "${want}p" "$SMSOTP_SMS_LOG" | cut -f2 | grep -o '[0-9]\{6,\}' | head -1)
    [ -n "$code" ] || { echo "askpass: no SMS number $want in $SMSOTP_SMS_LOG" >&2; exit 1; }
    if [ "$SMSOTP_ANSWER" = wrong ]; then
      code=$(printf '%0*d' "${#code}" $(( (10#$code + 1) % 10**${#code} )))
    fi
    printf '%s\n' "$code" ;;
  *"(press Enter)"*)
    # pam_sms's last prompt, which carries the message that ends a login.
    printf '\n' ;;
  *)
    echo "askpass: unexpected prompt: $prompt" >&2
    exit 1 ;;
esac
