"""The maintenance part of an observation: members' space, the alarms, the leader's records (reads only)."""

from __future__ import annotations

from appliance.adapters.etcd import answers
from appliance.adapters.etcd.errors import EtcdFailure
from appliance.model.keys import COMPACTION_KEY, DEFRAG_PREFIX, DEFRAG_RUNNING_KEY, MAINTENANCE_PREFIX, prefix_end
from appliance.model.maintenance import Alarm, CompactionRecord, DefragRecord, Maintenance, MemberSpace
from appliance.model.members import ClusterView, Member


def read(client, cluster: ClusterView, own: Member | None, all_members: bool) -> Maintenance:
    """What the maintenance needs this cycle.

    Args:
        client: an :class:`~appliance.adapters.etcd.client.EtcdClient` on the local member; each member's
            Maintenance Status is asked on that member's client URL.
        cluster: the cluster as observed (a leader known). own: this instance's member (None: not listed).
        all_members: every member's space (the serving leader), else this member's alone.

    A member that does not answer has unknown sizes; alarms or records that cannot be read are unknown
    (None, empty). Nothing is written.
    """
    chosen = cluster.members if all_members else tuple(m for m in (own,) if m is not None)
    answers = [_space(client, m, cluster.leader_id) for m in chosen]
    members = tuple(space for space, _ in answers)
    # Every member's Status lists the cluster's alarms; the first that answered says them. (The Alarm RPC
    # goes through raft, and times out while the local member is being defragmented.)
    alarms = next((found for _, found in answers if found is not None), None)
    compaction, defragmented, defragmenting = None, {}, None
    try:
        page = client.range(MAINTENANCE_PREFIX.encode(), prefix_end(MAINTENANCE_PREFIX.encode()), limit=10000)
    except EtcdFailure:
        page = None
    for kv in page.kvs if page is not None else ():
        key = kv.key.decode("utf-8", "replace")
        if key == COMPACTION_KEY:
            compaction = CompactionRecord.from_json(kv.value)
        elif key.startswith(DEFRAG_PREFIX):
            record = DefragRecord.from_json(kv.value)
            member_id = _hex_id(key[len(DEFRAG_PREFIX):])
            if record is not None and member_id is not None:
                defragmented[member_id] = record
        elif key == DEFRAG_RUNNING_KEY:
            defragmenting = _hex_id(kv.value.decode("ascii", "replace").strip())
    return Maintenance(members, alarms, compaction, defragmented, defragmenting)


def _space(client, member: Member, leader_id: int | None) -> tuple[MemberSpace, tuple[Alarm, ...] | None]:
    """The member's space, and the cluster's alarms as its Status lists them (None: it did not answer)."""
    base = dict(member_id=member.id, name=member.name, is_leader=member.id == leader_id,
                is_learner=member.is_learner)
    if not member.client_urls:
        return MemberSpace(healthy=False, **base), None
    try:
        status = client.status(member.client_urls[0])
    except EtcdFailure:
        return MemberSpace(healthy=False, **base), None
    # Answering with a leader, not /health: under an alarm /health says false on every member.
    return MemberSpace(healthy=status.leader_id != 0, db_size=status.db_size, db_size_in_use=status.db_size_in_use,
                       revision=status.revision or None, **base), answers.status_alarms(status.errors)


def _hex_id(text: str) -> int | None:
    """A member id written in hex (a record's key), None if ``text`` is not one."""
    if not text or len(text) > 16 or not all(c in "0123456789abcdef" for c in text):
        return None
    value = int(text, 16)
    return value if value > 0 else None
