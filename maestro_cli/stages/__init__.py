"""One module per stage: its backend protocol and its thin Typer command."""
