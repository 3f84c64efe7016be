"""Writes an SVG of every screen into docs/ from a results store with real runs (see docs/README.md).

    .venv/bin/python docs/make_screenshots.py --db PATH [--live RUN] [--sweep-run RUN] [--size 120x36]
"""

import argparse
import asyncio
from pathlib import Path

from tuibench.ui.app import TuibenchApp

DOCS = Path(__file__).resolve().parent


async def shoot(db: Path, live_run: int, sweep_run: int | None, size: tuple[int, int]) -> None:
    app = TuibenchApp(db_path=db)
    async with app.run_test(size=size) as pilot:
        async def save(name: str, *keys: str) -> None:
            for key in keys:
                await pilot.press(key)
            await pilot.pause(0.6)
            app.save_screenshot(str(DOCS / f"{name}.svg"))
            print(f"docs/{name}.svg")

        await save("setup")
        app.show_stored_run(live_run)
        await save("live")
        await save("modules", "3")
        await save("modules-decode", "p")
        await pilot.press("4")
        await pilot.pause(0.3)
        if sweep_run is not None:
            table = app.screen.query_one("#compare-runs")
            ids = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
            table.move_cursor(row=ids.index(str(sweep_run)))
            await pilot.press("a")
        await save("compare")
        await save("history", "5")
        await save("help", "question_mark")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--live", type=int, required=True, help="the run shown on the Live screen")
    parser.add_argument("--sweep-run", type=int, help="a run of a --rates sweep, picked with its sweep on Compare")
    parser.add_argument("--size", default="120x36")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    asyncio.run(shoot(args.db, args.live, args.sweep_run, (width, height)))


if __name__ == "__main__":
    main()
