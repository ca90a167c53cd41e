"""A watch stream read on a thread into a bounded queue, so that the mirror takes what has arrived in rounds."""

from __future__ import annotations

import queue
import threading

from appliance.adapters.etcd.watch import WatchStream

READ_AHEAD = 256             # watch responses held in memory at most


class Pump:
    """Reads a watch stream on a thread into a bounded queue (bounded memory when the destination is slow)."""

    def __init__(self, stream: WatchStream, depth: int = READ_AHEAD):
        self.stream = stream
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._run, name="watch-reader", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for response in self.stream:
                self._put(response)
                if self.closed.is_set():
                    return
        except Exception as exc:  # noqa: BLE001 - handed to the applier, which decides
            self._put(exc)

    def _put(self, item) -> None:
        while not self.closed.is_set():
            try:
                self.queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def take(self, wait: float, limit: int) -> list:
        """What has arrived: wait up to ``wait`` seconds for the first item, then take without waiting
        until the queue is empty or ``limit`` events were taken."""
        try:
            items = [self.queue.get(timeout=wait)]
        except queue.Empty:
            return []
        events = len(getattr(items[0], "events", ()))
        while events < limit:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            items.append(item)
            events += len(getattr(item, "events", ()))
        return items

    def close(self) -> None:
        self.closed.set()
        self.stream.close()
