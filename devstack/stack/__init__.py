"""The local stack: the real servers auxip runs on one machine, started and stopped together."""
