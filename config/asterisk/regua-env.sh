#!/bin/sh
# Prints the parts of manager.conf / pjsip.conf that come from the environment.
# Asterisk runs it through #exec (execincludes = yes in asterisk.conf).
case "$1" in
manager)
  cat <<CONF
[${AMI_USER:-regua}]
secret = ${AMI_SECRET:?set AMI_SECRET}
deny = 0.0.0.0/0.0.0.0
permit = ${AMI_PERMIT:-127.0.0.1/255.255.255.255}
read = call,user,system
write = originate,call,system
; only the events Régua correlates calls with, selected by name (a hash: cheap for
; Asterisk, unlike a regular expression run over every event's text)
eventfilter(action(include),name(Newstate)) =
eventfilter(action(include),name(Hangup)) =
eventfilter(action(include),name(OriginateResponse)) =
eventfilter(action(include),name(UserEvent)) =
eventfilter(action(include),name(FullyBooted)) =
eventfilter(action(include),name(CoreShowChannel)) =
eventfilter(action(include),name(CoreShowChannelsComplete)) =
CONF
  ;;
pjsip)
  if [ -z "$TRUNK_HOST" ]; then
    echo "; no SIP trunk: TRUNK_HOST is not set"
    exit 0
  fi
  cat <<CONF
[trunk]
type = endpoint
context = regua-trunk-inbound
disallow = all
allow = ulaw,alaw
outbound_auth = trunk-auth
aors = trunk
from_domain = ${TRUNK_FROM_DOMAIN:-$TRUNK_HOST}
from_user = ${TRUNK_USER:-}
dtmf_mode = rfc4733
direct_media = no
send_pai = yes

[trunk-auth]
type = auth
auth_type = userpass
username = ${TRUNK_USER:-}
password = ${TRUNK_PASSWORD:-}

[trunk]
type = aor
contact = sip:${TRUNK_HOST}:${TRUNK_PORT:-5060}

[trunk]
type = identify
endpoint = trunk
match = ${TRUNK_HOST}
CONF
  if [ "${TRUNK_REGISTER:-no}" = "yes" ]; then
    cat <<CONF

[trunk-reg]
type = registration
outbound_auth = trunk-auth
server_uri = sip:${TRUNK_HOST}:${TRUNK_PORT:-5060}
client_uri = sip:${TRUNK_USER}@${TRUNK_HOST}
retry_interval = 60
CONF
  fi
  ;;
esac
