"""The benchmark (`make bench`): its stack, load generators, targets, plot and profiles."""
