"""``python -m aerec`` runs the command line (also what ``torchrun -m aerec`` starts)."""

from aerec.cli import main

if __name__ == "__main__":
    main()
