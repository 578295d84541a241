"""Usage: every generation in a ledger, what it would have cost on an API, energy and net savings."""
