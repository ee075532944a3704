"""moto_server for the scale benchmark, with one emulator cost taken out.

For every page of a `Scan`, moto sorts every item of the table (comparing keys in Python) and
then walks the sorted list from the start to find the page's `ExclusiveStartKey`: each page
costs time in proportion to the whole table (about 1 s a page at 10,000 items), so a scan of N
items costs N^2 (hours at 100,000), which DynamoDB does not. This launcher answers a plain scan
of a table with a string partition key and no sort key (no index, filter or segment: the state
table as lbrecon scans it) from the table's keys sorted once, finding the start by bisection,
with the items, limits and `LastEvaluatedKey` that moto's own scan gives. The sorted keys are
kept while the table's size is unchanged, which holds for a table whose keys are only ever
added (the benchmark's state table: lbrecon never deletes a record); any other scan is moto's.
Everything lbrecon sends and receives is unchanged. Used by benches/scale.py only; tests run the
plain moto_server.
"""

import bisect
import copy
import json
import sys

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models import table as table_module
from moto.dynamodb.responses import DynamoResult
from moto.server import main

_moto_scan = DynamoDBBackend.scan
_sorted_keys = {}  # table id -> (item count, sorted key strings, keys by string)


def _keys(table):
    cached = _sorted_keys.get(id(table))
    if cached is None or cached[0] != len(table.items):
        by_value = {key.value: key for key in list(table.items)}
        cached = (len(by_value), sorted(by_value), by_value)
        _sorted_keys[id(table)] = cached
    return cached[1], cached[2]


def _plain_scan(table, limit, exclusive_start_key, projection_expression):
    values, by_value = _keys(table)
    start = 0
    if exclusive_start_key is not None:
        start = bisect.bisect_right(values, exclusive_start_key[table.hash_key_attr]["S"])
    results, result_size, last_evaluated_key = [], 0, None
    for value in values[start:]:
        item = table.items[by_value[value]]
        if len(results) == limit or result_size + item.size() > table_module.RESULT_SIZE_LIMIT:
            last_evaluated_key = table._get_last_evaluated_key(results[-1], None)
            break
        results.append(copy.deepcopy(item))
        result_size += item.size()
    scanned_count = len(results)
    if projection_expression:
        results = [r.project(projection_expression) for r in results]
    return results, scanned_count, last_evaluated_key


def scan(self, table_name, filters, limit, exclusive_start_key, filter_expression, expr_names, expr_values,
         index_name, consistent_read, projection_expression, segments):
    table = self.get_table(table_name)
    if (not filters and not filter_expression and not index_name and segments == (None, None)
            and table.range_key_attr is None and table.hash_key_type == "S"):
        return _plain_scan(table, limit, exclusive_start_key, projection_expression)
    return _moto_scan(self, table_name, filters, limit, exclusive_start_key, filter_expression, expr_names,
                      expr_values, index_name, consistent_read, projection_expression, segments)


DynamoDBBackend.scan = scan
_moto_execute_result = DynamoResult.execute_result


def execute_result(self, context):
    """A `Scan`'s answer as JSON in one step (moto's serializer walks the API model for every
    value: about 1 s a page of 250 records)."""
    if context.operation_model.name != "Scan":
        return _moto_execute_result(self, context)
    status, headers, _ = _moto_execute_result(_EMPTY_SCAN, context)
    return status, headers, json.dumps(self.result, separators=(",", ":"))


_EMPTY_SCAN = DynamoResult({"Count": 0, "Items": [], "ScannedCount": 0})
DynamoResult.execute_result = execute_result

if __name__ == "__main__":
    sys.exit(main())
