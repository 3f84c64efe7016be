"""`python -m sglang.launch_server`'s command line, the flags tuibench passes in SGLang's spelling and choices."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from serve_mock import announce, serve  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(prog="launch_server.py")
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=30000)
    parser.add_argument("--enable-metrics", action="store_true")
    parser.add_argument("--dtype", default="auto", choices=["auto", "half", "float16", "bfloat16", "float", "float32"])
    parser.add_argument("--random-seed", type=int)
    parser.add_argument("--load-format", default="auto", choices=["auto", "pt", "safetensors", "npcache", "dummy"])
    parser.add_argument("--tp-size", type=int, default=1)
    parser.add_argument("--pp-size", type=int, default=1)
    parser.add_argument("--dp-size", type=int, default=1)
    parser.add_argument("--disable-radix-cache", action="store_true")
    parser.add_argument("--speculative-algorithm", choices=["EAGLE", "EAGLE3", "NEXTN", "STANDALONE", "NGRAM"])
    parser.add_argument("--speculative-num-draft-tokens", type=int)
    args = parser.parse_args()  # an unknown flag: "launch_server.py: error: unrecognized arguments: ...", exit 2
    announce("sglang", vars(args))
    serve(args.model_path, args.host, args.port, metrics="sglang" if args.enable_metrics else "none",
          reset_path="/flush_cache")


if __name__ == "__main__":
    main()
