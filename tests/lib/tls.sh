# tests/lib/tls.sh — sourced by the tests and scripts that need TLS certificates (tests/node_tls.sh,
# ci/bench): a throwaway CA and certificates made with the openssl command line (OpenSSL 3.0),
# EC P-256 keys (fast to make), in a directory the caller owns.
#
#   tls_ca DIR NAME                 DIR/NAME.crt, DIR/NAME.key: a self-signed CA
#   tls_cert DIR CA NAME CN [SAN]   DIR/NAME.crt, DIR/NAME.key: signed by DIR/CA, valid for a
#                                   year; SAN defaults to DNS:CN,IP:127.0.0.1
#   tls_cert_expired DIR CA NAME CN the same, but valid only in January 2020 (openssl ca
#                                   -startdate/-enddate: `x509 -days` cannot go negative)

tls_ca() {
    local dir=$1 name=$2
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout "$dir/$name.key" -out "$dir/$name.crt" -days 3650 -subj "/CN=$name" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        2>/dev/null
}

tls_csr() {
    local dir=$1 name=$2 cn=$3 san=${4:-DNS:$3,IP:127.0.0.1}
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$cn" \
        -addext "subjectAltName=$san" 2>/dev/null
}

tls_cert() {
    local dir=$1 ca=$2 name=$3 cn=$4 san=${5:-DNS:$4,IP:127.0.0.1}
    tls_csr "$dir" "$name" "$cn" "$san" &&
        openssl x509 -req -in "$dir/$name.csr" -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" \
            -CAcreateserial -out "$dir/$name.crt" -days 365 -copy_extensions copy 2>/dev/null
}

tls_cert_expired() {
    local dir=$1 ca=$2 name=$3 cn=$4
    local cadir="$dir/ca-$ca"
    mkdir -p "$cadir/new"
    : >"$cadir/index.txt"
    echo 1000 >"$cadir/serial"
    cat >"$cadir/ca.cnf" <<EOF
[ ca ]
default_ca = rk
[ rk ]
database = $cadir/index.txt
new_certs_dir = $cadir/new
serial = $cadir/serial
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[ any ]
commonName = supplied
EOF
    tls_csr "$dir" "$name" "$cn" &&
        openssl ca -batch -config "$cadir/ca.cnf" -cert "$dir/$ca.crt" -keyfile "$dir/$ca.key" \
            -in "$dir/$name.csr" -out "$dir/$name.crt" -notext \
            -startdate 20200101000000Z -enddate 20200201000000Z 2>/dev/null
}
