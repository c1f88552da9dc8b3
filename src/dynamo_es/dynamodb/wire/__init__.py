"""The wire: botocore and aiobotocore clients that send and return DynamoDB's wire format, and credentials."""
