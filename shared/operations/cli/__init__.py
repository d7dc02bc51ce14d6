"""The `auxip` command line: operators' and developers' entry point."""
