"""The staleness guard: run a program only while the etcd data it acts on is fresh.

``freshness`` is the check (also a Python API), ``supervise`` runs and stops the
program, ``systemd`` sends watchdog notifications, ``command`` is ``etcd.py guard``.
"""
