"""`bereit`: Azure Machine Learning's workflow from a terminal. Entry point: bereit.cli.main:main."""
