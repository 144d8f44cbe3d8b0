"""Between the engine and the store: folding events into bucket profiles and reading windows."""
