"""Follow a submitted job: print its status transitions and stream its logs until it ends.

Logs go to stdout as they come (`tail_job_logs`, a websocket); status lines go to stderr. The log stream
is reopened if it drops (SPCS ingress closes idle connections after 90 s), skipping what was printed.
The job's end is noticed either when the log stream closes or by polling its status, whichever is first;
then whatever the stream missed is printed from the stored log.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, TextIO

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
POLL_S = 0.5
LOG_DRAIN_S = 3.0
MAX_LOG_RECONNECTS = 20


def follow(client: Any, job_id: str, show_status: bool = True, out: TextIO | None = None) -> str:
    """Block until the job ends; return its final status name (SUCCEEDED, FAILED or STOPPED)."""
    return asyncio.run(_follow(client, job_id, show_status, out or sys.stdout))


class _Printed:
    """How many characters of the job's log have been shown (the stream may restart from the beginning)."""

    def __init__(self, out: TextIO):
        self.out, self.count = out, 0

    def show(self, text: str, offset: int) -> None:
        """Show what of `text`, which starts at `offset` in the whole log, was not shown yet."""
        fresh = text[max(0, self.count - offset) :]
        if fresh:
            self.out.write(fresh)
            self.out.flush()
            self.count += len(fresh)


async def _follow(client: Any, job_id: str, show_status: bool, out: TextIO) -> str:
    printed = _Printed(out)
    logs = asyncio.create_task(_stream_logs(client, job_id, printed))
    last = None
    try:
        while True:
            info = await asyncio.to_thread(client.get_job_info, job_id)
            status = str(info.status.value if hasattr(info.status, "value") else info.status)
            if status in TERMINAL:
                break  # said after the last logs
            if status != last and show_status:
                print(f"job {job_id}: {status}{_short(info.message, status)}", file=sys.stderr, flush=True)
            last = status
            if logs.done():
                await asyncio.sleep(POLL_S)
            else:
                await asyncio.wait({logs}, timeout=POLL_S)  # wakes early when the log stream closes
        await asyncio.wait({logs}, timeout=LOG_DRAIN_S)  # let the tail of the logs arrive
        logs.cancel()
        # The stream can end (or lag) before the last lines of a finished job: print the rest from the stored log.
        printed.show(await asyncio.to_thread(client.get_job_logs, job_id), 0)
        if show_status:
            print(f"job {job_id}: {status}{_short(info.message, status)}", file=sys.stderr, flush=True)
        return status
    finally:
        logs.cancel()


def _short(message: str | None, status: str) -> str:
    """The status message without the log excerpt Ray appends on failure (the logs were streamed)."""
    if not message or status == "RUNNING":
        return ""
    return f" ({message.split(', last available logs')[0].splitlines()[0]})"


async def _stream_logs(client: Any, job_id: str, printed: _Printed) -> None:
    for _ in range(MAX_LOG_RECONNECTS):
        offset = 0  # a reopened stream starts from the beginning of the log again
        try:
            async for chunk in client.tail_job_logs(job_id):
                printed.show(chunk, offset)
                offset += len(chunk)
            return
        except Exception as exc:  # any drop (aiohttp errors, Ray's RuntimeError): reopen
            print(f"(log stream dropped: {exc.__class__.__name__}; reopening)", file=sys.stderr, flush=True)
            await asyncio.sleep(1)
