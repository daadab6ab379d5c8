"""The audit log: every write made through the back-office, with who, what, when, and the
state before and after."""
