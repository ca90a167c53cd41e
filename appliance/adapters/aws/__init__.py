"""AWS: instance metadata, the groups' listing, Route53, S3, security groups, and counting every call."""
