#!/usr/bin/env bash
# Test certificates as the pki-distributor makes them (EC P-256, SAN
# 127.0.0.1, serverAuth + clientAuth, key usage digitalSignature) for the
# benchmarks' TLS modes: DIR/ca-cert.pem and, per NAME, DIR/NAME-cert.pem and
# DIR/NAME-key.pem. Made with openssl; valid for a day.
#   bench/test-pki.sh DIR NAME...
set -euo pipefail
dir="$1"; shift
mkdir -p "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
  -keyout "$dir/ca-key.pem" -out "$dir/ca-cert.pem" 2>/dev/null
for who in "$@"; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=bench-$who" \
    -keyout "$dir/$who-key.pem" -out "$dir/$who.csr" 2>/dev/null
  openssl x509 -req -in "$dir/$who.csr" -CA "$dir/ca-cert.pem" -CAkey "$dir/ca-key.pem" \
    -CAcreateserial -days 1 -out "$dir/$who-cert.pem" \
    -extfile <(printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature\n') 2>/dev/null
done
