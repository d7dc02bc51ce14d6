"""Routing: products in and out of auxip beyond its own inbox.

- `polling` (the poll function): sources (another AUXIP/PRIP/ADGS OData service, an S3
  bucket, a directory, SFTP) are listed, new files copied into the inbox, checked against
  what the source announced, and announced with `file.arrived` (origin `poll:<source>`).
- `transfers` (the route function): each published product matching a route's rule is
  copied to the route's target (S3, another auxip's inbox, HTTP PUT, SFTP, a directory),
  verified there, retried with backoff, and recorded in `transfers`.
- `config`: the YAML file operators keep sources and routes in (`auxip sources|routes`).
"""
