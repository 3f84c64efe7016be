"""The CLI, the core and the runner's parent side must not drag torch in: `--help` and the UI stay fast."""

import subprocess
import sys

LIGHT_MODULES = [
    "tuibench.cli", "tuibench.core.events", "tuibench.core.metrics", "tuibench.core.reducer", "tuibench.core.store",
    "tuibench.core.workload", "tuibench.backends", "tuibench.backends.hf_transformers", "tuibench.models.resolve",
    "tuibench.runner.supervisor", "tuibench.runner.recorder", "tuibench.runner.child", "tuibench.report.tables",
    "tuibench.report.progress", "tuibench.runner.server_pool", "tuibench.servers.managed", "tuibench.loadgen.driver",
    "tuibench.loadgen.client", "tuibench.scenarios.serving", "tuibench.scenarios.offline", "tuibench.scenarios.profile",
    "tuibench.backends.endpoint", "tuibench.backends.fake", "tuibench.profiling.fake_passes", "tuibench.runner.run_context",
    "tuibench.analysis.theory", "tuibench.analysis.paper", "tuibench.analysis.hardware", "tuibench.core.module_profile",
    "tuibench.report.module_tables", "tuibench.profiling.tree", "tuibench.profiling.timer",
    "tuibench.profiling.cpu_roofline", "tuibench.profiling.hf_profile", "tuibench.profiling.vllm_profile",
    "tuibench.telemetry.sampler",
    "tuibench.core.plan", "tuibench.core.side_by_side", "tuibench.core.document", "tuibench.runner.plans",
    "tuibench.runner.service", "tuibench.report.comparison", "tuibench.report.figures",
]


def test_cli_core_and_runner_parent_do_not_import_torch():
    code = (
        "import importlib, sys\n"
        f"for name in {LIGHT_MODULES!r}: importlib.import_module(name)\n"
        "from tuibench.cli import build_parser; build_parser()\n"
        "from tuibench.core.planfiles import load_plan_file; from tuibench.runner.plans import build_plan; build_plan(load_plan_file('quick'))\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'vllm', 'matplotlib') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"imported: {result.stdout.strip()}"


def test_the_cli_parser_does_not_load_textual():
    code = ("import sys\nfrom tuibench.cli import build_parser; build_parser()\n"
            "print('textual' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
