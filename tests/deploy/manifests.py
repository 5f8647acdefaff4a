"""Reading what `kubectl kustomize` renders from deploy/kubernetes: objects by kind and name (generated
ConfigMaps and Secrets carry a hash suffix), containers, their environment, and schema validation."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import kubernetes_validate
import yaml

# The oldest Kubernetes whose schemas the manifests must satisfy.
SCHEMA_VERSION = "1.29"


def render(kubectl: str, directory: Path) -> list[dict]:
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def find(objects: list[dict], kind: str, name: str) -> dict:
    """One rendered object; generated ConfigMaps and Secrets carry a hash suffix after their name."""
    matches = [o for o in objects if o["kind"] == kind
               and (o["metadata"]["name"] == name or o["metadata"]["name"].rsplit("-", 1)[0] == name)]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered"
    return matches[0]


def container(objects: list[dict], deployment: str, name: str) -> dict:
    (found,) = [c for c in find(objects, "Deployment", deployment)["spec"]["template"]["spec"]["containers"]
                if c["name"] == name]
    return found


def data_of(obj: dict) -> dict[str, str]:
    """A ConfigMap's data (the object's own dict, so tests can break it), or a Secret's decoded."""
    if obj["kind"] == "Secret":
        return {key: base64.b64decode(value).decode() for key, value in obj["data"].items()}
    return obj["data"]


def config_data(objects: list[dict], kind: str, name: str) -> dict[str, str]:
    return data_of(find(objects, kind, name))


def by_name(objects: list[dict], kind: str, rendered_name: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == rendered_name]
    return found


def environment(objects: list[dict], deployment: str, name: str) -> dict[str, str]:
    """What a container's environment holds: envFrom ConfigMaps and Secrets, then literal env values."""
    spec = container(objects, deployment, name)
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        kind, ref = ("ConfigMap", source["configMapRef"]) if "configMapRef" in source else ("Secret", source["secretRef"])
        env.update(data_of(by_name(objects, kind, ref["name"])))
    env.update({item["name"]: item["value"] for item in spec.get("env", []) if "value" in item})
    return env


def proxies(objects: list[dict]) -> list[dict]:
    return json.loads(config_data(objects, "ConfigMap", "toxiproxy-config")["toxiproxy.json"])


def service_ports(objects: list[dict]) -> dict[str, set[int]]:
    return {o["metadata"]["name"]: {p["port"] for p in o["spec"].get("ports", [])} for o in objects if o["kind"] == "Service"}


def invalid_objects(objects: list[dict]) -> list[str]:
    """Every object the Kubernetes schemas refuse (strict: unknown fields too), with the reason."""
    problems = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True)
        except (kubernetes_validate.ValidationError, kubernetes_validate.SchemaNotFoundError) as exc:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc}")
    return problems
