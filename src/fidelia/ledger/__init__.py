"""The points ledger: wallets, lots, postings, expiry, pending release, returns, verification.

Importing the package registers its job handlers (release and expiry).
"""

from fidelia.ledger import jobs as jobs
