#!/bin/sh
# Copy the repository's Prometheus rules and Grafana dashboards and provisioning into base/: kustomize
# reads files only from inside its root, so deploy/kubernetes/base keeps copies of them.
# tests/deploy/test_kubernetes.py fails when a copy differs from dashboards/; run this, then commit.
set -eu
here=$(cd "$(dirname "$0")" && pwd)/base
source="$here/../../../dashboards"
# Start clean, so a file removed from dashboards/ goes here too.
rm -f "$here"/prometheus/*.rules.yml "$here"/grafana/dashboards/*.json "$here"/grafana/provisioning/*/*.yml
cp "$source"/prometheus/rules/*.rules.yml "$here/prometheus/"
cp "$source"/grafana/dashboards/*.json "$here/grafana/dashboards/"
cp "$source"/grafana/provisioning/datasources/*.yml "$here/grafana/provisioning/datasources/"
cp "$source"/grafana/provisioning/dashboards/*.yml "$here/grafana/provisioning/dashboards/"
echo "copied dashboards/ into $here"
