"""Drives `recflow serve` with boto3's personalize-runtime and
personalize-events clients, exactly as an application moving from the
managed service would (only endpoint_url changed). Run by serve.rs; exits
non-zero with a message on the first failed check, prints "ok" at the end."""

import json
import os
import sys
from datetime import datetime, timezone

import boto3
from botocore.exceptions import ClientError

ENDPOINT = os.environ["RECFLOW_ENDPOINT"]
TRACKING_ID = os.environ["RECFLOW_TRACKING_ID"]
ARN = "arn:aws:personalize:us-east-1:123456789012:campaign/movies"
FILTER = "arn:aws:personalize:us-east-1:123456789012:filter/{}"


def client(service, secret):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="AKIDRECFLOWTEST",
        aws_secret_access_key=secret,
    )


def check(cond, what):
    if not cond:
        sys.exit(f"FAILED: {what}")


def error_code(call):
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"].get("Message", "")
    return None, ""


runtime = client("personalize-runtime", "s3cret")
events = client("personalize-events", "s3cret")

# GetRecommendations with a full campaign ARN and item metadata.
r = runtime.get_recommendations(
    campaignArn=ARN, userId="1", numResults=5, metadataColumns={"ITEMS": ["TITLE"]}
)
items = [i["itemId"] for i in r["itemList"]]
check(len(items) == 5, f"five items: {r}")
check(r["recommendationId"].startswith("RID-"), f"recommendationId: {r}")
check(all("TITLE" in i["metadata"] for i in r["itemList"]), f"metadata: {r}")
check(all(isinstance(i["score"], float) for i in r["itemList"]), f"scores: {r}")

# GetPersonalizedRanking with a filter and filter values.
r = runtime.get_personalized_ranking(
    campaignArn=ARN,
    userId="1",
    inputList=["50", "100", "181", "1"],
    filterArn=FILTER.format("genre"),
    filterValues={"GENRE": '"Action"'},
)
ranked = sorted(i["itemId"] for i in r["personalizedRanking"])
check(ranked == ["181", "50"], f"the genre filter keeps the Action items: {r}")

# GetRecommendations with a filter: only items of the genre.
r = runtime.get_recommendations(
    campaignArn=ARN, userId="2", numResults=3,
    filterArn=FILTER.format("genre"), filterValues={"GENRE": '"Crime"'},
)
check([i["itemId"] for i in r["itemList"]] in (["100"], []), f"Crime only: {r}")

# PutEvents changes the next answer: the item just watched is gone, and
# the Interactions filter sees the real-time event too.
top = items[0]
events.put_events(
    trackingId=TRACKING_ID,
    userId="1",
    sessionId="session-1",
    eventList=[{"eventType": "watch", "sentAt": datetime.now(timezone.utc), "itemId": top}],
)
after = runtime.get_recommendations(campaignArn=ARN, userId="1", numResults=5)
check(top not in [i["itemId"] for i in after["itemList"]], f"{top} excluded after the event: {after}")

# PutItems is accepted (empty 200).
DATASET = "arn:aws:personalize:us-east-1:123456789012:dataset/{}"
events.put_items(
    datasetArn=DATASET.format("ml/ITEMS"),
    items=[{"itemId": "new-1", "properties": json.dumps({"genres": "Action"})}],
)
# A dataset that does not exist (the group has no users dataset; another
# group does not exist at all) is not found, and nothing is stored.
code, _ = error_code(lambda: events.put_users(
    datasetArn=DATASET.format("ml/USERS"),
    users=[{"userId": "new-user", "properties": json.dumps({"age": 30})}],
))
check(code == "ResourceNotFoundException", f"PutUsers without a users dataset: {code}")
code, _ = error_code(lambda: events.put_items(
    datasetArn=DATASET.format("no-such-group/ITEMS"), items=[{"itemId": "x"}]))
check(code == "ResourceNotFoundException", f"PutItems to an unknown group: {code}")
# A property the schema does not have is named.
code, msg = error_code(lambda: events.put_items(
    datasetArn=DATASET.format("ml/ITEMS"),
    items=[{"itemId": "new-2", "properties": json.dumps({"studio": "Lucasfilm"})}],
))
check(code == "InvalidInputException" and "items.1.properties.studio" in msg, f"unknown property: {code} {msg}")
# The managed service's limits (botocore checks only minimums).
code, msg = error_code(lambda: events.put_events(
    trackingId=TRACKING_ID, sessionId="s",
    eventList=[{"eventType": "watch", "sentAt": 1, "itemId": "1", "recommendationId": "r" * 41}]))
check(code == "InvalidInputException" and "eventList.1.recommendationId: at most 40" in msg,
      f"recommendationId limit: {code} {msg}")

# Errors the SDK understands.
code, _ = error_code(lambda: runtime.get_recommendations(campaignArn=ARN.replace("movies", "nope"), userId="1"))
check(code == "ResourceNotFoundException", f"unknown campaign: {code}")
code, msg = error_code(lambda: runtime.get_recommendations(campaignArn=ARN, userId="1", numResults=501))
check(code == "InvalidInputException" and "numResults" in msg, f"numResults limit: {code} {msg}")
code, msg = error_code(lambda: runtime.get_recommendations(
    campaignArn=ARN, userId="1", filterArn=FILTER.format("genre")))
check(code == "InvalidInputException" and "$GENRE" in msg, f"missing filter value: {code} {msg}")
code, _ = error_code(lambda: events.put_events(
    trackingId="not-a-tracker", sessionId="s", eventList=[{"eventType": "watch", "sentAt": 1}]))
check(code == "ResourceNotFoundException", f"unknown tracker: {code}")

# A request signed with a wrong secret is refused.
code, _ = error_code(lambda: client("personalize-runtime", "wrong").get_recommendations(campaignArn=ARN, userId="1"))
check(code == "InvalidSignatureException", f"wrong secret: {code}")
code, _ = error_code(lambda: client("personalize-events", "wrong").put_events(
    trackingId=TRACKING_ID, sessionId="s", eventList=[{"eventType": "watch", "sentAt": 1, "itemId": "1"}]))
check(code == "InvalidSignatureException", f"wrong secret on events: {code}")

print("ok")
