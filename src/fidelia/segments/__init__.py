"""Live segments: conditions over members, kept current after each event and by a daily sweep."""

from fidelia.segments import jobs as jobs  # registers the sweep job's handler
