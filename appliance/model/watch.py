"""Watch responses as etcd's JSON gateway streams them (rpc.proto: WatchResponse, mvccpb.Event).

A PUT event carries no ``type`` field (the enum's zero value). A progress notification is a
response with no events whose ``header.revision`` promises that every later event has a higher
revision (etcd docs, api_reference_v3, ResponseHeader).
"""

from __future__ import annotations

import dataclasses

from appliance.model.keys import KeyValue


@dataclasses.dataclass(frozen=True)
class Event:
    """One change: ``type`` "PUT" or "DELETE"; ``kv.mod_revision`` is the change's revision."""

    type: str
    kv: KeyValue
    prev_kv: KeyValue | None = None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


@dataclasses.dataclass(frozen=True)
class WatchResponse:
    """One message of the stream. ``revision`` is the header's store revision."""

    revision: int
    events: tuple[Event, ...] = ()
    created: bool = False
    canceled: bool = False
    compact_revision: int = 0
    cancel_reason: str = ""

    @property
    def is_progress(self) -> bool:
        """A progress notification: all events up to ``revision`` have been sent."""
        return not self.events and not self.created and not self.canceled

    @classmethod
    def from_json(cls, item: dict) -> "WatchResponse":
        events = tuple(Event(e.get("type", "PUT"), KeyValue.from_json(e.get("kv", {})),
                             KeyValue.from_json(e["prev_kv"]) if e.get("prev_kv") else None)
                       for e in item.get("events", []))
        return cls(int(item.get("header", {}).get("revision", 0)), events, bool(item.get("created")),
                   bool(item.get("canceled")), int(item.get("compact_revision", 0)), item.get("cancel_reason", ""))
