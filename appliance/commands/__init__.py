"""The ``etcd.py`` verbs, one module each, and the flag helpers they share (:mod:`.flags`)."""
