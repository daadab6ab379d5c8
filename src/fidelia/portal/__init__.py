"""The member portal at ``/portal/{programme}``: a delivery layer like the back-office."""
