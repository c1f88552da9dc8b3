"""``python -m dynamo_es.cli``: the dynamo-es command."""

from . import main

main()
