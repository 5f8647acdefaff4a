"""docker-compose.yml and the Dockerfile: Compose validates the file, everything it builds or
mounts exists, the service is wired to its dependencies only through Toxiproxy, and a service of the
user's own (deploy/compose/your-service.vars, lumen's as the example) takes the reference service's
place with its contract's variables, leaving nothing of the reference service in it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography import x509
from dotenv import dotenv_values

from chaos.contract import launch
from chaos.contract.model import load_contract
from chaos.stack.embedded import StackInfo
from chaos.stack.tls import make_test_ca
from tests.dashboards.promtools import REPO, bind_mounts

COMPOSE_FILE = REPO / "docker-compose.yml"
DEPENDENCY_HOSTS = ("postgres", "fal-emulator", "storage-emulator")
REFERENCE_ENV = REPO / "deploy" / "compose" / "reference.env"
YOUR_SERVICE_VARS = REPO / "deploy" / "compose" / "your-service.vars"
LOCUSTS = ("locust-master", "locust-worker")


def compose_config(docker_compose: str, *args: str, compose_file: Path = COMPOSE_FILE) -> subprocess.CompletedProcess:
    return subprocess.run([docker_compose, "-f", str(compose_file), *args, "config"], capture_output=True,
                          text=True, timeout=60, cwd=compose_file.parent)


def services() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def toxiproxy_config() -> list[dict]:
    mounts = bind_mounts(services()["toxiproxy"])
    return json.loads((REPO / mounts["/config/toxiproxy.json"]).read_text())


def rendered(docker_compose: str, *args: str) -> dict:
    """The services as Compose resolves them (variables, env files, absolute mount paths), Locust included."""
    result = compose_config(docker_compose, *args, "--profile", "load")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


def missing_mounts(resolved: dict) -> list[str]:
    return [f"{name} mounts missing {source}" for name, service in resolved.items()
            for source in bind_mounts(service).values() if source.startswith("/") and not Path(source).exists()]


def test_docker_compose_validates_the_file_with_every_profile(docker_compose):
    resolved = rendered(docker_compose)
    assert {"locust-master", "locust-worker"} <= set(resolved)
    assert missing_mounts(resolved) == []
    # the reference service by default: the image the other services build, its own environment
    assert resolved["service"]["image"] == resolved["fal-emulator"]["image"] == "genchaos:local"
    assert resolved["service"]["environment"] == dotenv_values(REFERENCE_ENV)


def your_service_problems(resolved: dict, variables: dict[str, str]) -> list[str]:
    """Where the service slot, with the user's variables, is not the user's service: another image, an
    environment other than the one `genchaos env` gives its contract on the stack file Locust reads, a
    name of the reference service's, a port the host and Locust do not use, Locust not reading its contract."""
    service, problems = resolved["service"], []
    stack = StackInfo.load(REPO / variables["GENCHAOS_SERVICE_STACK_FILE"])
    contract = REPO / variables["GENCHAOS_SERVICE_CONTRACT"]
    if service["image"] != variables["GENCHAOS_SERVICE_IMAGE"] or "build" in service or "command" in service:
        problems.append(f"the service runs {service['image']} (build: {service.get('build')}, command: "
                        f"{service.get('command')}), not the image as it is")
    expected = launch.service_environment(load_contract(contract), stack, {})
    if service["environment"] != expected:
        problems.append(f"its environment is {sorted(service['environment'])}, its contract's is {sorted(expected)}")
    problems += [f"it is given the reference service's {name}" for name in service["environment"]
                 if name in dotenv_values(REFERENCE_ENV) and name not in expected]
    port = int(variables["GENCHAOS_SERVICE_PORT"])
    if stack.service_url != f"http://toxiproxy:{port}":
        problems.append(f"the stack file names {stack.service_url}, the service listens on {port}")
    if {"published": port, "target": port} not in resolved["toxiproxy"]["ports"]:
        problems.append(f"port {port} is not published")
    if f"http://toxiproxy:{port}" not in resolved["locust-master"]["command"]:
        problems.append("Locust's host is not the service's port")
    for locust in LOCUSTS:
        mounts = bind_mounts(resolved[locust])
        if (mounts.get("/stack/stack.json"), mounts.get("/contract/genchaos.yaml")) != (
                str(REPO / variables["GENCHAOS_SERVICE_STACK_FILE"]), str(contract)):
            problems.append(f"{locust} mounts {mounts}, not the service's stack file and contract")
    return problems


def test_your_own_service_takes_the_reference_service_s_place(docker_compose):
    variables = dotenv_values(YOUR_SERVICE_VARS)
    resolved = rendered(docker_compose, "--env-file", str(YOUR_SERVICE_VARS))
    assert your_service_problems(resolved, variables) == []
    assert missing_mounts(resolved) == []
    assert not [name for name in resolved["service"]["environment"] if name.startswith("GENCHAOS_")]
    for locust in LOCUSTS:
        assert resolved[locust]["environment"] == {"GENCHAOS_STACK_FILE": "/stack/stack.json",
                                                   "GENCHAOS_SERVICE": "/contract/genchaos.yaml"}


def test_your_service_check_catches_the_reference_service_s_environment(docker_compose, tmp_path):
    """The check above can fail: the user's image given the reference service's environment is caught."""
    variables = {**dotenv_values(YOUR_SERVICE_VARS), "GENCHAOS_SERVICE_ENV_FILE": str(REFERENCE_ENV)}
    wrong = tmp_path / "wrong.vars"
    wrong.write_text("".join(f"{name}={value}\n" for name, value in variables.items()))
    problems = your_service_problems(rendered(docker_compose, "--env-file", str(wrong)), variables)
    assert problems[0].startswith("its environment is ")
    assert "it is given the reference service's GENCHAOS_DATABASE_URL" in problems


def test_docker_compose_rejects_an_invalid_file(docker_compose, tmp_path):
    """The validation above can fail: a service with a misspelt key is refused."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("    network_mode:", "    network_mod:", 1))
    result = compose_config(docker_compose, compose_file=broken)
    assert result.returncode != 0
    assert "network_mod" in result.stderr


def test_the_stack_has_every_part():
    expected = {"toxiproxy", "postgres", "fal-emulator", "storage-emulator", "service", "otel-collector", "jaeger",
                "prometheus", "grafana", "locust-master", "locust-worker"}
    assert expected <= set(services())
    assert services()["toxiproxy"]["image"].startswith("ghcr.io/shopify/toxiproxy")
    assert "-proxy-metrics" in services()["toxiproxy"]["command"]
    for locust in ("locust-master", "locust-worker"):
        assert services()[locust]["profiles"] == ["load"]
    assert services()["locust-worker"]["command"][-2:] == ["--master-host", "locust-master"]


def test_build_contexts_and_dockerfiles_exist():
    built = {name: service["build"] for name, service in services().items() if "build" in service}
    assert {"fal-emulator", "storage-emulator", "locust-master"} <= set(built)
    for name, build in built.items():
        context = REPO / build["context"]
        assert context.is_dir(), name
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name


def test_every_mounted_file_exists():
    for name, service in services().items():
        for target, source in bind_mounts(service).items():
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"{name} mounts missing {source} at {target}"


@pytest.mark.parametrize("env_file", [REFERENCE_ENV, REPO / dotenv_values(YOUR_SERVICE_VARS)["GENCHAOS_SERVICE_ENV_FILE"]],
                         ids=["reference", "your-service"])
def test_service_reaches_dependencies_only_through_toxiproxy(env_file):
    proxies = {proxy["name"]: proxy for proxy in toxiproxy_config()}
    assert set(proxies) == {"fal", "postgres", "storage"}
    for proxy in proxies.values():
        host, port = proxy["upstream"].rsplit(":", 1)
        assert host in DEPENDENCY_HOSTS and host in services()
    service = services()["service"]
    assert service["network_mode"] == "service:toxiproxy"
    assert service["env_file"] == [f"${{GENCHAOS_SERVICE_ENV_FILE:-{REFERENCE_ENV.relative_to(REPO)}}}"]
    environment = " ".join(str(value) for value in dotenv_values(env_file).values())
    for host in DEPENDENCY_HOSTS:
        as_host = rf"(?:^|[@/\s]){re.escape(host)}(?=[:/\s]|$)"
        assert not re.search(as_host, environment), f"the service is given {host} directly"
    listen_ports = {proxy["listen"].rsplit(":", 1)[1] for proxy in proxies.values()}
    used_ports = set(re.findall(r"127\.0\.0\.1:(\d+)", environment))
    assert used_ports == listen_ports


def test_prometheus_and_grafana_get_this_repository_s_config():
    assert bind_mounts(services()["prometheus"])["/etc/prometheus"] == "./dashboards/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services()["prometheus"]["command"]
    assert bind_mounts(services()["grafana"])["/etc/grafana/provisioning"] == "./dashboards/grafana/provisioning"


def test_dockerfile_builds_on_python_3_11_slim_and_runs_the_service():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, flags=re.MULTILINE)
    (cmd,) = re.findall(r"^CMD (.+)$", dockerfile, flags=re.MULTILINE)
    assert json.loads(cmd)[:3] == ["python", "-m", "service"]
    for copied in re.findall(r"^COPY (\S+) ", dockerfile, flags=re.MULTILINE):
        assert (REPO / copied).exists(), f"Dockerfile copies missing {copied}"


def certificate_names(pem: Path) -> set[str]:
    certificate = x509.load_pem_x509_certificate(pem.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n) for n in names.get_values_for_type(x509.DNSName)} | \
           {str(n) for n in names.get_values_for_type(x509.IPAddress)}


def fal_hosts_missing_from(pem: Path) -> set[str]:
    """Hosts by which the compose stack file reaches the FAL emulator that its certificate does not name."""
    stack = json.loads((REPO / "deploy" / "compose-stack.json").read_text())
    return {urlsplit(stack[key]).hostname for key in ("fal_url", "fal_admin_url")} - certificate_names(pem)


def test_the_fal_certificate_names_every_host_the_compose_stack_file_uses(tmp_path):
    command = services()["certs"]["command"]
    assert command[:2] == ["python", "-c"]
    subprocess.run([sys.executable, "-c", command[2].replace("'/certs'", repr(str(tmp_path)))], check=True,
                   timeout=60, cwd=REPO)
    assert fal_hosts_missing_from(tmp_path / "server.pem") == set()


def test_the_certificate_check_catches_a_missing_host(tmp_path):
    make_test_ca(tmp_path)
    assert fal_hosts_missing_from(tmp_path / "server.pem") == {"fal-emulator"}
