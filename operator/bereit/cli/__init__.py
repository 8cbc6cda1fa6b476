"""`bereit`: the seeds' workflow from a terminal. Entry point: bereit.cli.main:main."""
