"""A cluster's mode between regional clusters linked by the mirror (docs/design.md, "Modes are etcd's
own permissions")."""

from __future__ import annotations

import enum

# etcd users the appliance manages, and the role each holds (etcd requires root before it
# enables authentication).
USERS = {"root": "root", "appliance": "root", "mirror": "mirror", "client": "client"}


class Mode(str, enum.Enum):
    ACTIVE = "active"    # clients read and write the client prefix
    PASSIVE = "passive"  # clients only read it; the mirror writes it
