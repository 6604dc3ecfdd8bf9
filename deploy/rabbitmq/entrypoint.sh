#!/bin/sh
# Entry point of each RabbitMQ node in deploy/compose.yaml (bind-mounted; the image is the one
# deploy/rabbitmq/build-image.sh makes for the tests too). Started as root: installs the shared
# Erlang cookie from the root-only secret file where the server and rabbitmqctl look for it,
# gives the data volume to the rabbitmq user, then runs the server as rabbitmq.
set -eu
COOKIE_SECRET=/run/edxml-hub-secrets/erlang-cookie
[ -s "$COOKIE_SECRET" ] || { echo "rabbitmq entrypoint: $COOKIE_SECRET is missing or empty" >&2; exit 3; }
install -m 0400 -o rabbitmq -g rabbitmq "$COOKIE_SECRET" /var/lib/rabbitmq/.erlang.cookie
chown rabbitmq:rabbitmq /var/lib/rabbitmq
# Definitions (accounts with hashed passwords) are a secret too: readable by rabbitmq only.
if [ -f /run/edxml-hub-secrets/definitions.json ]; then
    install -m 0400 -o rabbitmq -g rabbitmq /run/edxml-hub-secrets/definitions.json /etc/rabbitmq/definitions.json
fi
exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups env HOME=/var/lib/rabbitmq \
    /usr/lib/rabbitmq/bin/rabbitmq-server
