"""deploy/: the Kubernetes manifests validate against Kubernetes' schemas, the compose
file is well-formed, and every command they run uses options the CLI has."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is in the test extra"
)


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_valid_kubernetes(path):
    for doc in documents(path):
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_a_broken_manifest_is_caught():
    doc = documents(DEPLOY / "kubernetes" / "master.yaml")[0]
    doc["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def containers() -> list[tuple[str, dict]]:
    found = []
    for path in MANIFESTS:
        for doc in documents(path):
            pod = doc.get("spec", {}).get("template", {}).get("spec", {})
            found.extend((f"{path.name}:{c['name']}", c) for c in pod.get("containers", []))
    return found


def test_every_pod_has_resources_and_probes_on_health_endpoints():
    assert len(containers()) == 3
    for name, container in containers():
        assert container["resources"]["requests"] and container["resources"]["limits"], name
        assert container["livenessProbe"]["httpGet"]["path"] == "/v1/live", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/v1/ready", name
        assert "--secret-file" in container["args"], name


def test_the_secret_is_a_kubernetes_secret_mounted_read_only():
    [secret] = documents(DEPLOY / "kubernetes" / "secret.yaml")
    assert secret["kind"] == "Secret" and secret["stringData"]["secret"] == ""
    for _, container in containers():
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert mounts["/etc/aiospark"]["readOnly"] is True


def commands() -> list[list[str]]:
    """Every aiospark command line in deploy/ (role first)."""
    lines = [container["args"] for _, container in containers()]
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    for service in compose["services"].values():
        if "command" in service:
            lines.append(service["command"])
        else:  # a shell entrypoint: the words after `exec aiospark`
            script = service["entrypoint"][-1]
            lines.append(script.split("exec aiospark", 1)[1].split())
    return lines


def test_compose_file_runs_master_shuffle_and_scalable_workers():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"master", "shuffle", "worker"}
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale works
    assert compose["secrets"]["cluster_secret"]["file"] == "${AIOSPARK_SECRET_FILE:-./secret}"
    assert all(s["network_mode"] == "host" for s in services.values())
    assert all(s["environment"]["AIOSPARK_SECRET_FILE"] for s in services.values())


@pytest.mark.parametrize("line", commands(), ids=lambda line: line[0])
def test_deploy_commands_use_options_the_cli_has(line):
    role, options = line[0], [word for word in line[1:] if word.startswith("--")]
    help_text = subprocess.run(
        [sys.executable, "-m", "aiospark", role, "--help"],
        capture_output=True, text=True, check=True,
    ).stdout
    missing = [option for option in options if option not in help_text]
    assert not missing, f"aiospark {role} has no {missing}"


def test_dockerfile_runs_as_an_unprivileged_user():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "\nUSER aiospark\n" in text and 'ENTRYPOINT ["aiospark"]' in text
