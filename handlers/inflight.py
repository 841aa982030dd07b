"""Tells the application which requests are in flight (VideoApp.inflight), so that shutdown
waits for them.

The count is the application's; the handler only reports its two ends, because it is
the one object Tornado tells about both: ``on_finish`` once the answer is complete, and
``on_connection_close`` when the client leaves first, which may be after the body was
read, when Tornado tells no one else (and a request abandoned while its body streams in
ends with no answer, so the application's ``log_function`` never sees it). Counting in
the application's routing instead would miss those ends, or need Tornado's private
handler delegate, and would add a wrapper to every request.
"""

from __future__ import annotations


class CountedInFlight:
    def initialize(self) -> None:
        super().initialize()
        self.application.inflight.enter(self)

    def on_finish(self) -> None:
        super().on_finish()
        self.application.inflight.leave(self)

    def on_connection_close(self) -> None:
        super().on_connection_close()
        self.application.inflight.leave(self)
