#!/bin/sh
# GET /cgi-bin/visits: who answers, and how many times it has, counted in the /data volume.
count=$(( $(cat /data/visits 2>/dev/null || echo 0) + 1 ))
echo "$count" > /data/visits
printf 'Content-Type: application/json\r\n\r\n'
printf '{"service": "api", "host": "%s", "visits": %d}\n' "$(hostname)" "$count"
