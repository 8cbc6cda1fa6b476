# Certificates, keys, tokens and kubeconfigs of the local cluster. Sourced by up.sh.
# Made once per state folder and kept, so a warm start signs nothing.
# shellcheck shell=bash

PKI=$STATE/pki

# sign NAME SUBJECT EXTENSIONS [CA]: a P-256 key and a certificate signed by CA (default ca).
sign() {
  local name=$1 subject=$2 ext=$3 ca=${4:-ca}
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$PKI/$name.key" -subj "$subject" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" \
    -CAcreateserial -days 3650 -out "$PKI/$name.crt" -extfile <(printf '%s\n' "$ext") 2>/dev/null
  rm -f "$PKI/$name.csr"
}

new_ca() {
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout "$PKI/$1.key" -out "$PKI/$1.crt" -days 3650 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

ensure_pki() {
  [[ -s $PKI/tokens.csv ]] && return
  log "making certificates and tokens in $PKI"
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  new_ca ca bereit-local-ca
  new_ca front-proxy-ca bereit-local-front-proxy-ca
  local sans="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
  sans+=",DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost"
  sans+=",IP:127.0.0.1,IP:$NODE_IP,IP:$KUBERNETES_SERVICE_IP"
  sign apiserver "/CN=kube-apiserver" \
    "subjectAltName=$sans
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment"
  # The API server's identity towards kubelets (logs, exec, port-forward).
  sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" \
    "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature,keyEncipherment"
  # The API server's identity towards aggregated APIs (metrics-server).
  sign front-proxy-client "/CN=front-proxy-client" \
    "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature,keyEncipherment" front-proxy-ca
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
  openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  # Static bearer tokens: one per component, named as the RBAC bootstrap policy expects.
  {
    echo "$(new_token),bereit-admin,bereit-admin,\"system:masters\""
    echo "$(new_token),system:kube-controller-manager,system:kube-controller-manager"
    echo "$(new_token),system:kube-scheduler,system:kube-scheduler"
    echo "$(new_token),system:node:$NODE_NAME,system:node:$NODE_NAME,\"system:nodes\""
    echo "$(new_token),system:kube-proxy,system:kube-proxy"
  } >"$PKI/tokens.csv.tmp"
  mv "$PKI/tokens.csv.tmp" "$PKI/tokens.csv"
}

new_token() { openssl rand -hex 24; }

token_of() { awk -F, -v u="$1" '$2 == u { print $1 }' "$PKI/tokens.csv"; }

# write_kubeconfig FILE SERVER USER: a kubeconfig with the CA embedded, so it can be copied.
write_kubeconfig() {
  local file=$1 server=$2 user=$3
  write_file "$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: bereit-local
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $user
  user:
    token: $(token_of "$user")
contexts:
- name: bereit-local
  context:
    cluster: bereit-local
    user: $user
current-context: bereit-local
EOF
}
