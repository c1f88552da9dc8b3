"""The DynamoDB adapter's algorithms as flows: generators that yield the requests they need, no I/O."""
