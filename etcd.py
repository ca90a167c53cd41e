#!/usr/bin/env python3
"""Entry point of the etcd appliance: ``python etcd.py [command]`` (default: ``run``)."""

import sys

from appliance.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
