"""deploy/kubernetes: the manifests render with kubectl's kustomize, every object validates against the
Kubernetes schemas offline, and the service reaches its dependencies only through its Toxiproxy sidecar,
the way the embedded stack wires it; overlays/your-service runs a service of the user's own (lumen, as
the example) with its contract's variables, and nothing of the reference service is left in it. Each
check is also shown failing on a broken copy."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography import x509

from chaos.contract import launch
from chaos.contract.model import load_contract
from chaos.stack.embedded import StackInfo
from chaos.stack.faults import PROXY_NAMES
from service.app import create_app
from service.settings import Settings
from tests.deploy.manifests import (
    config_data,
    container,
    environment,
    find,
    invalid_objects,
    proxies,
    render,
    service_ports,
)
from tests.support import require_tool

REPO = Path(__file__).resolve().parents[2]
KUBERNETES = REPO / "deploy" / "kubernetes"
BASE = KUBERNETES / "base"
REAL_ENDPOINTS = KUBERNETES / "overlays" / "real-endpoints"
YOUR_SERVICE = KUBERNETES / "overlays" / "your-service"
LUMEN_CONTRACT = REPO / "examples" / "lumen" / "genchaos.yaml"
DASHBOARDS = REPO / "dashboards"
DOCS = REPO / "docs" / "kubernetes.md"
STACK_FILES = {"port-forward": KUBERNETES / "stack.example.json", "in-cluster": BASE / "stack.in-cluster.json"}
DEPENDENCY_SERVICES = ("postgres", "fal-emulator", "storage-emulator")


@pytest.fixture(scope="module")
def kubectl() -> str:
    return require_tool("kubectl")


@pytest.fixture(scope="module")
def objects(kubectl) -> list[dict]:
    return render(kubectl, KUBERNETES)


def wiring_problems(objects: list[dict]) -> list[str]:
    """Where the service could reach a dependency other than through its sidecar's proxies."""
    problems = []
    listen_ports = {proxy["listen"].rsplit(":", 1)[1] for proxy in proxies(objects)}
    env = environment(objects, "genchaos-service", "service")
    for key, value in env.items():
        for dependency in DEPENDENCY_SERVICES:
            if re.search(rf"(?:^|[@/\s]){re.escape(dependency)}(?=[:/\s]|$)", value):
                problems.append(f"{key} names {dependency} directly")
    used_ports = set(re.findall(r"127\.0\.0\.1:(\d+)", " ".join(env.values())))
    if used_ports != listen_ports:
        problems.append(f"the service uses 127.0.0.1 ports {sorted(used_ports)}, the proxies listen on {sorted(listen_ports)}")
    ports = service_ports(objects)
    for proxy in proxies(objects):
        host, port = proxy["upstream"].rsplit(":", 1)
        if int(port) not in ports.get(host, set()):
            problems.append(f"proxy {proxy['name']} dials {proxy['upstream']}, which no Service offers")
    return problems


def copy_drift(objects: list[dict]) -> list[str]:
    """Where the rendered Prometheus and Grafana ConfigMaps differ from the repository's dashboards/."""
    expected = {
        "prometheus-config": {p.name: p for p in (DASHBOARDS / "prometheus" / "rules").glob("*.yml")},
        "grafana-dashboards": {p.name: p for p in (DASHBOARDS / "grafana" / "dashboards").glob("*.json")},
        "grafana-datasources": {p.name: p for p in (DASHBOARDS / "grafana" / "provisioning" / "datasources").glob("*.yml")},
        "grafana-dashboard-providers": {p.name: p
                                        for p in (DASHBOARDS / "grafana" / "provisioning" / "dashboards").glob("*.yml")},
    }
    problems = []
    for config_map, files in expected.items():
        data = config_data(objects, "ConfigMap", config_map)
        extra = set(data) - set(files) - {"prometheus.yml"}
        for name, path in files.items():
            if name not in data:
                problems.append(f"{config_map} lacks {name}")
            elif data[name] != path.read_text():
                problems.append(f"{config_map}'s {name} differs from {path.relative_to(REPO)}")
        problems += [f"{config_map} holds {name}, which dashboards/ does not" for name in sorted(extra)]
    return problems


def stack_file_problems(name: str, stack: StackInfo, objects: list[dict]) -> list[str]:
    """Where a stack file disagrees with the service it describes (secrets, profile, timing)."""
    env = environment(objects, "genchaos-service", "service")
    expected = {"jwt_secret": env["GENCHAOS_SUPABASE_JWT_SECRET"], "jwt_issuer": env["GENCHAOS_SUPABASE_JWT_ISSUER"],
                "service_key": env["GENCHAOS_SUPABASE_SERVICE_KEY"], "fal_key": env["FAL_KEY"],
                "profile": env["GENCHAOS_PROFILE"], "timing": env["GENCHAOS_TIMING"],
                "database_url": env["GENCHAOS_DATABASE_URL"]}
    return [f"{name} stack file: {field} is {getattr(stack, field)!r}, the service runs with {value!r}"
            for field, value in expected.items() if getattr(stack, field) != value]


def test_the_stack_renders_with_every_part(objects):
    rendered = {(o["kind"], o["metadata"]["name"]) for o in objects}
    workloads = {("Deployment", name) for name in ("genchaos-service", "fal-emulator", "storage-emulator",
                                                   "locust-master", "locust-worker", "prometheus", "grafana")}
    services = {("Service", name) for name in ("genchaos-service", "postgres", "fal-emulator", "storage-emulator",
                                               "locust-master", "prometheus", "grafana")}
    assert workloads | services | {("Namespace", "genchaos"), ("StatefulSet", "postgres")} <= rendered
    for obj in objects:
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "genchaos", obj["metadata"]["name"]
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "genchaos", obj["metadata"]["name"]


@pytest.mark.parametrize("directory", [KUBERNETES, REAL_ENDPOINTS, YOUR_SERVICE],
                         ids=["emulators", "real-endpoints", "your-service"])
def test_every_rendered_object_validates_against_the_kubernetes_schemas(kubectl, directory):
    assert invalid_objects(render(kubectl, directory)) == []


def test_a_broken_manifest_fails_validation(kubectl, tmp_path):
    """The validation above can fail: a misspelt probe field is refused, naming the object."""
    copy = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES, copy)
    manifest = copy / "base" / "genchaos-service.yaml"
    manifest.write_text(manifest.read_text().replace("readinessProbe:", "readinesProbe:", 1))
    problems = invalid_objects(render(kubectl, copy))
    assert len(problems) == 1
    assert problems[0].startswith("Deployment/genchaos-service") and "readinesProbe" in problems[0]


def test_toxiproxy_sidecar_serves_the_embedded_stack_s_proxies_with_metrics(objects):
    assert {proxy["name"] for proxy in proxies(objects)} == set(PROXY_NAMES)
    assert all(proxy["enabled"] and proxy["listen"].startswith("127.0.0.1:") for proxy in proxies(objects))
    sidecar = container(objects, "genchaos-service", "toxiproxy")
    assert sidecar["image"] == "ghcr.io/shopify/toxiproxy:2.12.0"
    assert {"-config=/config/toxiproxy.json", "-proxy-metrics", "-runtime-metrics", "-host=0.0.0.0"} <= set(sidecar["args"])
    assert {m["mountPath"]: m["name"] for m in sidecar["volumeMounts"]} == {"/config": "toxiproxy-config"}


def test_service_reaches_dependencies_only_through_the_sidecar(objects):
    assert wiring_problems(objects) == []


@pytest.mark.parametrize("directory", [KUBERNETES, REAL_ENDPOINTS], ids=["emulators", "real-endpoints"])
def test_the_service_accepts_its_rendered_settings(kubectl, directory, monkeypatch):
    """The settings ConfigMap plus credentials under the keys the service is given (the overlay's are the
    user's own, named by real-credentials.env.example) make a valid configuration."""
    objects = render(kubectl, directory)
    example = (REAL_ENDPOINTS / "real-credentials.env.example").read_text().splitlines()
    credential_keys = {line.split("=", 1)[0] for line in example if "=" in line and not line.startswith("#")}
    assert credential_keys == set(config_data(render(kubectl, KUBERNETES), "Secret", "genchaos-credentials"))
    for key in credential_keys:
        monkeypatch.setenv(key, "postgresql://u@127.0.0.1:15432/d" if key == "GENCHAOS_DATABASE_URL" else "x" * 32)  # HS256 secrets are 32 bytes or more
    settings_map = config_data(objects, "ConfigMap", "genchaos-service-settings")
    for key, value in settings_map.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert (settings.profile, settings.timing) == (settings_map["GENCHAOS_PROFILE"], settings_map["GENCHAOS_TIMING"])


def test_emulators_accept_the_credentials_the_service_sends(objects):
    credentials = find(objects, "Secret", "genchaos-credentials")["metadata"]["name"]
    expected = {("fal-emulator", "GENCHAOS_FAL_EMULATOR_KEY"): "FAL_KEY",
                ("storage-emulator", "GENCHAOS_SUPABASE_SERVICE_KEY"): "GENCHAOS_SUPABASE_SERVICE_KEY",
                ("storage-emulator", "GENCHAOS_SUPABASE_JWT_SECRET"): "GENCHAOS_SUPABASE_JWT_SECRET"}
    for (emulator, variable), key in expected.items():
        env = {item["name"]: item for item in container(objects, emulator, emulator)["env"]}
        assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": credentials, "key": key}
        assert key in environment(objects, "genchaos-service", "service")


@pytest.mark.parametrize(("key", "value"), [
    ("FAL_QUEUE_RUN_HOST", "fal-emulator:8443"),  # straight to the emulator
    ("GENCHAOS_SUPABASE_URL", "http://127.0.0.1:18081"),  # a port no proxy listens on
])
def test_wiring_check_catches_a_bypassed_proxy(objects, key, value):
    broken = json.loads(json.dumps(objects))
    config_data(broken, "ConfigMap", "genchaos-service-settings")[key] = value
    assert wiring_problems(broken) != []


def test_probes_use_the_service_s_health_endpoints_and_every_container_is_bounded(objects):
    service = container(objects, "genchaos-service", "service")
    assert service["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert service["readinessProbe"]["httpGet"]["path"] == "/readyz"
    settings = Settings(database_url="postgresql://u@127.0.0.1/d", supabase_url="http://127.0.0.1:1",
                        supabase_service_key="k", supabase_jwt_secret="s" * 32, supabase_jwt_issuer="i")
    assert {"/healthz", "/readyz", "/metrics"} <= {route.path for route in create_app(settings).routes}
    # during a fault /readyz is 503 on purpose: the Service must still send the harness's traffic
    assert find(objects, "Service", "genchaos-service")["spec"]["publishNotReadyAddresses"] is True
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            for spec in obj["spec"]["template"]["spec"]["containers"]:
                assert {"requests", "limits"} <= set(spec.get("resources", {})), f"{obj['metadata']['name']}/{spec['name']}"


@pytest.mark.parametrize("name", STACK_FILES)
def test_stack_file_parses_and_describes_the_running_service(objects, name):
    stack = StackInfo.load(STACK_FILES[name])
    assert stack_file_problems(name, stack, objects) == []
    assert set(stack.proxies) == set(PROXY_NAMES)


def test_in_cluster_stack_file_names_cluster_services_and_is_what_locust_reads(objects):
    stack = StackInfo.load(STACK_FILES["in-cluster"])
    ports = service_ports(objects)
    for url in (stack.service_url, stack.toxiproxy_url, stack.fal_admin_url, stack.storage_admin_url,
                stack.database_direct_url):
        parts = urlsplit(url)
        assert parts.port in ports.get(parts.hostname, set()), f"{url} is no Service port"
    assert config_data(objects, "Secret", "genchaos-stack")["stack.json"] == STACK_FILES["in-cluster"].read_text()
    master = container(objects, "locust-master", "locust")
    mounts = {m["mountPath"] for m in master["volumeMounts"]}
    assert {item["name"]: item["value"] for item in master["env"]}["GENCHAOS_STACK_FILE"] == "/stack/stack.json"
    assert "/stack" in mounts and str(Path(stack.ca_bundle).parent) in mounts


def port_forward_problems(docs: str) -> list[str]:
    """Where stack.example.json's addresses are not the local ends of the port-forwards the docs give
    for the Services that stack.in-cluster.json names for the same field."""
    forwards = {}  # local port -> (Service, its port)
    for service, pairs in re.findall(r"port-forward svc/([\w-]+) ((?:\d+:\d+ ?)+)", docs):
        forwards |= {int(local): (service, int(remote)) for local, remote in (p.split(":") for p in pairs.split())}
    example, in_cluster = (StackInfo.load(STACK_FILES[name]) for name in ("port-forward", "in-cluster"))
    problems = []
    for field in ("service_url", "toxiproxy_url", "fal_admin_url", "storage_admin_url"):
        local, remote = urlsplit(getattr(example, field)), urlsplit(getattr(in_cluster, field))
        if local.hostname != "127.0.0.1" or forwards.get(local.port) != (remote.hostname, remote.port):
            problems.append(f"{field}: {getattr(example, field)} is no port-forward of {getattr(in_cluster, field)}")
    return problems


def test_docs_port_forwards_reach_what_the_example_stack_file_names():
    assert port_forward_problems(DOCS.read_text()) == []


def test_port_forward_check_catches_a_wrong_local_port():
    docs = DOCS.read_text().replace("svc/fal-emulator 28443:8443", "svc/fal-emulator 18443:8443")
    assert port_forward_problems(docs) == [
        "fal_admin_url: https://127.0.0.1:28443 is no port-forward of https://fal-emulator:8443"]


def test_stack_file_check_catches_a_stale_secret(objects):
    stack = StackInfo.load(STACK_FILES["port-forward"])
    stack.jwt_secret = "an-old-secret"
    assert stack_file_problems("port-forward", stack, objects) == [
        "port-forward stack file: jwt_secret is 'an-old-secret', the service runs with "
        f"{environment(objects, 'genchaos-service', 'service')['GENCHAOS_SUPABASE_JWT_SECRET']!r}"]


def test_dashboards_and_rules_config_maps_hold_the_repository_s_files(objects):
    assert copy_drift(objects) == [], "run deploy/kubernetes/sync-observability.sh"
    dashboards = config_data(objects, "ConfigMap", "grafana-dashboards")
    assert set(dashboards) == {p.name for p in (DASHBOARDS / "grafana" / "dashboards").glob("*.json")}


def test_copy_check_catches_a_stale_or_missing_dashboard(objects):
    broken = json.loads(json.dumps(objects))
    dashboards = config_data(broken, "ConfigMap", "grafana-dashboards")
    dashboards.pop("resilience.json")
    dashboards["slo-overview.json"] += " "
    assert copy_drift(broken) == ["grafana-dashboards lacks resilience.json",
                                  "grafana-dashboards's slo-overview.json differs from "
                                  "dashboards/grafana/dashboards/slo-overview.json"]


def test_prometheus_scrapes_the_service_and_the_sidecar_under_the_rules_job_names(objects):
    config = yaml.safe_load(config_data(objects, "ConfigMap", "prometheus-config")["prometheus.yml"])
    compose_jobs = {job["job_name"] for job in yaml.safe_load(
        (DASHBOARDS / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]}
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert set(targets) == compose_jobs
    service = container(objects, "genchaos-service", "service")["ports"][0]["containerPort"]
    assert targets == {"genchaos-service": [f"genchaos-service:{service}"], "toxiproxy": ["genchaos-service:8474"]}
    assert {service, 8474} <= service_ports(objects)["genchaos-service"]


def test_promtool_accepts_the_rendered_prometheus_config(objects, tmp_path):
    promtool = require_tool("promtool")
    for name, text in config_data(objects, "ConfigMap", "prometheus-config").items():
        (tmp_path / name).write_text(text)
    result = subprocess.run([promtool, "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout


def test_make_tls_secret_gives_the_files_the_pods_mount(kubectl, objects, tmp_path):
    env = {"PATH": f"{Path(kubectl).parent}:/usr/bin:/bin", "PYTHON": sys.executable}
    result = subprocess.run(["sh", str(KUBERNETES / "make-tls-secret.sh"), str(tmp_path / "tls")], capture_output=True,
                            text=True, timeout=60, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr
    secret = yaml.safe_load(result.stdout)
    assert invalid_objects([secret]) == []
    assert (secret["metadata"]["name"], secret["metadata"]["namespace"]) == ("genchaos-tls", "genchaos")
    files = {key: base64.b64decode(value) for key, value in secret["data"].items()}
    fal = container(objects, "fal-emulator", "fal-emulator")["command"]
    needed = {fal[fal.index("--certfile") + 1], fal[fal.index("--keyfile") + 1],
              environment(objects, "genchaos-service", "service")["SSL_CERT_FILE"],
              StackInfo.load(STACK_FILES["in-cluster"]).ca_bundle}
    assert {f"/certs/{key}" for key in files} >= needed
    names = x509.load_pem_x509_certificate(files["server.pem"]).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert {"fal-emulator", "fal-emulator.genchaos.svc"} <= set(names.get_values_for_type(x509.DNSName))
    assert files["ca.pem"] in files["ca-bundle.pem"]
    assert (tmp_path / "tls" / "ca-bundle.pem").read_bytes() == files["ca-bundle.pem"]


def real_endpoint_problems(objects: list[dict]) -> list[str]:
    """Where the real-endpoints overlay would let the service reach FAL or Supabase around the sidecar."""
    problems = []
    external = {o["metadata"]["name"] for o in objects if o["kind"] == "Service" and o["spec"].get("type") == "ExternalName"}
    problems += [f"proxy {proxy['name']} dials {proxy['upstream']}, not an ExternalName Service"
                 for proxy in proxies(objects) if proxy["upstream"].rsplit(":", 1)[0] not in external]
    spec = find(objects, "Deployment", "genchaos-service")["spec"]["template"]["spec"]
    aliases = {host: alias["ip"] for alias in spec.get("hostAliases", []) for host in alias["hostnames"]}
    listen = {proxy["name"]: proxy["listen"] for proxy in proxies(objects)}
    supabase_url = config_data(objects, "ConfigMap", "genchaos-service-settings")["GENCHAOS_SUPABASE_URL"]
    for proxy, host in (("fal", "queue.fal.run"), ("storage", urlsplit(supabase_url).hostname)):
        if f"{aliases.get(host)}:443" != listen[proxy]:
            problems.append(f"{host} resolves to {aliases.get(host)}, proxy {proxy} listens on {listen[proxy]}")
    return problems


def test_real_endpoints_overlay_keeps_the_sidecar_between_the_service_and_the_real_hosts(kubectl):
    objects = render(kubectl, REAL_ENDPOINTS)
    rendered = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert not {("Deployment", "fal-emulator"), ("Deployment", "storage-emulator"), ("StatefulSet", "postgres")} & rendered
    assert {proxy["name"] for proxy in proxies(objects)} == set(PROXY_NAMES)
    assert real_endpoint_problems(objects) == []
    assert {"secretRef": {"name": "genchaos-real-credentials"}} in container(objects, "genchaos-service", "service")["envFrom"]


def test_real_endpoints_check_catches_a_host_that_misses_the_sidecar(kubectl):
    objects = render(kubectl, REAL_ENDPOINTS)
    spec = find(objects, "Deployment", "genchaos-service")["spec"]["template"]["spec"]
    spec["hostAliases"] = [alias for alias in spec["hostAliases"] if "queue.fal.run" not in alias["hostnames"]]
    assert real_endpoint_problems(objects) == ["queue.fal.run resolves to None, proxy fal listens on 127.0.0.2:443"]


def your_service_problems(objects: list[dict]) -> list[str]:
    """Where the your-service overlay does not run the user's service as its contract describes it: another
    image or command, an environment other than the one `genchaos env` gives the contract on the stack file
    Locust reads, a name of the reference service's, probes off the contract's health path, or Locust not
    speaking the contract."""
    problems = []
    contract = load_contract(YOUR_SERVICE / "genchaos.yaml")
    stack = StackInfo.load(YOUR_SERVICE / "stack.in-cluster.json")
    service = container(objects, "genchaos-service", "service")
    image = yaml.safe_load((YOUR_SERVICE / "kustomization.yaml").read_text())["images"][0]
    if service["image"] != f"{image['newName']}:{image['newTag']}" or "command" in service or "args" in service:
        problems.append(f"the service runs {service['image']} {service.get('command')}, not the user's image as it is")
    env, expected = environment(objects, "genchaos-service", "service"), launch.service_environment(contract, stack, {})
    if env != expected:
        problems.append(f"its environment is {sorted(env)}, its contract's is {sorted(expected)}")
    problems += [f"it is given the reference service's {name}" for name in env if name.startswith("GENCHAOS_")]
    health = contract.features.readiness_path or contract.start.health_path
    probes = {kind: service[kind]["httpGet"]["path"] for kind in ("livenessProbe", "readinessProbe", "startupProbe")}
    problems += [f"its {kind} asks {path}" for kind, path in probes.items()
                 if path not in (contract.start.health_path, health)]
    if any(o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("genchaos-service-settings") for o in objects):
        problems.append("the reference service's settings are still rendered")
    if stack.profile not in contract.profiles:
        problems.append(f"the stack file's profile {stack.profile} is not one the contract offers")
    contract_text = config_data(objects, "ConfigMap", "your-service-contract")["genchaos.yaml"]
    for locust in ("locust-master", "locust-worker"):
        spec = container(objects, locust, "locust")
        path = {item["name"]: item["value"] for item in spec.get("env", [])}.get("GENCHAOS_SERVICE", "")
        if str(Path(path).parent) not in {m["mountPath"] for m in spec.get("volumeMounts", [])}:
            problems.append(f"{locust} reads its contract from {path!r}, which nothing mounts")
    if contract_text != (YOUR_SERVICE / "genchaos.yaml").read_text():
        problems.append("the contract Locust mounts is not the overlay's")
    if config_data(objects, "Secret", "genchaos-stack")["stack.json"] != (YOUR_SERVICE / "stack.in-cluster.json").read_text():
        problems.append("Locust reads the reference service's stack file")
    return problems


def test_your_service_overlay_runs_the_user_s_service_in_the_reference_s_place(kubectl):
    objects = render(kubectl, YOUR_SERVICE)
    assert your_service_problems(objects) == []
    assert wiring_problems(objects) == []  # still only through the sidecar
    assert find(objects, "Service", "genchaos-service")["spec"]["ports"][0]["targetPort"] == "http"
    assert [p["name"] for p in container(objects, "genchaos-service", "service")["ports"]] == ["http"]
    for obj in objects:  # what the overlay generates too: a Secret outside the namespace is one no pod sees
        assert obj["metadata"]["labels"]["app.kubernetes.io/part-of"] == "genchaos", obj["metadata"]["name"]
        assert obj["metadata"].get("namespace", "genchaos") == "genchaos", obj["metadata"]["name"]


@pytest.mark.parametrize("name", ["stack.in-cluster.json", "stack.example.json"])
def test_your_service_stack_files_are_the_base_s_but_for_the_profile(name):
    """The stack is the base's, so only the profile the user's service runs may differ."""
    base = StackInfo.load(KUBERNETES / ("base" if name == "stack.in-cluster.json" else "") / name)
    theirs = StackInfo.load(YOUR_SERVICE / name)
    assert theirs.profile in load_contract(YOUR_SERVICE / "genchaos.yaml").profiles
    assert {**vars(theirs), "profile": base.profile} == vars(base)


def test_your_service_example_is_lumen_and_its_environment_is_what_genchaos_env_writes(tmp_path):
    assert yaml.safe_load((YOUR_SERVICE / "genchaos.yaml").read_text()) == yaml.safe_load(LUMEN_CONTRACT.read_text())
    written = tmp_path / "service.env"
    subprocess.run([sys.executable, "-m", "chaos", "env", "--stack-file", str(YOUR_SERVICE / "stack.in-cluster.json"),
                    "--service", str(LUMEN_CONTRACT), "--dotenv", str(written)], check=True, capture_output=True,
                   timeout=60)
    ours = [line for line in (YOUR_SERVICE / "service.env").read_text().splitlines() if not line.startswith("#")]
    assert ours == written.read_text().splitlines()


def test_your_service_check_catches_the_reference_service_left_in(kubectl):
    objects = render(kubectl, YOUR_SERVICE)
    service = container(objects, "genchaos-service", "service")
    service["image"] = "genchaos:local"
    service["env"] = [{"name": "GENCHAOS_PROFILE", "value": "hardened"}]
    problems = your_service_problems(objects)
    assert problems[0] == "the service runs genchaos:local None, not the user's image as it is"
    assert "it is given the reference service's GENCHAOS_PROFILE" in problems
