"""Progress of a stage: rises from the band's low towards its high as the stage goes on."""

from __future__ import annotations

import math
from datetime import datetime

from sog_api.cloud.simulator import DURATIONS
from sog_api.worker.flows import Band

# The OpenStack stages take a few times what the simulator does at scale 1.
OPENSTACK_FACTOR = 3.0


def band_progress(band: Band, started: datetime, now: datetime, seconds_per_unit: float) -> int:
    """``low`` at the start, approaching ``high`` (never reaching it) as time passes."""
    if band.duration is None:
        return band.low
    expected = max(0.05, DURATIONS[band.duration] * seconds_per_unit)
    elapsed = max(0.0, (now - started).total_seconds())
    fraction = 1.0 - math.exp(-elapsed / expected)
    return min(band.high, band.low + int((band.high - band.low) * fraction))
