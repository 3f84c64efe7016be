"""One run at a time across every app process on this machine: the tabs of `tuibench web` are each an app process
of their own, and two of them must never put two engines on one GPU. An advisory lock on a file in the data
folder, held while a plan runs; the kernel lets it go when the process ends, however it ends."""

import fcntl
import os
from pathlib import Path


class RunLock:
    def __init__(self, path: Path):
        self.path = path
        self._file = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self, what: str) -> bool:
        """True once held (by this process now, or already); False while another process holds it."""
        if self._file is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(self.path, "a+")  # noqa: SIM115 - held open for as long as the lock is
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            return False
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()} {what}\n")  # who holds it, for a person looking
        file.flush()
        self._file = file
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
