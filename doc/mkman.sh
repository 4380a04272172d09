#!/bin/sh
# mkman.sh SCDOC PAGE.scd VERSION UNITDIR PLUGINDIR: the man page on stdout.
# The @COW_...@ placeholders of the page are filled in, SCDOC makes the
# roff, and hyphenation goes off after .TH (which turns it back on), so
# that no option name is broken at the end of a line.
set -eu
scdoc=$1 in=$2 version=$3 unitdir=$4 plugindir=$5
tmp=$(mktemp)
trap 'rm -f "$tmp" "$tmp.roff"' EXIT
sed -e "s|@COW_VERSION@|$version|g" -e "s|@COW_UNITDIR@|$unitdir|g" -e "s|@COW_PLUGINDIR@|$plugindir|g" "$in" >"$tmp"
"$scdoc" <"$tmp" >"$tmp.roff"
sed '/^\.TH /a .nh' "$tmp.roff"
