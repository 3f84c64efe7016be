"""`trtllm-serve MODEL`'s command line, the options tuibench passes in TensorRT-LLM's spelling, its options file
read as YAML as the engine reads it, and an unknown option refused as click refuses it."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_mock import announce, serve  # noqa: E402


class _ClickLike(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        unknown = message.partition("unrecognized arguments: ")[2].split()
        print("Usage: trtllm-serve [OPTIONS] MODEL\nTry 'trtllm-serve --help' for help.\n", file=sys.stderr)
        print(f"Error: No such option: {unknown[0]}" if unknown else f"Error: {message}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    import yaml

    parser = _ClickLike(prog="trtllm-serve")
    parser.add_argument("model")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--backend", default="pytorch", choices=["pytorch", "tensorrt", "_autodeploy"])
    parser.add_argument("--tp_size", type=int, default=1)
    parser.add_argument("--pp_size", type=int, default=1)
    parser.add_argument("--extra_llm_api_options")
    args = parser.parse_args()
    options = yaml.safe_load(Path(args.extra_llm_api_options).read_text()) if args.extra_llm_api_options else {}
    announce("trtllm-serve", {**vars(args), "extra_llm_api_options": options})
    # Its Prometheus route is registered only with per-request perf metrics on.
    serve(args.model, args.host, args.port, metrics="trtllm" if options.get("return_perf_metrics") else "none")


if __name__ == "__main__":
    main()
