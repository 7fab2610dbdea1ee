"""The run's judge canaries (``--phyjudge-canaries``): checked once per run, on the run's own
judge, right when it is brought up, before its first judgment.

The check is the judge factory's ``guard``: for a judge behind the judgment cache it runs on
the cache's first miss (a run whose judgments all come from the cache, or whose items are
all skipped, costs nothing), for any other judge when the run first needs it, and never in
replay mode (``only``: no judge runs, and the reports say the canaries were not checked).
The canaries are judged on the real judge itself, never through the cache, and the model
already loaded serves them (no second copy).

Under pytest-xdist the check runs once, not per worker: the controller hands each worker a
folder of its own making (``workerinput``); the first worker to need a judge takes the
folder's lock, runs the check on its judge and writes the result there; every other worker
reads it under the same lock, and the controller reads it for the reports. The controller
never loads a judge of its own for the check (PhyJudge-9B is 24 GB, and the workers may be
judging on servers the controller need not reach), and the first worker waits for nothing.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_phyjudge._escape import terminal_text
from pytest_phyjudge._exceptions import InputError, JudgeLoadError
from pytest_phyjudge._files import write_json_atomic
from pytest_phyjudge._outputs import locked_folder
from pytest_phyjudge.canary.model import read_canaries, verified_clips
from pytest_phyjudge.canary.session import CanaryResult, check_judge, not_checked
from pytest_phyjudge.judges.base import Judge
from pytest_phyjudge.plugin.options import Options
from pytest_phyjudge.reporting.health import canary_line

#: ``workerinput`` key: the folder where the first worker leaves the check's result.
SHARED_KEY = "phyjudge_canary_dir"
RESULT_FILE = "canary-result.json"
_MAIN = threading.main_thread()


class CanaryGate:
    """The run's canary check: the file read and its clips verified when the run starts
    (a bad file is a usage error before anything is judged), then :meth:`guard` for the
    judge factory, and :meth:`outcome` for the reports."""

    def __init__(
        self, config: pytest.Config, options: Options, current: Callable[[], str | None]
    ) -> None:
        assert options.canaries is not None
        self.path = options.canaries
        self.mode = options.canary_mode
        self.settings = options.judge
        self.tolerances = options.canary_tolerances
        self._current = current
        self._surface = options.judge.surface
        worker = getattr(config, "workerinput", None)
        self._worker = None if worker is None else str(worker.get("workerid", "?"))
        shared = None if worker is None else worker.get(SHARED_KEY)
        #: The folder the workers share (on a worker: the controller's; on the controller:
        #: made when the first worker starts, removed at the end).
        self._shared: Path | None = None if shared is None else Path(shared)
        self._made_shared = False
        self.result: CanaryResult | None = None
        if options.judge.cache_mode == "only":
            flag = self._surface.flag("cache-mode", "only")
            self.result = not_checked(
                self.name, self.mode, f"replay mode ({flag}): no judge runs, so none was checked"
            )
            return
        try:
            self.canaries = read_canaries(self.path)
            self.clips = verified_clips(self.path, self.canaries)
        except InputError as exc:
            raise pytest.UsageError(f"{self._flag()}: {exc}") from None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def refusing(self) -> bool:
        """The check failed in ``fail`` mode: no judged item runs."""
        return self.result is not None and self.result.failed and self.mode == "fail"

    def _flag(self) -> str:
        return self._surface.flag("canaries", str(self.path))

    # -- pytest-xdist

    def share(self, workerinput: dict[str, Any]) -> None:
        """On the controller, for each worker it starts: the folder of the check's result."""
        if self.result is not None and not self.result.checked:
            return
        if self._shared is None:
            self._shared = Path(tempfile.mkdtemp(prefix="phyjudge-canaries-"))
            self._made_shared = True
        workerinput[SHARED_KEY] = str(self._shared)

    def close(self) -> None:
        if self._made_shared and self._shared is not None:
            shutil.rmtree(self._shared, ignore_errors=True)
            self._made_shared = False

    # -- the check

    def guard(self, load: Callable[[], Judge]) -> Judge:
        """Bring up the run's judge with ``load`` and check it against the canaries, once
        per run; a failed check in ``fail`` mode raises a JudgeLoadError (the whole message
        the first time, one that points to it after), without loading the judge again."""
        if self.result is None and self._shared is not None:
            with locked_folder(self._shared):
                self.result = _read_result(self._shared)
                if self.result is None:
                    judge = load()
                    self.result = self._check(judge)
                    write_json_atomic(self._shared / RESULT_FILE, self.result.to_dict())
                    return self._verdict(judge)
        if self.result is None:
            judge = load()
            self.result = self._check(judge)
            return self._verdict(judge)
        if self.refusing:
            raise self.again()
        return load()

    def _check(self, judge: Judge) -> CanaryResult:
        return check_judge(
            judge,
            self.settings,
            self.canaries,
            self.clips,
            file=self.name,
            mode=self.mode,
            tolerances=self.tolerances,
            clock=time.perf_counter,
            # A judge server's cases are judged ahead in threads: the item running then is
            # not the one whose case meets the failure first.
            first_item=self._current() if threading.current_thread() is _MAIN else None,
            worker=self._worker,
        )

    def _verdict(self, judge: Judge) -> Judge:
        result = self.result
        assert result is not None
        if not result.failed:
            return judge
        if self.mode == "warn":
            warnings.warn(
                pytest.PytestWarning(
                    # pytest prints a warning as it is: the line holds what the canary file
                    # and the judge server say of themselves.
                    terminal_text(
                        f"pytest-phyjudge: {canary_line(result.to_dict())} (judging anyway: "
                        f"{self._surface.flag('canary-mode', 'warn')})"
                    )
                ),
                stacklevel=1,
            )
            return judge
        judge.close()  # no judgment of it is trusted: free the model now
        raise JudgeLoadError(self.message())

    def message(self) -> str:
        """The whole message, shown once, by the first item that needed the judge."""
        result = self.result
        assert result is not None
        return "\n".join(
            [
                f"PhyJudge canary check FAILED ({self._flag()}): {result.line}",
                *result.details(),
                f"cost: {result.calls} judge calls, {result.seconds:.1f} judge-seconds",
                "No judgment of this judge is trusted, so every judged item of this run fails. "
                "Check the judge's setup (adapter, template, frame rate, pixels, server); "
                "record the canaries again ('phyjudge canary record') if the change is meant, "
                f"or judge anyway with {self._surface.flag('canary-mode', 'warn')}.",
            ]
        )

    def again(self) -> JudgeLoadError:
        """The brief error of every judged item after the first."""
        result = self.result
        assert result is not None
        where = result.first_item or "the first item that needed the judge"
        if result.worker is not None:
            where += f" (on pytest-xdist worker {result.worker})"
        return JudgeLoadError(
            f"The judge failed its canary check ({self._flag()}: {result.verdict}); {where} "
            "shows why (the same error for every judged item)."
        )

    def outcome(self) -> CanaryResult:
        """What the reports say: the check's result (a worker's, read from the shared
        folder on the controller), or why nothing was checked."""
        if self.result is None and self._shared is not None:
            self.result = _read_result(self._shared)
        if self.result is not None:
            return self.result
        return not_checked(
            self.name,
            self.mode,
            "no judge ran: every judgment came from the cache, nothing was judged, or the judge "
            "could not be brought up (the failed items say why)",
        )


def _read_result(folder: Path) -> CanaryResult | None:
    try:
        return CanaryResult.from_dict(json.loads((folder / RESULT_FILE).read_text()))
    except FileNotFoundError:
        return None
