import sys

from pbkit.cli import main

sys.exit(main())
