"""Azure ML's inferenceconfig.json and deploymentconfig.json as parts of an InferenceService spec.

Every key of the files either lands in the spec (and the spec path remembers where it came
from, so a validation error names the user's key), or is named in a warning that says why it
has no effect. Nothing is dropped silently.

Longer than other modules on purpose: the tables of every key the two files may hold, and
the conversions they need, stay in one place so a key is looked up once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from bereit.cli.azureml import conda
from bereit.cli.errors import BadInput
from bereit.cli.files import load_mapping, parse, read_text, resolve

# Keys Azure ML knows that mean nothing on Kubernetes, with what to do instead.
DEPLOYMENT_UNSUPPORTED = {
    "port": "a local service's port: run `bereit serve --port` for that",
    "location": "an Azure region has no meaning on a Kubernetes cluster",
    "dnsNameLabel": "put an Ingress or a LoadBalancer Service in front for an external name",
    "sslEnabled": "terminate TLS at an Ingress in front of the service",
    "sslCertificate": "terminate TLS at an Ingress in front of the service",
    "sslKey": "terminate TLS at an Ingress in front of the service",
    "sslCname": "terminate TLS at an Ingress in front of the service",
    "vnetName": "network placement is the cluster's business",
    "subnetName": "network placement is the cluster's business",
    "cmkVaultBaseUrl": "encryption at rest is the cluster's business",
    "cmkKeyName": "encryption at rest is the cluster's business",
    "cmkKeyVersion": "encryption at rest is the cluster's business",
    "isDefault": "AKS endpoint versions and traffic splitting are not supported",
    "trafficPercentile": "AKS endpoint versions and traffic splitting are not supported",
    "type": "AKS endpoint versions and traffic splitting are not supported",
    "version": "AKS endpoint versions and traffic splitting are not supported",
}
RESOURCE_UNSUPPORTED = {
    "cpuLimit": "bereit derives limits from the requests",
    "memoryInGBLimit": "bereit derives limits from the requests",
}
INFERENCE_UNSUPPORTED = {
    "schemaFile": "the swagger document is generated from the entry script's inference-schema decorators",
    "cudaVersion": "the image decides the CUDA version",
    "baseDockerfile": "build the image yourself (or with `bereit package`) and name it as baseImage",
}
ENVIRONMENT_UNSUPPORTED = {
    "name": "bereit has no environment registry; the settings themselves are used",
    "version": "bereit has no environment registry; the settings themselves are used",
    "inferencingStackVersion": "bereit-server is the inferencing stack",
    "spark": "Spark environments are not supported",
    "r": "R environments are not supported",
    "databricks": "Databricks environments are not supported",
}
DOCKER_UNSUPPORTED = {
    "enabled": "replicas always run in containers",
    "arguments": "docker run arguments do not apply to pods",
    "sharedVolumes": "docker volumes do not apply to pods",
    "shmSize": "docker shm size does not apply to pods",
    "baseDockerfile": "build the image yourself (or with `bereit package`) and name it as baseImage",
    "buildContext": "build the image yourself (or with `bereit package`) and name it as baseImage",
    "platform": "the node's platform decides",
}
PYTHON_UNSUPPORTED = {
    "interpreterPath": "the runtime image's python runs the entry script",
    "baseCondaEnvironment": "conda environments are not used; packages are installed with pip",
}
SUPPORTED_COMPUTE_TYPES = {"AKS", "ACI", "KUBERNETES", "AMLARC"}


@dataclass
class Registry:
    """Credentials for a private registry holding the base image (Azure's baseImageRegistry)."""

    address: str
    username: str
    password: str


@dataclass
class CodeSource:
    """Where the scoring code is on this machine: a whole folder, or the entry script alone."""

    entry_script: str  # relative to `folder`, POSIX
    folder: Path | None = None  # the sourceDirectory; None: only `script` is deployed
    script: Path | None = None
    extra_files: dict[str, Path] = field(default_factory=dict)  # Azure's `dependencies`


@dataclass
class Translation:
    """Spec fields found in one config file, with where each came from."""

    source: str
    spec: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # "resources.cpu" -> "containerResourceRequirements.cpu in dc.json"
    warnings: list[str] = field(default_factory=list)
    compute_target: str | None = None
    namespace: str | None = None
    keys: dict[str, str] = field(default_factory=dict)
    registry: Registry | None = None
    code: CodeSource | None = None
    extra_dockerfile_steps: str | None = None

    def put(self, path: str, value: Any, origin: str) -> None:
        node = self.spec
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
        self.origins[path] = f"{origin} in {self.source}"

    def warn(self, key: str, reason: str) -> None:
        self.warnings.append(f"{self.source}: {key} ignored: {reason}")


class Section:
    """One mapping of a config file; remembers which keys were used so the rest can be named."""

    def __init__(self, data: Any, prefix: str, translation: Translation):
        if not isinstance(data, dict):
            raise BadInput(f"{translation.source}: {prefix.rstrip('.') or 'the file'} must be a mapping, not {_type(data)}")
        self.data = data
        self.prefix = prefix
        self.t = translation
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def get(self, name: str) -> Any:
        self.used.add(name)
        return self.data.get(name)

    def section(self, name: str) -> Section | None:
        value = self.get(name)
        return None if value is None else Section(value, f"{self.key(name)}.", self.t)

    def boolean(self, name: str) -> bool | None:
        value = self.get(name)
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise BadInput(f"{self.t.source}: {self.key(name)} must be true or false, not {value!r}")

    def integer(self, name: str) -> int | None:
        value = self.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise BadInput(f"{self.t.source}: {self.key(name)} must be a whole number, not {value!r}")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise BadInput(f"{self.t.source}: {self.key(name)} must be a whole number, not {value!r}") from None
        if number != number.to_integral_value():
            raise BadInput(f"{self.t.source}: {self.key(name)} must be a whole number, not {value!r}")
        return int(number)

    def number(self, name: str) -> Decimal | None:
        value = self.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise BadInput(f"{self.t.source}: {self.key(name)} must be a number, not {value!r}")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise BadInput(f"{self.t.source}: {self.key(name)} must be a number, not {value!r}") from None
        if not number.is_finite():
            raise BadInput(f"{self.t.source}: {self.key(name)} must be a finite number, not {value!r}")
        return number

    def string(self, name: str) -> str | None:
        value = self.get(name)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise BadInput(f"{self.t.source}: {self.key(name)} must be text, not {_type(value)}")

    def strings(self, name: str) -> dict[str, str] | None:
        """A flat mapping of text (tags, properties, variables); scalars become text."""
        value = self.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise BadInput(f"{self.t.source}: {self.key(name)} must be a mapping of names to values, not {_type(value)}")
        result = {}
        for key, item in value.items():
            if isinstance(item, dict | list):
                raise BadInput(f"{self.t.source}: {self.key(name)}.{key} must be a single value, not {_type(item)}")
            result[str(key)] = "" if item is None else (str(item).lower() if isinstance(item, bool) else str(item))
        return result

    def finish(self, unsupported: dict[str, str] | None = None) -> None:
        """Name every key that was not used: the known ones with a reason, the rest as unknown."""
        for name in self.data:
            if name in self.used:
                continue
            reason = (unsupported or {}).get(name)
            if reason:
                self.t.warn(self.key(name), reason)
            else:
                self.t.warn(self.key(name), "not a setting bereit knows (check the spelling)")


def _type(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false"}.get(type(value), type(value).__name__)


def _quantity(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- deploymentconfig.json -----------------------------------------------------------------


def translate_deployment_config(path: Path) -> Translation:
    data = load_mapping(path, "deployment config")
    t = Translation(source=str(path))
    top = Section(data, "", t)

    compute_type = top.string("computeType")
    if compute_type is not None:
        kind = compute_type.upper()
        if kind == "LOCAL":
            t.warnings.append(
                f"{t.source}: computeType LOCAL: deploying to the cluster instead; "
                "`bereit serve` runs the service on this machine"
            )
        elif kind not in SUPPORTED_COMPUTE_TYPES:
            t.warnings.append(f"{t.source}: computeType {compute_type!r} is not one bereit knows; deploying to the cluster")
    t.compute_target = top.string("computeTargetName")
    t.namespace = top.string("namespace")

    resources = top.section("containerResourceRequirements")
    if resources is not None:
        cpu = resources.number("cpu")
        if cpu is not None:
            t.put("resources.cpu", _quantity(cpu), resources.key("cpu"))
        memory = resources.number("memoryInGB")
        if memory is not None:
            t.put("resources.memory", f"{_quantity(memory)}Gi", resources.key("memoryInGB"))
        gpu = resources.integer("gpu")
        if gpu is not None:
            t.put("resources.gpu", gpu, resources.key("gpu"))
        resources.finish(RESOURCE_UNSUPPORTED)
    gpu_cores = top.integer("gpuCores")
    if gpu_cores is not None:
        t.put("resources.gpu", gpu_cores, "gpuCores")

    scaler = top.section("autoScaler")
    if scaler is not None:
        for azure, ours in (
            ("autoscaleEnabled", "enabled"),
            ("minReplicas", "minReplicas"),
            ("maxReplicas", "maxReplicas"),
            ("targetUtilization", "targetUtilization"),
            ("refreshPeriodInSeconds", "refreshSeconds"),
        ):
            value = scaler.boolean(azure) if azure == "autoscaleEnabled" else scaler.integer(azure)
            if value is not None:
                t.put(f"autoscale.{ours}", value, scaler.key(azure))
        scaler.finish()
    replicas = top.integer("numReplicas")
    if replicas is not None:
        t.put("replicas", replicas, "numReplicas")

    key_auth = top.boolean("authEnabled")
    if key_auth is not None:
        t.put("auth.keyAuth", key_auth, "authEnabled")
    token_auth = top.boolean("tokenAuthEnabled")
    if token_auth is not None:
        t.put("auth.tokenAuth", token_auth, "tokenAuthEnabled")

    for azure, ours in (
        ("scoringTimeoutMs", "scoring.timeoutMs"),
        ("maxConcurrentRequestsPerContainer", "scoring.maxConcurrentRequestsPerReplica"),
        ("maxQueueWaitMs", "scoring.maxQueueWaitMs"),
    ):
        value = top.integer(azure)
        if value is not None:
            t.put(ours, value, azure)

    probe = top.section("livenessProbeRequirements")
    if probe is not None:
        for name in ("periodSeconds", "initialDelaySeconds", "timeoutSeconds", "successThreshold", "failureThreshold"):
            value = probe.integer(name)
            if value is not None:
                t.put(f"livenessProbe.{name}", value, probe.key(name))
        probe.finish()

    insights = top.boolean("appInsightsEnabled")
    if insights is not None:
        t.put("telemetry.enabled", insights, "appInsightsEnabled")
    collect = top.boolean("collectModelData")
    if collect is not None:
        t.put("dataCollection.enabled", collect, "collectModelData")
    collection = top.section("dataCollection")
    if collection is not None:
        stored = collection.boolean("storageEnabled")
        if stored is not None:
            t.put("dataCollection.enabled", stored, collection.key("storageEnabled"))
        collection.finish({"eventHubEnabled": "collected data goes to the replica's log, not an event hub"})

    keys = top.section("keys")
    if keys is not None:
        _take_keys(keys, t)
    _take_keys(top, t)  # the SDK's primary_key / secondary_key, written flat

    tags = top.strings("tags")
    if tags is not None:
        t.put("tags", tags, "tags")
    properties = top.strings("properties")
    if properties is not None:
        t.put("properties", properties, "properties")
    description = top.string("description")
    if description is not None:
        t.put("description", description, "description")
    top.finish(DEPLOYMENT_UNSUPPORTED)
    return t


def _take_keys(section: Section, t: Translation) -> None:
    for name in ("primaryKey", "secondaryKey"):
        value = section.string(name)
        if value is None:
            continue
        if not value.strip() or len(value) < 16:
            raise BadInput(f"{t.source}: {section.key(name)} must be at least 16 characters long")
        t.keys[name] = value


# --- inferenceconfig.json ------------------------------------------------------------------


def translate_inference_config(path: Path) -> Translation:
    data = load_mapping(path, "inference config")
    t = Translation(source=str(path))
    top = Section(data, "", t)
    config_dir = path.resolve().parent
    bases = [config_dir, Path.cwd()]

    runtime = top.string("runtime")
    if runtime is not None and runtime.lower() != "python":
        raise BadInput(
            f"{t.source}: runtime {runtime!r} is not supported: bereit runs Python entry scripts (\"runtime\": \"python\")"
        )

    entry = top.string("entryScript")
    if not entry:
        raise BadInput(f"{t.source}: entryScript is missing: name the scoring script, e.g. \"entryScript\": \"score.py\"")
    source_dir = top.string("sourceDirectory")
    if source_dir:
        folder = resolve(source_dir, bases, "folder", "sourceDirectory", path)
        if not folder.is_dir():
            raise BadInput(f"{t.source}: sourceDirectory {source_dir!r} ({folder}) is not a folder")
        script = resolve(entry, [folder], "file", "entryScript", path)
        relative = script.resolve().relative_to(folder.resolve()).as_posix() if _inside(script, folder) else None
        if relative is None:
            raise BadInput(f"{t.source}: entryScript {entry!r} must be inside sourceDirectory {folder}")
        t.code = CodeSource(entry_script=relative, folder=folder)
    else:
        script = resolve(entry, bases, "file", "entryScript", path)
        t.code = CodeSource(entry_script=script.name, script=script)
    if not script.is_file():
        raise BadInput(f"{t.source}: entryScript {entry!r} ({script}) is not a file")
    if not script.name.endswith(".py"):
        raise BadInput(f"{t.source}: entryScript {entry!r} must be a Python file (.py)")
    t.put("inference.entryScript", t.code.entry_script, "entryScript")

    dependencies = top.get("dependencies")
    if dependencies is not None:
        _take_dependencies(dependencies, t, [folder] if source_dir else bases, path)

    environment_section = top.section("environment")
    conda_file = top.string("condaFile")
    base_image = top.string("baseImage")
    if environment_section is not None and (conda_file or base_image):
        raise BadInput(
            f"{t.source}: environment cannot be combined with condaFile or baseImage: "
            "put the packages and image into the environment, or drop it"
        )
    if conda_file:
        conda_bases = ([folder] if source_dir else []) + bases
        conda_path = resolve(conda_file, conda_bases, "file", "condaFile", path)
        _take_conda(parse(read_text(conda_path, "conda file"), conda_path, "conda file"), str(conda_path), "condaFile", t)
    if base_image:
        _take_image(base_image, "baseImage", t)
    registry = top.section("baseImageRegistry")
    if registry is not None:
        _take_registry(registry, t)
    if environment_section is not None:
        _take_environment(environment_section, t, bases, path)

    gpu = top.boolean("enableGpu")
    if gpu:
        t.put("resources.gpu", 1, "enableGpu")
    description = top.string("description")
    if description is not None:
        t.put("description", description, "description")
    # Applied by `bereit package`; `bereit deploy` warns that it cannot apply them.
    t.extra_dockerfile_steps = top.string("extraDockerfileSteps")
    top.finish(INFERENCE_UNSUPPORTED)
    return t


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _take_dependencies(value: Any, t: Translation, bases: list[Path], config: Path) -> None:
    if not isinstance(value, list):
        raise BadInput(f"{t.source}: dependencies must be a list of files or folders")
    assert t.code is not None
    for reference in value:
        found = resolve(str(reference), bases, "file or folder", "dependencies", config)
        if t.code.folder is not None and _inside(found, t.code.folder):
            continue  # already part of the source directory
        files = [found] if found.is_file() else sorted(p for p in found.rglob("*") if p.is_file())
        root = found.parent
        for file in files:
            t.code.extra_files[file.relative_to(root).as_posix()] = file


def _take_conda(environment: Any, source: str, key: str, t: Translation) -> None:
    packages = conda.requirements_from_conda(environment, source)
    t.warnings.extend(packages.notes)
    if packages.requirements:
        existing = t.spec.get("inference", {}).get("environment", {}).get("pythonPackages", [])
        t.put("inference.environment.pythonPackages", existing + packages.requirements, key)


def _take_image(image: str, key: str, t: Translation) -> None:
    t.put("inference.environment.image", image, key)
    t.warnings.append(
        f"{t.source}: {key} {image}: the image must contain Python and the bereit package "
        "(bereit-server); images made for Azure ML lack it; `bereit package` builds one"
    )


def _take_registry(registry: Section, t: Translation) -> None:
    address = registry.string("address")
    username = registry.string("username")
    password = registry.string("password")
    registry.finish({"registryIdentity": "managed identities do not exist here: give username and password"})
    if username and password:
        if not address:
            raise BadInput(f"{t.source}: {registry.key('address')} is missing: name the registry host, e.g. myregistry.azurecr.io")
        t.registry = Registry(address=address, username=username, password=password)
    elif username or password:
        raise BadInput(f"{t.source}: {registry.prefix.rstrip('.')} needs both username and password")


def _take_environment(env: Section, t: Translation, bases: list[Path], config: Path) -> None:
    variables = env.strings("environmentVariables")
    if variables:
        t.put(
            "inference.environment.env",
            [{"name": name, "value": value} for name, value in variables.items()],
            env.key("environmentVariables"),
        )
    python = env.section("python")
    if python is not None:
        user_managed = python.boolean("userManagedDependencies")
        dependencies = python.get("condaDependencies")
        dependencies_file = python.string("condaDependenciesFile")
        if user_managed:
            if dependencies or dependencies_file:
                t.warnings.append(
                    f"{t.source}: {python.key('condaDependencies')} ignored: userManagedDependencies is "
                    "true, so the image must already hold the packages"
                )
        else:
            if dependencies is not None:
                _take_conda(dependencies, f"{t.source} ({python.key('condaDependencies')})", python.key("condaDependencies"), t)
            if dependencies_file:
                path = resolve(dependencies_file, bases, "file", python.key("condaDependenciesFile"), config)
                _take_conda(parse(read_text(path, "conda file"), path, "conda file"), str(path), python.key("condaDependenciesFile"), t)
        python.finish(PYTHON_UNSUPPORTED)
    docker = env.section("docker")
    if docker is not None:
        image = docker.string("baseImage")
        if image:
            _take_image(image, docker.key("baseImage"), t)
        registry = docker.section("baseImageRegistry")
        if registry is not None:
            _take_registry(registry, t)
        docker.finish(DOCKER_UNSUPPORTED)
    env.finish(ENVIRONMENT_UNSUPPORTED)
