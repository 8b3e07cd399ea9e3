"""An example Canvas sync function for the local profile: it reports what it was asked to do."""

import json
import os


def lambda_handler(event, context):
    records = event.get("Records", []) if isinstance(event, dict) else []
    return {
        "statusCode": 200,
        "body": json.dumps(
            {
                "records": len(records),
                "userServiceUrl": os.environ.get("USER_SERVICE_URL", ""),
            }
        ),
    }
