"""`python -m bereit.controllers`: run the operator with settings from the environment."""

from bereit.controllers.main import main

if __name__ == "__main__":
    main()
