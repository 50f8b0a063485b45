#!/usr/bin/env bash
# make_certs.sh DIR - test certificates for the TLS tests (openssl CLI, EC P-256).
#   ca, ca2                 two unrelated CAs
#   srv        (ca)         the broker: CN=localhost, SAN DNS:localhost IP:127.0.0.1
#   srv2       (ca2)        the broker after a certificate reload
#   srv_expired (ca)        valid January 2020 only
#   cli        (ca)         client "alice" (mutual TLS)
#   cli_other  (ca2)        client "mallory", signed by the wrong CA
#   cli_expired (ca)        client "bob", expired
set -euo pipefail
dir=$1
mkdir -p "$dir"
cd "$dir"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; chmod 600 "$1.key"; }
ca() {
    key "$1"
    openssl req -x509 -new -key "$1.key" -out "$1.pem" -days 30 -subj "/CN=$2" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
}
# leaf NAME CA CN EXT_LINES [START END]
leaf() {
    local name=$1 ca=$2 cn=$3 ext=$4
    key "$name"
    openssl req -new -key "$name.key" -out "$name.csr" -subj "/CN=$cn"
    printf '%b\n' "$ext" > "$name.ext"
    if [ $# -ge 6 ]; then
        # openssl ca is the 3.0 CLI's only way to set an explicit (past) validity.
        mkdir -p "ca-$ca"
        : > "ca-$ca/index.txt"
        [ -f "ca-$ca/serial" ] || echo 1000 > "ca-$ca/serial"
        cat > "ca-$ca/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
dir = ca-$ca
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $ca.pem
private_key = $ca.key
default_md = sha256
policy = p
copy_extensions = none
unique_subject = no
[p]
commonName = supplied
CNF
        openssl ca -batch -config "ca-$ca/ca.cnf" -in "$name.csr" -out "$name.pem" \
            -startdate "$5" -enddate "$6" -extfile "$name.ext" -notext 2>/dev/null
    else
        openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial \
            -out "$name.pem" -days 30 -extfile "$name.ext" 2>/dev/null
    fi
    rm -f "$name.csr" "$name.ext"
}
srv_ext='subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth'
cli_ext='extendedKeyUsage=clientAuth'
ca ca "Sluice Test CA"
ca ca2 "Other Test CA"
leaf srv ca localhost "$srv_ext"
leaf srv2 ca2 localhost "$srv_ext"
leaf srv_expired ca localhost "$srv_ext" 20200101000000Z 20200201000000Z
leaf cli ca alice "$cli_ext"
leaf cli_other ca2 mallory "$cli_ext"
leaf cli_expired ca bob "$cli_ext" 20200101000000Z 20200201000000Z
