#!/bin/sh
# Accounts of the sandbox image (kept in step with src/runtime/identity.ts):
#   10001            the session's PID 1 (never runs server code)
#   100000..100999   one uid/gid per managed server ("slot"); no files in the image belong to them.
# Entries exist so that tools which look up the current user (getpwuid, os.userInfo) work.
set -eu
echo 'mcpbox:x:10001:10001:mcp-box session:/nonexistent:/usr/sbin/nologin' >> /etc/passwd
echo 'mcpbox:x:10001:' >> /etc/group
i=0
while [ "$i" -lt 1000 ]; do
  uid=$((100000 + i))
  echo "mcp$i:x:$uid:$uid:mcp-box server slot $i:/nonexistent:/usr/sbin/nologin" >> /etc/passwd
  echo "mcp$i:x:$uid:" >> /etc/group
  i=$((i + 1))
done
