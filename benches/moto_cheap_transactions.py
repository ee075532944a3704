"""moto_server for the restore benchmark, with one emulator cost taken out.

moto backs up every table a `TransactWriteItems` call names with `copy.deepcopy` before applying
it, so that it can roll the table back if a condition fails. That makes each call cost time in
proportion to the whole table (about 25 ms per stored item here: over four minutes per call at
10,000 items), which DynamoDB does not do. This launcher replaces the deep copy of a table by a
copy of its item index: the same rollback for the `Put` operations lbrecon sends (moto stores a
new item object on every put; it never edits a stored one in place), at a cost of microseconds.
Everything lbrecon sends and receives is unchanged. Used by benches/restore.py only; tests run
the plain moto_server.
"""

import copy
import sys
from collections import defaultdict

from moto.dynamodb.models import table as table_module
import moto.dynamodb.models as models
from moto.server import main


class _CopyOnlyTables:
    """Stands in for the `copy` module inside moto's DynamoDB backend."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, table_module.Table):
            backup = copy.copy(value)
            backup.items = defaultdict(dict)
            # dict() copies in one step under the interpreter lock: the server answers requests
            # on several threads, and iterating the live index could see it change size.
            for key, stored in dict(value.items).items():
                backup.items[key] = dict(stored) if isinstance(stored, dict) else stored
            return backup
        return copy.deepcopy(value, memo)


models.copy = _CopyOnlyTables()

if __name__ == "__main__":
    sys.exit(main())
