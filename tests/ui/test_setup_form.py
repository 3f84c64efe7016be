"""Setup is generated from the option schema: a field for every option a CLI user has (unless the option says why
not), and what is typed in it makes the request the same text makes as a flag."""

import asyncio

from textual.widgets import Input, Select, SelectionList

from tuibench.core.plan import plan_options, request_from_table
from tuibench.ui.app import TuibenchApp
from tuibench.ui.settings import Settings
from tuibench.ui.widgets.option_form import OptionForm, widget_id


def _run(app, script, size=(100, 32)):
    async def main():
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await script(pilot)

    asyncio.run(main())


def test_every_option_has_a_setup_field_unless_it_says_why_not(sample_db):
    app = TuibenchApp(db_path=sample_db, settings=Settings())
    found: dict[str, bool] = {}

    async def script(pilot):
        for field in plan_options():
            found[field.key] = bool(app.screen.query(f"#{widget_id(field)}"))

    _run(app, script)
    missing = [key for key, shown in found.items() if not shown]
    assert missing == [f.key for f in plan_options() if f.opt.no_setup] == ["parts"]
    assert all(found[key] for key in ("endpoint", "served_model_name", "input_len", "output_len", "capacity.slo"))


def test_what_setup_reads_is_what_the_same_flags_ask_for(sample_db):
    """Typed text through the form and through the CLI: one request."""
    from tuibench.cli import build_parser
    from tuibench.cli.flags import request_from_args

    typed = {"endpoint": "http://127.0.0.1:9", "served_model_name": "served", "input_len": "16", "output_len": "8",
             "rates": "1,inf", "timeout_s": "30", "capacity.slo": "ttft_p99=500", "lengths": "32,64"}
    app = TuibenchApp(db_path=sample_db, settings=Settings(setup={"scenarios": ["serving"]}))
    read: dict = {}

    async def script(pilot):
        fields = {f.key: f for f in plan_options()}
        for key, text in typed.items():
            app.screen.query_one(f"#{widget_id(fields[key])}", Input).value = text
        app.screen.query_one("#api", Select).value = "chat"
        read.update(app.screen.query_one(OptionForm).read())

    _run(app, script)
    argv = ["compare", "--scenarios", "serving", "--api", "chat", "--endpoint", typed["endpoint"],
            "--served-model-name", "served", "--input-len", "16", "--output-len", "8", "--rates", "1,inf",
            "--timeout", "30", "--capacity-slo", "ttft_p99=500", "--lengths", "32,64"]
    args = build_parser().parse_args(argv)
    from_flags = request_from_args(args, ("offline", "serving", "profile", "capacity"))
    assert request_from_table(read) == from_flags
    assert from_flags.libraries == ("endpoint",) and read["served_model_name"] == "served"


def test_ticking_serving_opens_its_group_and_the_focused_field_shows_its_help(sample_db):
    app = TuibenchApp(db_path=sample_db, settings=Settings())

    async def script(pilot):
        from textual.widgets import Collapsible

        group = app.screen.query_one("#group-serving", Collapsible)
        assert group.collapsed
        app.screen.query_one("#scenarios", SelectionList).select("serving")
        await pilot.pause()
        assert not group.collapsed
        app.screen.query_one("#endpoint", Input).focus()
        await pilot.pause()
        assert "without /v1" in str(app.screen.query_one("#option-help").render())

    _run(app, script)
