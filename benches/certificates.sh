# Sourced by the HTTPS benches (tls.sh, serve_heap.sh): a throwaway CA and a leaf for localhost and
# 127.0.0.1, ECDSA P-256, made with the openssl CLI (`need_tools openssl:openssl` first). No key is
# checked in.

# make_certificates DIR: writes DIR/ca.crt, DIR/leaf.crt (the leaf then the CA) and DIR/leaf.key.
make_certificates() {
  local dir=$1
  local curve=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${curve[@]}" -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 2 \
    -subj "/CN=graceful bench CA" 2>/dev/null
  openssl req "${curve[@]}" -keyout "$dir/leaf.key" -out "$dir/leaf.csr" -subj "/CN=localhost" 2>/dev/null
  printf '%s\n' "subjectAltName = DNS:localhost, IP:127.0.0.1" "basicConstraints = CA:FALSE" \
    "keyUsage = digitalSignature" "extendedKeyUsage = serverAuth" > "$dir/leaf.ext"
  openssl x509 -req -in "$dir/leaf.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 2 -extfile "$dir/leaf.ext" -out "$dir/leaf.only.crt" 2>/dev/null
  cat "$dir/leaf.only.crt" "$dir/ca.crt" > "$dir/leaf.crt"
}
