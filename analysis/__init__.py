"""Reports, plots and the command line over cmmsim traces and replay results."""
