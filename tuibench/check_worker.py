"""One library's half of `tuibench check`: reads a Job on stdin, prints a LibraryResult as its last line.

A process per library: each loads its own engine and threads, and none can disturb another.
"""

import os
import sys
import time
import traceback

import msgspec

from tuibench.check import Job, LibraryResult, result_line


def _transformers(job: Job, path, prompt_ids: list[list[int]]) -> list[list[int]]:
    import torch

    from tuibench.backends.hf_transformers import load_model

    _, model = load_model(path, job.device, job.dtype)
    out = []
    with torch.inference_mode():
        for ids in prompt_ids:  # one at a time: no padding, the same input every library sees
            input_ids = torch.tensor([ids], device=model.device)
            # No stop token and no minimum: EOS may be generated and generation goes on past it, as in the others.
            generated = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                       max_new_tokens=job.tokens, do_sample=False, eos_token_id=None, pad_token_id=0)
            out.append(generated[0, len(ids):].tolist())
    return out


def _vllm(job: Job, path, prompt_ids: list[list[int]]) -> list[list[int]]:
    from tuibench.backends.vllm_backend import cpu_environment, on_gpu
    from tuibench.core.spec import DatasetSpec, RunSpec

    spec = RunSpec(dataset=DatasetSpec(kind="random", source="random"), device=job.device, threads=job.threads)
    gpu = on_gpu(spec)
    if not gpu:
        os.environ.update(cpu_environment(job.threads))
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    from tuibench.backends.engine import dtype_name

    llm = LLM(model=str(path), dtype=dtype_name(job.dtype, gpu), enforce_eager=not gpu, seed=0, max_model_len=1024)
    # ignore_eos keeps going past EOS; min_tokens would also ban EOS and so pick another token than the others do.
    sampling = SamplingParams(max_tokens=job.tokens, ignore_eos=True, temperature=0.0)
    outputs = llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in prompt_ids], sampling, use_tqdm=False)
    return [list(o.outputs[0].token_ids) for o in outputs]


def _llamacpp(job: Job, ref, prompt_ids: list[list[int]]) -> list[list[int]]:
    from tuibench.backends.llamacpp_backend import context_needed, gguf_of, greedy_tokens, load_llama

    llm = load_llama(gguf_of(ref), context_needed([len(ids) + job.tokens for ids in prompt_ids]), job.threads, 0)
    return [greedy_tokens(llm, ids, job.tokens) for ids in prompt_ids]


def _mii(job: Job, path, prompt_ids: list[list[int]], tokenizer) -> list[list[int]]:  # pragma: no cover - CUDA only
    import mii

    pipe = mii.pipeline(str(path))
    texts = [tokenizer.decode(ids) for ids in prompt_ids]
    responses = pipe(texts, max_new_tokens=job.tokens, min_new_tokens=job.tokens, do_sample=False, ignore_eos=True)
    # MII's pipeline answers in text: its tokens are the text encoded again (exact for these prompts' outputs).
    return [tokenizer.encode(r.generated_text, add_special_tokens=False)[: job.tokens] for r in responses]


def main() -> None:
    job = msgspec.json.decode(sys.stdin.buffer.read(), type=Job)
    started = time.perf_counter()
    try:
        from transformers import AutoTokenizer

        from tuibench.models.convert import ensure_converted
        from tuibench.models.resolve import resolve_model

        ref = resolve_model(job.model)
        path = ensure_converted(ref, lambda message: print(message, file=sys.stderr))
        tokenizer = AutoTokenizer.from_pretrained(path)
        prompt_ids = [tokenizer.encode(p, add_special_tokens=False) for p in job.prompts]
        if job.library == "transformers":
            ids = _transformers(job, path, prompt_ids)
        elif job.library == "vllm":
            ids = _vllm(job, path, prompt_ids)
        elif job.library == "llamacpp":
            ids = _llamacpp(job, ref, prompt_ids)
        elif job.library == "mii":
            ids = _mii(job, path, prompt_ids, tokenizer)
        else:
            raise ValueError(f"no greedy check for library {job.library!r}")
        result = LibraryResult(library=job.library, ids=ids, texts=[tokenizer.decode(i) for i in ids],
                               seconds=time.perf_counter() - started)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as this library's error
        traceback.print_exc()
        result = LibraryResult(library=job.library, error=f"{type(exc).__name__}: {exc}",
                               seconds=time.perf_counter() - started)
    sys.stdout.flush()
    print(result_line(result), flush=True)


if __name__ == "__main__":
    main()
