"""The deployment files of deploy/: parsed, checked against routerd's own settings and command line,
and run outside a container (no Docker engine needed).

- every YAML file parses; Compose and Kubernetes structure (services, probes, ports, mounts, env);
- every environment variable they set is one routerd reads, and the settings they produce load,
  plugins included;
- routerd.example.toml and the ConfigMap's routerd.toml load with routerd's loader, and the example
  covers every setting;
- the Dockerfile's CMD is a valid `routerd` command line, and it really serves: `routerd serve` is
  started as the image would start it, polled on /healthz and /readyz, probed with the image's and
  Compose's health-check commands, and stopped with SIGTERM like `docker stop`;
- on PostgreSQL, two replicas configured like the Kubernetes pods start together (the migration
  lock) and both become ready.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import click
import httpx
import msgspec
import pytest
import yaml
from click.testing import CliRunner

from routerd import config as routerd_config
from routerd.cli import main
from routerd.config import LEGACY_ENVIRONMENT, Settings, load_settings
from routerd.gateway import Gateway

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
DOCKERFILE = DEPLOY / "Dockerfile"
EXAMPLE_TOML = DEPLOY / "routerd.example.toml"
ROUTERD = Path(sys.executable).with_name("routerd")
YAML_FILES = sorted(DEPLOY.rglob("*.yaml"))
IMAGE_PORT = 8080
START_TIMEOUT = 30.0
EXPECTED_CMD = ["routerd", "serve", "--host", "0.0.0.0", "--port", "8080"]


# -- helpers ---------------------------------------------------------------------------------------


def is_routerd_variable(name: str) -> bool:
    return (
        name in LEGACY_ENVIRONMENT
        or name == routerd_config.CONFIG_ENV
        or name.startswith(routerd_config.NESTED_ENV_PREFIX)
    )


def load_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def load_one(path: Path) -> dict[str, Any]:
    docs = load_yaml(path)
    assert len(docs) == 1, f"{path.name}: expected one document, found {len(docs)}"
    return docs[0]


@dataclass
class Instruction:
    keyword: str
    args: str
    stage: int
    line: int


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comments and parser directives dropped."""
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    stage = -1
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # a comment or empty line, also inside a continuation (as Docker does)
        if not parts:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1].strip())
            continue
        parts.append(line)
        keyword, _, args = " ".join(parts).partition(" ")
        parts = []
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), stage, start))
    assert not parts, "the Dockerfile ends inside a continuation line"
    return instructions


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(a, str) for a in value), f"not exec form: {args}"
    return value


def dockerfile_env(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in instructions:
        if ins.keyword == "ENV":
            for item in shlex.split(ins.args):
                key, sep, value = item.partition("=")
                assert sep, f"line {ins.line}: use ENV KEY=VALUE, not the legacy `ENV KEY VALUE`"
                env[key] = value
    return env


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final_stage(dockerfile: list[Instruction]) -> list[Instruction]:
    last = max(ins.stage for ins in dockerfile)
    return [ins for ins in dockerfile if ins.stage == last]


def only(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [ins for ins in instructions if ins.keyword == keyword]
    assert len(found) == 1, f"expected one {keyword} in the final stage, found {len(found)}"
    return found[0]


def healthcheck_cmd(instructions: list[Instruction]) -> list[str]:
    match = re.fullmatch(r"((?:--[\w-]+=\S+\s+)*)CMD\s+(\[.*\])", only(instructions, "HEALTHCHECK").args)
    assert match, "HEALTHCHECK must be `HEALTHCHECK [--option=value ...] CMD [exec form]`"
    return exec_form(match[2])


def local_argv(argv: list[str], port: int) -> list[str]:
    """A container's command run here: `python` is this interpreter, `routerd` the venv's
    executable, the image's port the test's port, and 0.0.0.0 the loopback address."""
    out = [a.replace(f":{IMAGE_PORT}/", f":{port}/") for a in argv]
    if out[0] == "python":
        out[0] = sys.executable
    elif out[0] == "routerd":
        out[0] = str(ROUTERD)
    for flag, value in (("--host", "127.0.0.1"), ("--port", str(port))):
        if flag in out:
            out[out.index(flag) + 1] = value
    return out


def assert_routerd_command(argv: list[str]) -> None:
    """`argv` is a valid routerd command line: `--help` appended exits 0, and its options parse
    and convert exactly as `routerd` would run them."""
    assert argv[0] == "routerd", argv
    result = CliRunner().invoke(main, [*argv[1:], "--help"])
    assert result.exit_code == 0, result.output
    command = main.get_command(click.Context(main), argv[1])
    assert command is not None, f"no routerd command {argv[1]!r}"
    ctx = command.make_context(argv[1], list(argv[2:]))
    assert not ctx.args, f"unexpected arguments {ctx.args}"


_INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`."""

    def substitute(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"]
        current = env.get(name)
        missing = not current if op and op.startswith(":") else current is None
        if op in (":-", "-"):
            return arg if missing else str(current)
        if op in (":?", "?"):
            if missing:
                raise ValueError(f"{name}: {arg}")
            return str(current)
        return current or ""

    return _INTERPOLATION.sub(substitute, value)


def compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def compose_gateway_env(service: dict[str, Any]) -> dict[str, str]:
    """The gateway's environment as Compose sets it, with ROUTER_ADMIN_API_KEY=k in the shell."""
    return {k: interpolate(v, {"ROUTER_ADMIN_API_KEY": "k"}) for k, v in compose_env(service).items()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_environ() -> dict[str, str]:
    """This process's environment without anything routerd would read, and without proxies (the
    servers and health checks talk to 127.0.0.1)."""
    dropped = ("ROUTER", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
    return {k: v for k, v in os.environ.items() if not k.upper().startswith(dropped)}


def get(url: str) -> httpx.Response:
    return httpx.get(url, timeout=2, trust_env=False)


def load_gateway(environ: Mapping[str, str], config_file: Path | None = None) -> Gateway:
    """Settings as a server started with this environment gets them, plugins loaded and validated."""
    return Gateway(load_settings(config_file, environ=environ))


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextmanager
def serve(argv: list[str], env: Mapping[str, str], log: Path, cwd: Path) -> Iterator[Server]:
    port = free_port()
    with log.open("wb") as out:
        argv = local_argv(argv, port)
        # The builtin benchmark sources would reach for the internet: tests send traffic to this machine only.
        offline = {f"ROUTERD__PLUGINS__{name.upper()}__ENABLED": "false" for name in ("hf_leaderboard", "lmsys_arena")}
        process = subprocess.Popen(argv, env={**env, **offline}, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    server = Server(process, port, log)
    try:
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def wait_until_ready(server: Server, paths: tuple[str, ...] = ("/healthz", "/readyz")) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    pending = list(paths)
    while pending:
        if server.process.poll() is not None:
            pytest.fail(f"routerd exited with {server.process.returncode}:\n{server.output()}")
        try:
            if get(server.url(pending[0])).status_code == 200:
                pending.pop(0)
                continue
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{pending[0]} not 200 within {START_TIMEOUT} s:\n{server.output()}")
        time.sleep(0.2)


def stop_cleanly(server: Server) -> None:
    """SIGTERM, as `docker stop` and Kubernetes send it. uvicorn shuts down gracefully and then
    re-raises the signal: here that ends the process by SIGTERM; as a container's PID 1 (where a
    signal without a handler is ignored) it exits 0."""
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"routerd did not stop within 20 s of SIGTERM:\n{server.output()}")
    output = server.output()
    assert code in (0, -signal.SIGTERM), f"exit status {code}:\n{output}"
    assert "Application shutdown complete" in output, output
    assert "Traceback" not in output, output


# -- YAML ------------------------------------------------------------------------------------------


def test_the_deploy_folder_has_the_expected_files():
    names = {p.relative_to(DEPLOY).as_posix() for p in DEPLOY.rglob("*") if p.is_file()}
    assert {
        "Dockerfile",
        "compose.yaml",
        "routerd.example.toml",
        "README.md",
        "kubernetes/configmap.yaml",
        "kubernetes/secret.example.yaml",
        "kubernetes/deployment.yaml",
        "kubernetes/service.yaml",
    } <= names


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(DEPLOY).as_posix())
def test_every_yaml_file_parses(path):
    docs = load_yaml(path)
    assert docs, f"{path.name} is empty"
    assert all(isinstance(doc, dict) for doc in docs)


# -- Dockerfile ------------------------------------------------------------------------------------


def test_dockerfile_builds_on_python_slim_and_installs_the_checkout_with_pip(dockerfile):
    bases = [ins.args.split()[0] for ins in dockerfile if ins.keyword == "FROM"]
    assert bases and all(base == "python:3.11-slim" for base in bases), bases
    runs = [ins.args for ins in dockerfile if ins.keyword == "RUN"]
    assert any(re.search(r"\bpip install \.(\s|$)", run) for run in runs), runs


def test_dockerfile_copies_only_existing_paths_that_the_dockerignore_lets_through(dockerfile):
    rules = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    rules = [r.strip() for r in rules if r.strip() and not r.strip().startswith("#")]
    assert rules[0] == "*", "the ignore file is an allow-list: it starts with `*`"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    copies = [ins for ins in dockerfile if ins.keyword == "COPY" and "--from=" not in ins.args]
    assert copies
    for ins in copies:
        *sources, _dest = shlex.split(ins.args)
        for source in sources:
            assert (ROOT / source).exists(), f"line {ins.line}: COPY {source}: not in the checkout"
            assert source.rstrip("/") in allowed, f"line {ins.line}: {source} is excluded by the ignore file"
    # `pip install .` needs everything pyproject.toml builds from.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {pyproject["project"]["readme"], *wheel["packages"], *wheel.get("force-include", {})}
    copied = {s.rstrip("/") for ins in copies for s in shlex.split(ins.args)[:-1]}
    for path in needed:
        assert any(path == c or path.startswith(c + "/") for c in copied), f"{path} is not copied"


def test_dockerfile_runtime_stage(final_stage):
    user = only(final_stage, "USER").args.split(":")[0]
    assert user.isdigit() and int(user) != 0, "a numeric non-root USER (Kubernetes runAsNonRoot checks it)"
    assert only(final_stage, "EXPOSE").args.split() == [str(IMAGE_PORT)]
    env = dockerfile_env(final_stage)
    assert env["ROUTERD__DATA_DIR"] == "/data"
    # site-packages is not writable by the user: Numba keeps the compiled featuriser on the volume
    assert env["NUMBA_CACHE_DIR"].startswith("/data/")
    volumes = only(final_stage, "VOLUME").args
    volumes_list = exec_form(volumes) if volumes.startswith("[") else volumes.split()
    assert "/data" in volumes_list
    for name in env:
        if name.startswith("ROUTER"):
            assert is_routerd_variable(name), name


def test_dockerfile_cmd_is_a_valid_routerd_command(final_stage):
    cmd = exec_form(only(final_stage, "CMD").args)
    assert cmd == EXPECTED_CMD
    assert_routerd_command(cmd)
    assert not [ins for ins in final_stage if ins.keyword == "ENTRYPOINT"], "CMD alone starts routerd"


def test_dockerfile_healthcheck_calls_healthz_with_python(final_stage):
    cmd = healthcheck_cmd(final_stage)
    assert cmd[0] == "python", "the slim image has no curl"
    assert f"http://127.0.0.1:{IMAGE_PORT}/healthz" in " ".join(cmd)


# -- Compose ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_one(DEPLOY / "compose.yaml")


@pytest.fixture(scope="module")
def gateway_service(compose) -> dict[str, Any]:
    return compose["services"]["gateway"]


def test_compose_services(compose, final_stage):
    services = compose["services"]
    assert set(services) == {"gateway", "postgres", "ollama"}
    build = services["gateway"]["build"]
    assert (DEPLOY / build["context"]).resolve() == ROOT
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert services["postgres"]["image"] == "postgres:15"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["ollama"]["image"].split(":")[0] == "ollama/ollama"
    named = set(compose.get("volumes") or {})
    for name, target in (("postgres", "/var/lib/postgresql/data"), ("ollama", "/root/.ollama")):
        mounts = [str(v).split(":") for v in services[name]["volumes"]]
        assert any(m[1] == target and m[0] in named for m in mounts), f"{name}: no named volume at {target}"
    gateway_mounts = [str(v).split(":") for v in services["gateway"].get("volumes", [])]
    data_dir = dockerfile_env(final_stage)["ROUTERD__DATA_DIR"]
    assert any(m[1] == data_dir and m[0] in named for m in gateway_mounts), "the gateway's /data volume"
    ports = [str(p).split(":")[-1] for p in services["gateway"]["ports"]]
    assert ports == [str(IMAGE_PORT)]


def test_compose_gateway_waits_for_a_healthy_postgres_and_checks_readyz(gateway_service):
    assert gateway_service["depends_on"]["postgres"]["condition"] == "service_healthy"
    test = gateway_service["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "python"
    assert f"http://127.0.0.1:{IMAGE_PORT}/readyz" in " ".join(test)


def test_compose_gateway_environment(compose, gateway_service):
    raw = compose_env(gateway_service)
    unknown = sorted(name for name in raw if not is_routerd_variable(name))
    assert not unknown, f"not variables routerd reads: {unknown}"
    assert raw["ROUTER_ADMIN_API_KEY"] == "${ROUTER_ADMIN_API_KEY:?set it}"
    with pytest.raises(ValueError, match="set it"):
        interpolate(raw["ROUTER_ADMIN_API_KEY"], {})
    env = compose_gateway_env(gateway_service)
    assert env["ROUTER_OLLAMA_URL"] == "http://ollama:11434"
    postgres = {k: interpolate(v, {}) for k, v in compose_env(compose["services"]["postgres"]).items()}
    user, password, db = postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]
    assert env["ROUTER_DATABASE_URL"] == f"postgresql+asyncpg://{user}:{password}@postgres:5432/{db}"
    assert env["ROUTER_DATABASE_URL"] == "postgresql+asyncpg://routerd:routerd@postgres:5432/routerd"


def test_compose_gateway_environment_loads(compose, gateway_service, final_stage, tmp_path, caplog):
    env = compose_gateway_env(gateway_service)
    image_env = {k: v for k, v in dockerfile_env(final_stage).items() if is_routerd_variable(k)}
    gateway = load_gateway({**image_env, **env, "ROUTERD__DATA_DIR": str(tmp_path)})
    settings = gateway.settings
    assert settings.database_url == "postgresql+asyncpg://routerd:routerd@postgres:5432/routerd"
    assert gateway.plugins.records["apikey_auth"].settings.admin_api_key == "k"
    # The ollama plugin is not installed yet: its URL is warned about and ignored, not an error.
    if "ollama" not in gateway.plugins.records:
        assert "ROUTER_OLLAMA_URL" in caplog.text


# -- Kubernetes ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in load_yaml(path):
            assert doc["kind"] not in found, f"two {doc['kind']} manifests"
            found[doc["kind"]] = doc
    return found


@pytest.fixture(scope="module")
def pod(manifests) -> dict[str, Any]:
    return manifests["Deployment"]["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def container(pod) -> dict[str, Any]:
    containers = pod["containers"]
    assert len(containers) == 1
    return containers[0]


def container_port(container: dict[str, Any], port: int | str) -> int:
    """A port given by number or by name, as the container's port number."""
    for entry in container["ports"]:
        if port in (entry["containerPort"], entry.get("name")):
            return entry["containerPort"]
    raise AssertionError(f"port {port!r} is not a port of container {container['name']}")


def test_kubernetes_kinds_and_no_namespace(manifests):
    assert set(manifests) == {"ConfigMap", "Secret", "Deployment", "Service", "Kustomization"}
    for kind, doc in manifests.items():
        assert "namespace" not in doc.get("metadata", {}), f"{kind} sets a namespace"
    resources = manifests["Kustomization"]["resources"]
    assert all((K8S / r).is_file() for r in resources)
    assert "secret.example.yaml" not in resources, "the example Secret must never be applied as it is"


def test_kubernetes_deployment(manifests, pod, container, final_stage):
    deployment = manifests["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert container_port(container, "http") == IMAGE_PORT
    command = container.get("command") or []
    args = container.get("args") or exec_form(only(final_stage, "CMD").args)
    assert not command, "the image's CMD or `args`, not `command`"
    assert args == EXPECTED_CMD
    assert_routerd_command(args)
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"] and resources["limits"]["memory"]


def test_kubernetes_probes(container):
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if probe in container:
            assert container_port(container, container[probe]["httpGet"]["port"]) == IMAGE_PORT


def test_kubernetes_service_targets_the_container_port(manifests, container):
    service = manifests["Service"]
    labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert container_port(container, port["targetPort"]) == IMAGE_PORT


def test_kubernetes_runs_as_the_images_non_root_user(pod, container, final_stage):
    security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    assert security["runAsNonRoot"] is True
    uid = only(final_stage, "USER").args.split(":")[0]
    assert str(security["runAsUser"]) == uid
    assert security["allowPrivilegeEscalation"] is False
    if security.get("readOnlyRootFilesystem"):
        writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
        assert {"/data", "/tmp"} <= writable, "a read-only root needs writable /data and /tmp"


def deployment_env(container: dict[str, Any]) -> dict[str, Any]:
    return {entry["name"]: entry for entry in container["env"]}


def test_kubernetes_environment_is_known_and_secret_backed(manifests, container):
    env = deployment_env(container)
    unknown = sorted(name for name in env if not is_routerd_variable(name))
    assert not unknown, f"not variables routerd reads: {unknown}"
    assert not container.get("envFrom"), "every variable by name, so that each can be checked"
    secret = manifests["Secret"]
    for name in ("ROUTER_ADMIN_API_KEY", "ROUTER_DATABASE_URL"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"]
    for key, value in secret["stringData"].items():
        assert is_routerd_variable(key), key
        assert "CHANGE-ME" in value, f"{key}: the example Secret holds placeholders only"


def test_kubernetes_config_file_is_the_mounted_configmap(manifests, pod, container):
    config_path = PurePosixPath(deployment_env(container)["ROUTERD_CONFIG"]["value"])
    configmap = manifests["ConfigMap"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    matches = []
    for mount in container["volumeMounts"]:
        source = volumes[mount["name"]].get("configMap")
        if source is None:
            continue
        assert source["name"] == configmap["metadata"]["name"]
        mount_path = PurePosixPath(mount["mountPath"])
        if "subPath" in mount:
            files = {mount_path: mount["subPath"]}
        else:
            items = source.get("items") or [{"key": k, "path": k} for k in configmap["data"]]
            files = {mount_path / item["path"]: item["key"] for item in items}
        if config_path in files:
            assert files[config_path] in configmap["data"]
            matches.append(mount)
    assert len(matches) == 1, f"ROUTERD_CONFIG={config_path} is not a file of the mounted ConfigMap"
    assert matches[0].get("readOnly") is True


def configmap_toml(manifests: dict[str, dict[str, Any]], tmp_path: Path) -> Path:
    path = tmp_path / "routerd.toml"
    path.write_text(manifests["ConfigMap"]["data"]["routerd.toml"])
    return path


def pod_environ(container: dict[str, Any], config: Path, data_dir: Path, database_url: str) -> dict[str, str]:
    """The pod's environment, here: the Secret's values given, files at local paths."""
    secrets = {"ROUTER_ADMIN_API_KEY": "test-admin-key", "ROUTER_DATABASE_URL": database_url}
    env = {}
    for name, entry in deployment_env(container).items():
        env[name] = entry["value"] if "value" in entry else secrets[name]
    env["ROUTERD_CONFIG"] = str(config)
    env["ROUTERD__DATA_DIR"] = str(data_dir)
    return env


def test_kubernetes_configmap_toml_loads(manifests, container, tmp_path):
    path = configmap_toml(manifests, tmp_path)
    load_settings(path, environ={})
    url = "postgresql+asyncpg://routerd:pw@db:5432/routerd"
    gateway = load_gateway(pod_environ(container, path, tmp_path / "data", url))
    assert gateway.settings.database_url == url
    auth = gateway.plugins.records["apikey_auth"].settings
    assert auth.admin_api_key == "test-admin-key"
    assert auth.loopback_admin is False


# -- routerd.example.toml --------------------------------------------------------------------------


def test_example_config_loads_and_its_plugin_tables_validate(tmp_path):
    settings = load_settings(EXAMPLE_TOML, environ={})
    assert "apikey_auth" in settings.plugins
    load_gateway({"ROUTERD__DATA_DIR": str(tmp_path)}, EXAMPLE_TOML)
    # As its header says: every value shown is the default, except data_dir.
    shown, defaults = msgspec.to_builtins(settings), msgspec.to_builtins(Settings())
    for key in ("data_dir", "plugins", "sources"):
        shown.pop(key), defaults.pop(key)
    assert shown == defaults


def test_example_config_covers_every_setting():
    text = EXAMPLE_TOML.read_text()
    raw = tomllib.loads(text)
    mentioned = lambda key: re.search(rf"^#?\s*{re.escape(key)}\s*=", text, re.MULTILINE)  # noqa: E731
    for field in msgspec.structs.fields(Settings):
        if field.name in ("plugins", "sources"):
            continue
        if msgspec.inspect.type_info(field.type).__class__.__name__ == "StructType":
            assert f"[{field.name}]" in text, f"no [{field.name}] table"
            for sub in msgspec.structs.fields(field.type):
                set_here = sub.name in raw.get(field.name, {})
                assert set_here or mentioned(sub.name), f"{field.name}.{sub.name} is not shown"
        else:
            assert field.name in raw, f"{field.name} is not shown"
    import routerd_apikey_auth

    assert "apikey_auth" in raw["plugins"]
    for sub in msgspec.structs.fields(routerd_apikey_auth.Settings):
        assert mentioned(sub.name), f"plugins.apikey_auth.{sub.name} is not shown"


# -- running the image's command outside a container -----------------------------------------------


def test_the_images_command_serves_and_passes_its_health_checks(final_stage, gateway_service, tmp_path):
    """`routerd serve` started as the image starts it (CMD, ENV, working directory /data), with the
    example configuration and the Compose gateway's variables that do not need the other services."""
    assert ROUTERD.is_file(), f"no routerd executable next to {sys.executable}"
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    image_env = {k: v for k, v in dockerfile_env(final_stage).items() if k != "PATH"}
    compose = compose_gateway_env(gateway_service)
    compose.pop("ROUTER_DATABASE_URL")  # the compose host `postgres`; SQLite in /data here
    env = {
        **clean_environ(),
        **image_env,
        **compose,
        "ROUTERD__DATA_DIR": str(data_dir),
        "ROUTERD_CONFIG": str(EXAMPLE_TOML),
    }
    cmd = exec_form(only(final_stage, "CMD").args)
    with serve(cmd, env, tmp_path / "routerd.log", cwd=data_dir) as server:
        wait_until_ready(server)
        assert get(server.url("/readyz")).json()["checks"] == {"database": True, "plugins": True}
        # The SQLite database went to ROUTERD__DATA_DIR (the image's volume), not the file's data_dir.
        assert (data_dir / "routerd.db").is_file()

        checks = {
            "Dockerfile HEALTHCHECK": healthcheck_cmd(final_stage),
            "compose healthcheck": gateway_service["healthcheck"]["test"][1:],
        }
        for name, argv in checks.items():
            ran = subprocess.run(local_argv(argv, server.port), env=env, capture_output=True, timeout=30)
            assert ran.returncode == 0, f"{name} failed: {ran.stderr.decode()}"
            closed = subprocess.run(local_argv(argv, free_port()), env=env, capture_output=True, timeout=30)
            assert closed.returncode != 0, f"{name} passes with nothing listening"

        stop_cleanly(server)


@pytest.mark.postgres
def test_two_kubernetes_replicas_share_postgresql(manifests, container, postgres_url, tmp_path):
    """Both replicas of the Deployment, configured as in the pod, start at the same moment on one
    empty database: the migration lock lets one migrate and the other wait; both become ready."""
    config = configmap_toml(manifests, tmp_path)
    replicas = []
    with (
        serve(
            container["args"],
            {**clean_environ(), **pod_environ(container, config, tmp_path / "a", postgres_url)},
            tmp_path / "a.log",
            cwd=tmp_path,
        ) as first,
        serve(
            container["args"],
            {**clean_environ(), **pod_environ(container, config, tmp_path / "b", postgres_url)},
            tmp_path / "b.log",
            cwd=tmp_path,
        ) as second,
    ):
        replicas = [first, second]
        for server in replicas:
            wait_until_ready(server)
        for server in replicas:
            assert get(server.url("/readyz")).status_code == 200
        migrated = [s for s in replicas if "Running upgrade" in s.output()]
        assert len(migrated) == 1, "exactly one replica applies the migrations"
        env = {**clean_environ(), **pod_environ(container, config, tmp_path / "a", postgres_url)}
        db_current = [str(ROUTERD), "db", "current"]
        current = subprocess.run(db_current, env=env, capture_output=True, text=True, timeout=60)
        assert current.returncode == 0 and "up to date" in current.stdout, current.stdout + current.stderr
        for server in replicas:
            stop_cleanly(server)
