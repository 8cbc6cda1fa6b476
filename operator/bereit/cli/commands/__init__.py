"""One module per command group; each defines a typer app (or a command) and nothing else runs at import."""
