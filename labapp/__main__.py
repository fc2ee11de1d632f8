import sys

from labapp.tools.cli import main

sys.exit(main())
