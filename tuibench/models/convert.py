"""Makes a model's HF folder once: an embedded GGUF converted into safetensors + tokenizer (imports torch), or an
architecture's config written beside a stand-in tokenizer (no weights: they are drawn when the model is built)."""

import fcntl
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from tuibench.models.resolve import ModelRef


def ensure_converted(ref: ModelRef, log: Callable[[str], None]) -> Path:
    """The HF folder for `ref`, converting the GGUF first if this is the first use."""
    target = Path(ref.path)
    if not ref.needs_conversion:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Two runs starting at once must not both convert: the second waits, then finds the folder.
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").is_file():
            return target
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
            if ref.kind == "architecture":
                _write_architecture(Path(ref.config_path), Path(tmp) / "model")
            else:
                log(f"converting {ref.name} from its GGUF into {target} (once; about half a minute)")
                _convert(Path(ref.gguf_path), Path(tmp) / "model")
            shutil.move(str(Path(tmp) / "model"), target)
    return target


def _convert(gguf_path: Path, out: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the weight-loading bars; the GGUF reader's obeys TQDM_DISABLE alone
    folder, name = gguf_path.parent, gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    # Loading with gguf_file keeps the weights marked as quantised and refuses save_pretrained, so we
    # build a clean model from the config and move the dequantised weights into it.
    packed = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    clean.load_state_dict(packed.state_dict())
    clean.generation_config = packed.generation_config
    clean.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _write_architecture(config_path: Path, out: Path) -> None:
    import json

    from tuibench.models.stand_in_tokenizer import write_stand_in_tokenizer

    out.mkdir()
    config = json.loads(config_path.read_text())
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    write_stand_in_tokenizer(config, out)


def convert_in_subprocess(ref: ModelRef) -> Path:
    """The same conversion, in a separate interpreter: for callers that must not import torch (the CLI, the app)."""
    import os
    import subprocess
    import sys

    if ref.needs_conversion:
        # The GGUF reader draws a tqdm bar of carriage returns: in a log or a pipe that is noise, so none is drawn
        # (tqdm reads TQDM_DISABLE when it is imported, hence the variable, set for that interpreter only).
        subprocess.run([sys.executable, "-m", "tuibench.models.convert", ref.name,
                        *(["--random-weights"] if ref.random_weights else [])],
                       check=True, env={**os.environ, "TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"})
    return Path(ref.path)


if __name__ == "__main__":
    import sys

    from tuibench.models.resolve import resolve_model

    ensure_converted(resolve_model(sys.argv[1], random_weights="--random-weights" in sys.argv),
                     lambda message: print(message, file=sys.stderr))


def model_shape(name: str):
    """(the model's resolved ref, its ModelShape) from its config alone: theory needs no weights. A config that
    cannot be read is one UserError."""
    import json

    from tuibench.analysis.theory import ModelShape
    from tuibench.core.errors import UserError
    from tuibench.models.resolve import resolve_model

    ref = resolve_model(name, random_weights=True)
    config_path = convert_in_subprocess(ref) / "config.json"
    try:
        return ref, ModelShape.from_config(json.loads(config_path.read_text()))
    except (OSError, ValueError) as exc:
        raise UserError(f"{config_path}: {exc}") from None
