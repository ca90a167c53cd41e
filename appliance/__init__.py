"""Self-managing etcd appliance for AWS: the instance agent and the local AWS it runs on."""
