"""``python -m desra_basicsr`` runs the ``desra`` command."""
import sys

from desra_basicsr.commands import main

sys.exit(main())
