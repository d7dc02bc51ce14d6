"""The supply-chain and code checks `make audit` runs in CI, each a real tool: a CycloneDX
SBOM of what the image ships (cyclonedx-bom), the licences of those packages against the
allow-list in `licences.toml` (pip-licenses) and the third-party licence report, a SAST
pass (bandit), a scan of the tracked files for secrets (detect-secrets, reviewed findings
in `secrets.baseline`) and known vulnerabilities (pip-audit, when a database answers).

Standard library only: `python -m audit` runs with any Python >= 3.11, makes the tools'
virtual environment and the runtime one, and runs the tools from there."""
