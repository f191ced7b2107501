#!/bin/sh
# Creates every stream from its definition, or updates it to the definition: safe to run on
# every deploy. Runs in nats-box as the `streams` NATS user, which may do nothing else.
# An update that JetStream refuses (a changed storage type, fewer replicas than the data
# needs) fails the Job loudly instead of being forced.
set -eu
# NATS_URL, NATS_USER, NATS_PASSWORD (and NATS_CA with TLS) come from the environment.
nats() { command nats --inbox-prefix "$NATS_INBOX_PREFIX" "$@"; }
for definition in /streams/*.json; do
  name=$(basename "$definition" .json)
  wanted="/tmp/$name.json"
  # The definitions say 3 replicas; a single development server holds 1.
  sed "s/\"num_replicas\": 3/\"num_replicas\": ${NATS_STREAM_REPLICAS}/" "$definition" > "$wanted"
  if nats stream info "$name" > /dev/null 2>&1; then
    nats stream edit "$name" --config "$wanted" --force
    echo "stream $name: up to date"
  else
    nats stream add "$name" --config "$wanted"
    echo "stream $name: created"
  fi
done
