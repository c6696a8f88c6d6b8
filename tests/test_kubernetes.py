"""deploy/kubernetes/ validates offline against the Kubernetes API schema that
kubernetes-validate bundles (strict: a misspelt field fails), and its pods run the harness the
way docs/fleet.md says: the image scripts/build-image.sh builds, privileged, on the host's
pids, the run directories on a volume, the metrics pushed, with flags the CLI has."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from sandbox.cli import main

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy/kubernetes"
#: The newest Kubernetes whose schema the package bundles (1.37 with kubernetes-validate 1.37).
VERSION = kubernetes_validate.utils.latest_version()


def _objects() -> dict[str, dict]:
    """kind/name -> object, of every manifest the kustomization lists."""
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    found = {}
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((DEPLOY / name).read_text()):
            found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


def _pod(obj: dict) -> dict:
    spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    return spec["template"]["spec"]


def test_every_manifest_is_listed_and_validates_strictly():
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    on_disk = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == on_disk
    objects = _objects()
    assert {"Job/sandbox-quick", "CronJob/sandbox-endurance", "ConfigMap/sandbox"} <= set(objects)
    assert tuple(map(int, VERSION.split("."))) >= (1, 33)  # a current Kubernetes
    for obj in objects.values():
        kubernetes_validate.validate(obj, VERSION, strict=True)


def test_strict_validation_catches_a_misspelt_field():
    job = copy.deepcopy(_objects()["Job/sandbox-quick"])
    _pod(job)["containers"][0]["securityContext"]["priviledged"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, VERSION, strict=True)


def test_the_pods_run_the_built_image_the_documented_way():
    tag = re.search(r"\btag=(\S+)", (REPO / "scripts/build-image.sh").read_text())
    assert tag, "scripts/build-image.sh names no default tag"
    objects = _objects()
    pods = [_pod(objects["Job/sandbox-quick"]), _pod(objects["CronJob/sandbox-endurance"])]
    for pod in pods:
        assert pod["hostPID"] and pod["hostNetwork"] and pod["restartPolicy"] == "Never"
        (runs,) = pod["volumes"]
        for container in pod["initContainers"] + pod["containers"]:
            assert container["image"] == tag.group(1)
            assert container["volumeMounts"] == [{"name": runs["name"], "mountPath": "/runs"}]
        (sandbox,) = pod["containers"]
        assert sandbox["securityContext"] == {"privileged": True}
        args = sandbox["args"]
        assert args[0] == "run" and args[args.index("--runs-dir") + 1] == "/runs"
        assert args[args.index("--pushgateway") + 1] == "$(SANDBOX_PUSHGATEWAY)"
        (env,) = sandbox["env"]
        assert env["valueFrom"]["configMapKeyRef"] == {"name": "sandbox", "key": "pushgateway"}
    assert objects["ConfigMap/sandbox"]["data"]["pushgateway"].startswith("http://")
    # the nightly pod is the Job's pod with another scenario
    nightly = copy.deepcopy(pods[1])
    nightly["containers"][0]["args"] = pods[0]["containers"][0]["args"]
    assert nightly == pods[0]


def test_the_pods_flags_are_the_clis(capsys):
    """Each container's arguments parse (an unknown flag is exit 3 before --help prints)."""
    objects = _objects()
    for obj in (objects["Job/sandbox-quick"], objects["CronJob/sandbox-endurance"]):
        pod = _pod(obj)
        for container in pod["initContainers"] + pod["containers"]:
            args = [a.replace("$(SANDBOX_PUSHGATEWAY)", "http://pushgateway:9091")
                    for a in container["args"]]
            assert main([*args, "--help"]) == 0, capsys.readouterr().err
