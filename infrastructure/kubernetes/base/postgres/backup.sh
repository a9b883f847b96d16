#!/bin/bash
# Logical backup of every service's schema, one directory per run, in the format of
# `vivesphere backup` (a custom-format pg_dump per schema, manifest.json with migration
# levels, sizes and SHA-256), so `vivesphere restore --from DIR --database-url URL` restores
# it. Connection from the PG* environment (PGHOST, PGDATABASE, PGUSER, and PGPASSWORD or
# PGPASSWORD_FILE, a mounted Secret's file); runs inside the postgres image, which has
# pg_dump, psql and coreutils.
#   BACKUP_ROOT  where the runs go (default /backups)
#   BACKUP_KEEP  how many runs to keep (default 7)
#   VIVESPHERE_VERSION  written into the manifest
set -euo pipefail
if [[ -n "${PGPASSWORD_FILE:-}" ]]; then
  PGPASSWORD="$(<"$PGPASSWORD_FILE")"
  export PGPASSWORD
fi
root="${BACKUP_ROOT:-/backups}"
keep="${BACKUP_KEEP:-7}"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
run="$root/$stamp"
mkdir -p "$run.partial"
files=()
for service in authentication bot_manager configuration logging secure_bot_data; do
  level="$(psql -X -Atq -v ON_ERROR_STOP=1 -c \
    "SELECT COALESCE(MAX(version), 0) FROM \"$service\"._sqlx_migrations WHERE success")"
  pg_dump --format=custom --schema="$service" --no-owner --no-privileges \
    --file="$run.partial/$service.pgdump"
  bytes="$(stat -c %s "$run.partial/$service.pgdump")"
  sum="$(sha256sum "$run.partial/$service.pgdump" | cut -d' ' -f1)"
  files+=("{\"service\":\"$service\",\"file\":\"$service.pgdump\",\"bytes\":$bytes,\"sha256\":\"$sum\",\"migration_level\":$level}")
done
joined="$(IFS=,; echo "${files[*]}")"
printf '{"format":1,"vivesphere_version":"%s","created_at":"%s","backend":"postgres","files":[%s],"kept_apart":["the Secrets botdata-kek, authentication-keys, logging-keys and vivesphere-service-clients: back them up apart (docs/operations.md)"]}\n' \
  "${VIVESPHERE_VERSION:-unknown}" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$joined" \
  >"$run.partial/manifest.json"
# Complete runs only carry their final name.
mv "$run.partial" "$run"
echo "backup written to $run"
# The newest $keep runs stay; older ones and abandoned partial runs go.
find "$root" -mindepth 1 -maxdepth 1 -name '*.partial' -mmin +60 -exec rm -rf {} +
find "$root" -mindepth 1 -maxdepth 1 -name '*Z' | sort | head -n "-$keep" | xargs -r rm -rf
