#!/bin/sh
# sluice_ini.sh SLUICED INI - deploy/sluice.ini lists every setting with its default.
#
# Compares `sluiced --print-config` (the built-in defaults) with `sluiced --config INI
# --print-config`: every setting must come from the file (FILE:LINE), with the default's
# value, or, on a line ending in "; default: X", a deployment value with X the default.
# Each setting line must follow a comment line (its explanation). sluiced itself refuses
# unknown keys, so the file cannot list a setting that does not exist.
set -eu
SLUICED="$1"
INI="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# No SLUICE_* variable of the caller may colour either side.
env -i PATH="$PATH" "$SLUICED" --print-config >"$tmp/defaults"
env -i PATH="$PATH" "$SLUICED" --config "$INI" --print-config >"$tmp/file"

# name, value, source (separated by US) from print-config's "name = value   ; source"
settings() {
    awk '/^[a-z_0-9]+ =/ {
        line = $0; name = $1
        src = line; sub(/^[^;]*; /, "", src)
        val = line; sub(/^[^=]*= ?/, "", val); sub(/ *;.*$/, "", val)
        printf "%s\037%s\037%s\n", name, val, src
    }' "$1"
}
settings "$tmp/defaults" >"$tmp/d.tsv"
settings "$tmp/file" >"$tmp/f.tsv"
# name, annotated default, previous line is a comment (1/0), from the INI itself
awk '/^[a-z_0-9]+ *=/ {
        ann = ""
        if (match($0, /; default: .*$/)) { ann = substr($0, RSTART + 11); sub(/ +$/, "", ann) }
        printf "%s\037%s\037%d\n", $1, ann, prev ~ /^;/
    }
    { prev = $0 }' "$INI" >"$tmp/ini.tsv"

fail=0
count=0
US="$(printf '\037')" # field separator: unlike a tab, never merged when a field is empty
while IFS="$US" read -r name def_val def_src; do
    count=$((count + 1))
    line="$(awk -F "$US" -v n="$name" '$1 == n' "$tmp/f.tsv")"
    f_val="$(printf '%s' "$line" | cut -d "$US" -f2)"
    f_src="$(printf '%s' "$line" | cut -d "$US" -f3)"
    ann="$(awk -F "$US" -v n="$name" '$1 == n { print $2 }' "$tmp/ini.tsv")"
    commented="$(awk -F "$US" -v n="$name" '$1 == n { print $3 }' "$tmp/ini.tsv")"
    case "$f_src" in
    "$INI":[0-9]*) ;;
    *)
        echo "$INI does not set $name (default $def_val): add it with its default" >&2
        fail=1
        continue
        ;;
    esac
    if [ "$commented" != 1 ]; then
        echo "$f_src: $name has no explanation on the line above it" >&2
        fail=1
    fi
    if [ -n "$ann" ]; then
        if [ "$ann" != "$def_val" ]; then
            echo "$f_src: $name says \"default: $ann\" but the default is $def_val" >&2
            fail=1
        fi
    elif [ "$f_val" != "$def_val" ]; then
        echo "$f_src: $name = $f_val but the default is $def_val" \
            "(write the default, or end the line with \"; default: $def_val\")" >&2
        fail=1
    fi
done <"$tmp/d.tsv"
[ "$count" -gt 0 ] || { echo "no settings in sluiced --print-config" >&2; exit 1; }
if [ $fail -ne 0 ]; then
    echo "FAILED: $INI and sluiced's defaults differ" >&2
    exit 1
fi
echo "$INI: all $count settings listed with their defaults"
