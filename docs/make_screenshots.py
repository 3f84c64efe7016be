"""Writes an SVG of every screen into docs/images/ from a results store with real runs (see docs/app.md).

    .venv/bin/python docs/make_screenshots.py --db PATH --live RUN [--plan PLAN] [--size 120x36]
"""

import argparse
import asyncio
from pathlib import Path

from tuibench.ui.app import TuibenchApp

IMAGES = Path(__file__).resolve().parent / "images"


async def shoot(db: Path, live_run: int, plan: int | None, size: tuple[int, int]) -> None:
    from tuibench.core.store import ResultsStore

    app = TuibenchApp(db_path=db)
    async with app.run_test(size=size) as pilot:
        async def save(name: str, *keys: str) -> None:
            for key in keys:
                await pilot.press(key)
            await pilot.pause(0.3)
            await app.workers.wait_for_complete()  # the screens read the store in threads
            await pilot.pause(0.6)
            app.save_screenshot(str(IMAGES / f"{name}.svg"))
            print(f"docs/images/{name}.svg")

        await save("setup")
        app.show_stored_run(live_run)
        await save("live")
        await save("modules", "3")
        await save("modules-decode", "p")
        if plan is not None:
            with ResultsStore.open(db, create=False) as store:
                app.open_compare([run.id for run in store.get_plan(plan).runs])
        else:
            await pilot.press("4")
        await save("compare")
        await save("history", "5")
        await save("help", "question_mark")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--live", type=int, required=True, help="the run shown on the Live screen")
    parser.add_argument("--plan", type=int, help="the plan shown side by side on Compare (default: the newest)")
    parser.add_argument("--size", default="120x36")
    args = parser.parse_args()
    width, height = map(int, args.size.split("x"))
    asyncio.run(shoot(args.db, args.live, args.plan, (width, height)))


if __name__ == "__main__":
    main()
