"""``python -m viewer [MRI] [--cryo C] [--labels L] [--checkpoint CK] [--device D] [--screenshot OUT.png]``."""
import sys

from viewer.cli import main

sys.exit(main())
