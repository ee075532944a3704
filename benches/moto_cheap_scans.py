"""moto_server for the scale benchmark, with the emulator's scan costs taken out.

A `Scan` page in moto costs far more than DynamoDB's: it sorts every item of the table (keys
compared in Python) and walks the sorted list from the start to the page's `ExclusiveStartKey`,
so each page costs time in proportion to the whole table; it deep-copies each item of the page;
and its generic serializer walks the API model for every value (about 1 s for a page of 250 of
the benchmark's records). This launcher answers a plain scan (no filter, projection, index or
segment) of a table with a string partition key and no sort key (the state table as lbrecon
scans it) from the table's keys sorted once, finding the start by bisection, with each item's
JSON made once and kept while the item is the one stored (moto stores a new item object on every
put and never edits a stored one in place). The items, their order, `Limit`, the 1 MB page limit
and `LastEvaluatedKey` are moto's, so lbrecon sends and receives what it would from the plain
server (benches/scale.py compared the pages of a 2,000-record table: identical). The sorted keys
are kept while the table's size is unchanged, which holds for a table whose keys are only ever
added (the benchmark's state table: lbrecon never deletes a record). Any other scan is moto's.
Used by benches/scale.py only; tests run the plain moto_server.
"""

import bisect
import json
import sys

from moto.core.responses import ActionResult
from moto.dynamodb.models import table as table_module
from moto.dynamodb.models.utilities import dynamo_to_dict
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

PLAIN = {"TableName", "Limit", "ExclusiveStartKey", "ConsistentRead", "ReturnConsumedCapacity"}
_moto_scan = DynamoHandler.scan
_sorted_keys = {}  # table id -> (item count, sorted key strings, key objects by string)
_item_json = {}  # item id -> (item, its JSON)


def _keys(table):
    cached = _sorted_keys.get(id(table))
    if cached is None or cached[0] != len(table.items):
        by_value = {key.value: key for key in list(table.items)}
        cached = (len(by_value), sorted(by_value), by_value)
        _sorted_keys[id(table)] = cached
    return cached[1], cached[2]


def _json(item):
    cached = _item_json.get(id(item))
    if cached is None or cached[0] is not item:
        cached = (item, json.dumps(dynamo_to_dict(item.attrs), separators=(",", ":")))
        _item_json[id(item)] = cached
    return cached[1]


class _Page(ActionResult):
    def __init__(self, body):
        super().__init__(None)
        self.body = body

    def execute_result(self, context):
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, self.body


def scan(self):
    body = self.body
    if not set(body) <= PLAIN or body.get("ReturnConsumedCapacity", "NONE") != "NONE":
        return _moto_scan(self)
    table = self.dynamodb_backend.get_table(body["TableName"])
    if table.range_key_attr is not None or table.hash_key_type != "S":
        return _moto_scan(self)
    values, by_value = _keys(table)
    start = 0
    if body.get("ExclusiveStartKey"):
        start = bisect.bisect_right(values, body["ExclusiveStartKey"][table.hash_key_attr]["S"])
    limit = body.get("Limit")
    page, size, last_key = [], 0, None
    for value in values[start:]:
        item = table.items[by_value[value]]
        if len(page) == limit or size + item.size() > table_module.RESULT_SIZE_LIMIT:
            last_key = {table.hash_key_attr: {"S": page[-1][0]}}
            break
        page.append((value, _json(item)))
        size += item.size()
    answer = f'{{"Count":{len(page)},"Items":[{",".join(j for _, j in page)}],"ScannedCount":{len(page)}'
    if last_key is not None:
        answer += f',"LastEvaluatedKey":{json.dumps(last_key, separators=(",", ":"))}'
    return _Page(answer + "}")


DynamoHandler.scan = scan

if __name__ == "__main__":
    sys.exit(main())
