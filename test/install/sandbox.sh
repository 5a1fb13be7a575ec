#!/usr/bin/env bash
# Runs a command the way examples/systemd/sluice.service runs its ExecStart, on a machine where
# systemd is not PID 1 (CI containers): in a private mount namespace (unshare --mount, as root)
# that shows the unit's file system, with the unit's restrictions applied by hand:
#
#   the files of an install at their real paths   overlays on /etc, /usr/local, /var/lib, /var/log
#                                                 (the host's copies are never written)
#   StateDirectory=, LogsDirectory=               host directories bound read-write at those paths,
#                                                 owned by the service user
#   ProtectSystem=strict                          every other mount re-mounted read-only
#   ProtectHome=true                              empty, inaccessible /root, /home, /run/user
#   PrivateTmp=true                               a fresh /tmp and /var/tmp
#   User=, NoNewPrivileges=true                   setpriv --reuid/--regid --clear-groups --no-new-privs
#   a service's environment                       env -i: systemd's PATH, HOME, and what is passed
#   WorkingDirectory (unset)                      /
#
# and the command is exec'd: its PID is this script's, so the caller signals it directly.
#
# Environment:
#   SANDBOX_PLACE      lines "copy|bind|link <dest> <source>": files and directories to show
#   SANDBOX_WRITABLE   lines "<dest> <host dir>": the unit's StateDirectory/LogsDirectory
#   SANDBOX_UID, SANDBOX_GID        the service user
#   SANDBOX_ENV        lines "NAME=value" for the service's environment (EnvironmentFile=)
#   SANDBOX_PROTECT_SYSTEM, SANDBOX_PROTECT_HOME, SANDBOX_PRIVATE_TMP, SANDBOX_NO_NEW_PRIVS: 1 to apply
# Arguments: the ExecStart command line, as the unit has it.
set -euo pipefail

if [[ "${SANDBOX_INSIDE:-}" != 1 ]]; then
  SANDBOX_INSIDE=1 exec unshare --mount --propagation private -- "$BASH" "$0" "$@"
fi

upper=$(mktemp -d "${TMPDIR:-/tmp}/sluice-sandbox-XXXXXX")
mount -t tmpfs -o mode=0755 sluice-sandbox "$upper"
for dir in /etc /usr/local /var/lib /var/log; do
  [[ -d $dir ]] || continue
  name=${dir//\//_}
  mkdir -p "$upper/$name/upper" "$upper/$name/work"
  mount -t overlay overlay -o "lowerdir=$dir,upperdir=$upper/$name/upper,workdir=$upper/$name/work" "$dir"
done

while read -r how dest source; do
  [[ -n ${how:-} ]] || continue
  mkdir -p "$(dirname "$dest")"
  case $how in
    copy) cp "$source" "$dest" && chmod a+r "$dest" ;;
    link) ln -sfn "$source" "$dest" ;;
    bind)
      if [[ -d $source ]]; then mkdir -p "$dest"; else : >"$dest"; fi
      mount --bind "$source" "$dest"
      ;;
    *) echo "sandbox: unknown placement $how" >&2 && exit 1 ;;
  esac
done <<<"${SANDBOX_PLACE:-}"

writable=()
while read -r dest source; do
  [[ -n ${dest:-} ]] || continue
  mkdir -p "$dest"
  chown "$SANDBOX_UID:$SANDBOX_GID" "$source"
  chmod 0750 "$source"
  mount --bind "$source" "$dest"
  writable+=("$dest")
done <<<"${SANDBOX_WRITABLE:-}"

if [[ "${SANDBOX_PROTECT_HOME:-}" == 1 ]]; then
  for dir in /root /home /run/user; do
    [[ -d $dir ]] && mount -t tmpfs -o ro,mode=0000 sluice-protect-home "$dir"
  done
fi

if [[ "${SANDBOX_PRIVATE_TMP:-}" == 1 ]]; then
  for dir in /tmp /var/tmp; do
    [[ -d $dir ]] && mount -t tmpfs -o mode=1777 sluice-private-tmp "$dir"
  done
fi

if [[ "${SANDBOX_PROTECT_SYSTEM:-}" == 1 ]]; then
  # Every mount but the API file systems, the writable directories and the private /tmp.
  keep=" ${writable[*]} "
  [[ "${SANDBOX_PRIVATE_TMP:-}" == 1 ]] && keep+=" /tmp /var/tmp "
  while read -r _ _ _ _ point _; do
    case $point in /proc | /proc/* | /sys | /sys/* | /dev | /dev/*) continue ;; esac
    [[ $keep == *" $point "* ]] && continue
    mount -o remount,bind,ro "$point" 2>/dev/null || true
  done </proc/self/mountinfo
fi

environment=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/var/lib/sluice LANG=C.UTF-8)
while IFS= read -r line; do
  [[ -n $line ]] && environment+=("$line")
done <<<"${SANDBOX_ENV:-}"

privileges=(--reuid "$SANDBOX_UID" --regid "$SANDBOX_GID" --clear-groups)
[[ "${SANDBOX_NO_NEW_PRIVS:-}" == 1 ]] && privileges+=(--no-new-privs)

cd /
exec setpriv "${privileges[@]}" -- env -i "${environment[@]}" "$@"
