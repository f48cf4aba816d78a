"""Cold migration and resize on the compute hosts, one module per step:

- ``prep``: on the destination, check that the instance fits;
- ``source``: on the source, stop the guest and hand its disk over;
- ``finish``: on the destination, make the guest: VERIFY_RESIZE;
- ``confirm``: on the source, delete the kept copy (also automatically);
- ``revert``: on the destination, destroy its copy; on the source, bring
  the kept copy back;
- ``recover``: what a restarting host does with a move it was part of.

Each step reports through the conductor (loom/conductor/move_state.py),
which changes the instance, the migration and the allocations together.
"""
