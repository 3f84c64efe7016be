"""A new user's mistakes, tried one by one: how many give one clean line and a non-zero exit.

    .venv/bin/python benchmarks/bad_inputs.py [--show]

Not a timing: the trial of issue 25, kept so that it can be run again. Each case is a command a user could type
wrong; a clean answer is exit 2 (a bad input: nothing ran, nothing stored) with exactly one line on stderr that
starts with `tuibench` and holds no traceback. Runs on the fake engine and loopback ports; nothing needs a network.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FAKE = ["--library", "fake", "--dataset", "random", "--input-len", "8", "--output-len", "4", "--num-requests", "2"]


def cases(work: Path, closed_port: int) -> list[tuple[str, list[str]]]:
    """(what the user got wrong, the arguments of `tuibench`)."""
    bad_plan = work / "bad.toml"
    bad_plan.write_text("[plan]\nbatchsize = 4\n")
    not_toml = work / "not.toml"
    not_toml.write_text("[plan\n")
    settings_home = work / "config" / "tuibench"
    settings_home.mkdir(parents=True, exist_ok=True)
    dataset = work / "lengths.jsonl"
    dataset.write_text('{"input_len": "x"}\n')
    url = f"http://127.0.0.1:{closed_port}"
    return [
        ("unknown library", ["run", "--library", "nope"]),
        ("unknown dataset", ["run", "--dataset", "nope"]),
        ("missing dataset file", ["run", "--dataset", str(work / "missing.jsonl")]),
        ("malformed dataset file", ["run", "--dataset", str(dataset)]),
        ("zero requests", ["run", "--num-requests", "0"]),
        ("negative requests", ["run", "--num-requests", "-1"]),
        ("zero batch", ["run", "--batch-size", "0"]),
        ("not a number", ["run", "--input-len", "abc"]),
        ("zero output", ["run", "--output-len", "0"]),
        ("range ratio over 1", ["run", "--dataset", "random", "--range-ratio", "2"]),
        ("negative warm-up", ["run", "--warmup-batches", "-1"]),
        ("misspelt scenario", ["run", "--scenario", "offlne"]),
        ("misspelt dtype", ["run", "--dtype", "float8"]),
        ("a device that is none", ["run", "--device", "tpu"]),
        ("a GPU this machine lacks", ["run", "--device", "cuda:7"]),
        ("zero threads", ["run", "--threads", "0"]),
        ("port out of range", ["run", "--scenario", "serving", "--port", "70000"]),
        ("zero rate", ["run", "--scenario", "serving", "--rates", "0"]),
        ("negative rate", ["run", "--scenario", "serving", "--rates", "-2"]),
        ("rates without serving", ["run", "--rates", "1,2"]),
        ("endpoint not a URL", ["run", "--scenario", "serving", "--endpoint", "notaurl"]),
        ("endpoint without scheme", ["run", "--scenario", "serving", "--endpoint", "127.0.0.1:8000"]),
        ("nothing at the endpoint", ["run", "--scenario", "serving", "--endpoint", url]),
        ("endpoint, offline", ["run", "--endpoint", url]),
        ("library endpoint without URL", ["run", "--library", "endpoint", "--scenario", "serving"]),
        ("endpoint with two libraries", ["run", "--libraries", "vllm,transformers", "--scenario", "serving",
                                         "--endpoint", url]),
        ("conversations offline", ["run", "--dataset", "conversations"]),
        ("client workers and a concurrency cap", ["run", "--scenario", "serving", "--client-workers", "2",
                                                  "--max-concurrency", "2"]),
        ("baseline not in the plan", ["run", "--baseline", "vllm"]),
        ("a library twice", ["run", "--libraries", "transformers,transformers"]),
        ("unknown model", ["run", "--model", "no-such-model"]),
        ("context too long", ["run", "--dataset", "short-16k", "--num-requests", "1"]),
        ("malformed SLO", ["run", "--scenario", "serving", "--slo", "ttft"]),
        ("unknown SLO metric", ["run", "--scenario", "serving", "--slo", "speed=5"]),
        ("seed not a number", ["run", "--seed", "x"]),
        ("library with no such scenario", ["run", "--library", "llamacpp", "--scenario", "profile"]),
        ("a library that cannot run here", ["run", "--library", "mii"]),
        ("unknown flag", ["run", "--batchsize", "4"]),
        ("profile lengths not numbers", ["profile", "--lengths", "32,abc"]),
        ("unknown shipped plan", ["compare", "no-such-plan"]),
        ("plan file with a misspelt key", ["compare", str(bad_plan)]),
        ("plan file not TOML", ["compare", str(not_toml)]),
        ("no such plan stored", ["compare", "show", "999"]),
        ("comparison into a missing folder", ["compare", "show", "1", "--csv", str(work / "nodir" / "x.csv")]),
        ("capacity without an SLO", ["capacity", *FAKE]),
        ("capacity SLO not a number", ["capacity", "--slo", "ttft_p99=abc"]),
        ("no such run", ["runs", "show", "999"]),
        ("export of no such run", ["runs", "export", "999"]),
        ("export into a missing folder", ["runs", "export", "1", "--output", str(work / "nodir" / "x.csv")]),
        ("export format", ["runs", "export", "1", "--format", "xml"]),
        ("diff with no such run", ["runs", "diff", "1", "999"]),
        ("a run id that is no number", ["runs", "show", "last"]),
        ("database in a missing folder", ["runs", "--db", str(work / "nodir" / "r.db")]),
        ("database that is a folder", ["runs", "--db", str(work)]),
        ("analyze an unknown model", ["analyze", "--model", "no-such-model"]),
        ("check an unknown library", ["check", "--libraries", "nope,transformers"]),
        ("app into a file", ["app"]),
        ("app with an unknown plan", ["app", "--plan", "no-such-plan"]),
        ("web on a port out of range", ["web", "--port", "70000"]),
        ("mock server with a negative TTFT", ["mock-server", "--ttft-ms", "-1"]),
        ("mock server on a port out of range", ["mock-server", "--port", "70000"]),
    ]


def try_case(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    try:
        done = subprocess.run([sys.executable, "-m", "tuibench", *args], capture_output=True, text=True, env=env,
                              cwd=REPO, timeout=120, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return -1, "no answer within 120 s"
    return done.returncode, done.stderr


def clean(code: int, stderr: str) -> bool:
    """Exit 2 and one line, tuibench's own, no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return code == 2 and len(lines) == 1 and lines[0].startswith("tuibench") and "Traceback" not in stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", action="store_true", help="print every answer, not only the rough ones")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as closed:
        work = Path(tmp)
        closed.bind(("127.0.0.1", 0))  # bound, never listening: nothing answers there
        env = os.environ | {"XDG_DATA_HOME": str(work / "data"), "XDG_CONFIG_HOME": str(work / "config"),
                            "TUIBENCH_FAKE_LISTED": "1"}
        first = subprocess.run([sys.executable, "-m", "tuibench", "run", *FAKE], capture_output=True, text=True,
                               env=env, cwd=REPO)  # run 1 and plan 1, for the cases that name them
        if first.returncode != 0:
            sys.exit(f"the first run, which the cases need, failed: {first.stderr.strip()}")
        tried = cases(work, closed.getsockname()[1])
        with ThreadPoolExecutor(max_workers=2) as pool:
            answers = list(pool.map(lambda case: try_case(case[1], env), tried))
    rough = 0
    for (what, argv), (code, stderr) in zip(tried, answers, strict=True):
        ok = clean(code, stderr)
        rough += not ok
        if args.show or not ok:
            shown = stderr.strip().replace("\n", " ⏎ ")
            print(f"{'ok   ' if ok else 'ROUGH'} {what}: exit {code}: {shown[:300]}")
    print(f"\n{len(tried) - rough} of {len(tried)} bad inputs give one clean line and exit 2")


if __name__ == "__main__":
    main()
