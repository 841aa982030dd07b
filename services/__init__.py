"""Domain logic and persistence. Plain async Python: nothing here imports tornado."""
