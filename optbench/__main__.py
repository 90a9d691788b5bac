"""``python -m optbench`` is the ``optbench`` command."""

from optbench.cli import main

if __name__ == "__main__":  # guarded: worker processes re-import the main module
    main()
