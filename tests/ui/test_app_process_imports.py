"""The app's process never imports torch, transformers or vllm, even after visiting every screen."""

import subprocess
import sys
import textwrap


def test_app_process_stays_free_of_torch_after_every_screen(sample_db, tmp_path):
    code = textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        from tuibench.ui.app import TuibenchApp

        async def main():
            app = TuibenchApp(db_path=Path({str(sample_db)!r}))
            async with app.run_test(size=(100, 32)) as pilot:
                for key in ["2", "3", "p", "4", "space", "5", "question_mark", "escape", "1", "t"]:
                    await pilot.press(key)
                    await pilot.pause(0.1)
                app.show_stored_run(1)
                await pilot.pause(0.2)

        asyncio.run(main())
        print(",".join(m for m in ("torch", "transformers", "vllm") if m in sys.modules) or "clean")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "clean"
