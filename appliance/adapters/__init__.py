"""Input and output with no policy: AWS, etcd, files, the status endpoint, logs. Imports only :mod:`appliance.model`."""
