"""Allow ``python -m aggregator``."""

from aggregator.launch import main

if __name__ == "__main__":
    main()
