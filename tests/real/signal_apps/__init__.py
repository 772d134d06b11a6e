"""Applications, setups and scenarios of the signal/timer/lock/spooler tests."""
