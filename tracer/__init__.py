"""Everything that makes or reads cmmsim traces."""
