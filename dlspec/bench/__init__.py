"""`dlspec bench`: run the emitted scripts in their runtimes, record each run, report and chart."""
