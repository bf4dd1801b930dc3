"""Allow ``python -m papermail``."""

from papermail.cli import main

if __name__ == "__main__":
    main()
