"""Points given by one member to another: the programme's ``transfers`` policy, its checks,
the ledger posting, the record and the list (issue 16)."""
