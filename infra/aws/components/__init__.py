"""One construct per capability: storage, bus, functions, API, consumers, alarms.

(Not named `constructs/`: a directory of that name would shadow the `constructs`
package whenever infra/aws lands on sys.path, e.g. `python infra/aws/app.py`.)
"""
