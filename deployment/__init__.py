"""The Knative deployment as code: what `make manifests` generates and renders, and the
validators the test suite runs on it.

- `spec`: knative/functions.yaml, how each function is deployed (sizing, Triggers, schedules)
- `generate`: Services, Triggers, PingSources and EventTypes generated into knative/base/
- `kustomize`: a small kustomize renderer (the subset knative/ uses), so rendering needs
  neither kubectl nor a cluster
- `documents`, `references`, `contract`: validation of rendered documents (models and
  schemas, references between objects, agreement with functions/, events/ and settings)
- `selection`: the documents of one function, for `make deploy FUNCTION=...`

Development tooling only: nothing here runs inside a function, and the validators import
their dev dependencies (cloudcoil models, jsonschema) lazily.
"""
