import sys

from labapp.cli import main

sys.exit(main())
