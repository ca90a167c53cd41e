"""etcd: its JSON gateway, watch streams, the process, the data directory, snapshots, TLS, locks, users."""
