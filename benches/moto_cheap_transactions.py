"""moto_server for the restore benchmark, with one emulator cost taken out.

moto backs up every table a `TransactWriteItems` call names with `copy.deepcopy` before applying
it, so that it can roll the table back if a condition fails. That makes each call cost time in
proportion to the whole table (it backs up the table once per item of the call, each time rehashing every
key: minutes per call at 10,000 items), which DynamoDB does not do. This launcher replaces the deep copy of a table by a
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
            # dict() copies in one step under the interpreter lock (the server answers on
            # several threads) and reuses the stored key hashes: moto's key objects hash slowly,
            # and it backs the table up once per item of the transaction.
            index = dict(value.items)
            if value.has_range_key:
                index = {key: dict(by_range) for key, by_range in index.items()}
            backup.items = defaultdict(dict, index)
            return backup
        return copy.deepcopy(value, memo)


models.copy = _CopyOnlyTables()

if __name__ == "__main__":
    sys.exit(main())
