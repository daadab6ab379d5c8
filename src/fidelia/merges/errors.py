"""What a merge or an unmerge refuses (409), besides unknown ids (404) and bad input (422)."""

from __future__ import annotations

from fidelia.errors import Conflict


class NotMergeable(Conflict):
    """One of the two members is closed or already merged into someone."""

    code = "not_mergeable"


class DuplicateInDebt(Conflict):
    """The duplicate owes points: its debt would have to come out of the survivor's lots."""

    code = "duplicate_in_debt"


class AlreadyUnmerged(Conflict):
    code = "already_unmerged"


class CannotUnmerge(Conflict):
    """What the merge moved is no longer where the merge put it."""

    code = "cannot_unmerge"
