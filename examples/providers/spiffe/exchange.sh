#!/usr/bin/env sh
# A workload in the prod.example.org SPIFFE mesh trades its JWT-SVID for a short-lived Ferry
# credential: one call to its SPIRE agent (Workload API), one HTTP call to the broker.
# Needs: spire-agent (the CLI talks to the agent's socket), curl, jq. No secret is stored.
set -eu

FERRY_URL="${FERRY_URL:-http://127.0.0.1:8080}"          # the broker's public URL = the SVID audience
AGENT_SOCKET="${AGENT_SOCKET:-/run/spire/sockets/agent.sock}"
AUDIENCE="${AUDIENCE:-https://payments.acme.internal}"  # the credential's audience (grant.audience)
SCOPE="${SCOPE:-deploy:payments}"

# 1. The SPIRE helper call: a JWT-SVID addressed to the broker (sub = this workload's SPIFFE ID).
SVID="$(spire-agent api fetch jwt -audience "$FERRY_URL" -socketPath "$AGENT_SOCKET" -output json \
  | jq -r '.[0].svids[0].svid')"

# 2. The one HTTP call: RFC 8693 token exchange.
curl -sS --fail-with-body "$FERRY_URL/token" \
  -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
  -d subject_token_type=urn:ietf:params:oauth:token-type:jwt \
  --data-urlencode "subject_token=$SVID" \
  -d audience="$AUDIENCE" \
  -d scope="$SCOPE" \
  | jq -r .access_token
