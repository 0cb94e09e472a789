"""The replay engine: scenarios, strategies, budgets and results."""
