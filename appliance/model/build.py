"""The appliance's own version: what ``etcd.py --version`` prints and ``etcd_appliance_build_info`` exports.

Raised by hand at each release of the image (docs/reference.md, "Versions"); etcd's version is the binary's own.
"""

APPLIANCE_VERSION = "0.19.0"
