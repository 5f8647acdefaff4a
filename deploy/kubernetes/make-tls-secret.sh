#!/bin/sh
# A throwaway CA and a certificate for the FAL emulator, printed as the genchaos-tls Secret:
#
#   deploy/kubernetes/make-tls-secret.sh [DIR] | kubectl apply -f -
#
# The certificate names 127.0.0.1 and localhost (the service reaches the emulator through its Toxiproxy
# sidecar, and `genchaos run` through a port-forward) and the emulator's in-cluster names (the Locust
# master calls its admin API). The files stay in DIR (default reports/kubernetes-tls, which git and
# the image build ignore): DIR/ca-bundle.pem is the ca_bundle of stack.example.json. PYTHON is an
# interpreter with trustme and certifi (default: .venv/bin/python, else python3).
set -eu
dir=${1:-reports/kubernetes-tls}
namespace=${NAMESPACE:-genchaos}
python=${PYTHON:-}
if [ -z "$python" ]; then
    if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi
mkdir -p "$dir"
"$python" -m trustme --quiet --dir "$dir" --identities 127.0.0.1 localhost fal-emulator \
    "fal-emulator.$namespace" "fal-emulator.$namespace.svc" "fal-emulator.$namespace.svc.cluster.local"
# trustme writes client.pem (the CA), server.pem and server.key. SSL_CERT_FILE replaces the trust store,
# so the bundle is the CA plus the usual public roots.
cat "$dir/client.pem" "$("$python" -m certifi)" > "$dir/ca-bundle.pem"
kubectl create secret generic genchaos-tls --namespace "$namespace" --dry-run=client --output yaml \
    --from-file=ca.pem="$dir/client.pem" --from-file=ca-bundle.pem="$dir/ca-bundle.pem" \
    --from-file=server.pem="$dir/server.pem" --from-file=server-key.pem="$dir/server.key"
