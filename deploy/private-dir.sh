# Sourced by ./just and deploy/setup.sh (which define `die`).
# private_dir DIR...: directories only this user can use. A missing one is made 0700; an existing
# one must be a directory (not a link) owned by this user, and is tightened to 0700; one that
# belongs to somebody else is refused (in /var/tmp another local user could have made it first,
# and planted a tool, a download or a build artefact in it).
private_dir() {
  local d
  for d; do
    if [ -e "$d" ] || [ -L "$d" ]; then
      [ -d "$d" ] && [ ! -L "$d" ] || die "$d is not a directory; refusing it"
      [ "$(stat -c %u "$d")" = "$(id -u)" ] \
        || die "$d belongs to uid $(stat -c %u "$d"), not to this user (uid $(id -u)); refusing it"
      chmod 700 "$d"
    else
      install -d -m 0700 "$d"
    fi
  done
}
