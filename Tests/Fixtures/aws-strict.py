#!/usr/bin/env python3
"""The strict AWS layer: a loopback HTTP proxy between the aws CLI and moto_server.

moto is lenient where real AWS is not. This proxy makes moto answer as the AWS documentation says
AWS answers, at the level of the API action (never of argv spelling): it reads which action a
request is (query protocol `Action=` for ec2, rds, elbv2, iam, sts and old sqs; JSON protocol
`X-Amz-Target` for secretsmanager, ecs, logs, ecr and sqs; REST paths for lambda), answers some
requests itself, rewrites some of moto's answers, and forwards everything else unchanged (headers
kept, bodies streamed, Content-Length or chunked; S3 conditional PUTs pass through as they are).
Standard library only.

    python3 aws-strict.py --upstream http://127.0.0.1:MOTO_PORT --port-file FILE [--port N] [--log FILE]

scripts/local-aws.sh starts it beside moto_server and stops it by pid.

Behaviours (each can be switched on or off; RUNBOOK_AWS_STRICT=1 all, 0 none, or a comma list of
the names below; `readiness` stands for its five parts):

| name                     | what the layer does                                               | real AWS duration                 | scaled (default) | source |
| ------------------------ | ----------------------------------------------------------------- | --------------------------------- | ---------------- | ------ |
| ec2-consistency          | a call naming a vpc-/subnet-/sg-/eipalloc-/igw-/rtb- id created    | seconds, with backoff up to "a    | 1.8 s            | [1] |
|                          | moments ago answers InvalidVpcID.NotFound, InvalidSubnetID.NotFound,| few minutes" (modelled: 180 s)   |                  |     |
|                          | InvalidGroup.NotFound, InvalidAllocationID.NotFound,               |                                   |                  |     |
|                          | InvalidInternetGatewayID.NotFound, InvalidRouteTableID.NotFound    |                                   |                  |     |
|                          | (EC2 XML error, HTTP 400)                                          |                                   |                  |     |
| nat-pending              | a new NAT gateway is `pending`, then `available`                   | 1-2 min (modelled: 120 s)         | 1.2 s            | [2] |
| rds-creating             | a new DB instance is `creating`, then `backing-up`, then          | 10-15 min Multi-AZ (modelled:     | 3 s + 3 s        | [3] |
|                          | `available`; no Endpoint until `available`                         | 600 s creating + 300 s backing-up)|                  |     |
| alb-provisioning         | a new load balancer is `provisioning`, then `active`               | a few minutes (modelled: 180 s)   | 1.8 s            | [4] |
| lambda-pending           | a new function is State `Pending`, then `Active`; Invoke,          | up to a minute for a VPC function | 0.6 s            | [5] |
|                          | UpdateFunctionCode, UpdateFunctionConfiguration and PublishVersion | (modelled: 60 s)                  |                  |     |
|                          | meanwhile fail with ResourceConflictException (409)                |                                   |                  |     |
| ecs-service-starting     | new tasks start: after CreateService, its answer and               | a few minutes (modelled: 180 s)   | 1.8 s            | [17] |
|                          | DescribeServices show runningCount 0, pendingCount = desiredCount, |                                   |                  |     |
|                          | the PRIMARY deployment IN_PROGRESS; after an UpdateService with    |                                   |                  |     |
|                          | another task definition or forceNewDeployment, a new PRIMARY       |                                   |                  |     |
|                          | deployment (an id of its own, IN_PROGRESS, no task running) beside |                                   |                  |     |
|                          | the one it replaces (ACTIVE, running); then moto's answer with the |                                   |                  |     |
|                          | new deployment's id and task definition (moto keeps one deployment,|                                   |                  |     |
|                          | its id and old task definition, COMPLETED at once)                 |                                   |                  |     |
| sqs-deleted-recently     | CreateQueue of a name deleted less than 60 s ago:                  | 60 s                              | 0.6 s            | [6] |
|                          | AWS.SimpleQueueService.QueueDeletedRecently                        |                                   |                  |     |
| ec2-client-token         | every ClientToken is remembered with its request: the same token  | none (remembered until reset)     | -                | [7] |
|                          | with other parameters answers IdempotentParameterMismatch, with   |                                   |                  |     |
|                          | the same parameters the original answer                            |                                   |                  |     |
| secret-scheduled-deletion| CreateSecret of a name scheduled for deletion: InvalidRequestException| the recovery window, 7-30 days  | - (until restore)| [8] |
|                          | "You can't create this secret because a secret with this name is  |                                   |                  |     |
|                          | already scheduled for deletion." (moto answers ResourceExistsException)|                               |                  |     |
| lambda-eni               | a function with a VPC configuration gets one network interface per| up to 20 min after DeleteFunction | 3 s              | [9] |
|                          | subnet ("AWS Lambda VPC ENI-<function>", status in-use); after    |                                   |                  |     |
|                          | DeleteFunction they stay for a while: DeleteSubnet and             |                                   |                  |     |
|                          | DeleteSecurityGroup of those subnets/groups answer                 |                                   |                  |     |
|                          | DependencyViolation, DeleteNetworkInterface is refused             |                                   |                  |     |
| fargate-sizes            | RegisterTaskDefinition for FARGATE with a cpu/memory pair Fargate  | none                              | -                | [10] |
|                          | does not offer: ClientException "No Fargate configuration exists  |                                   |                  |     |
|                          | for given values."                                                 |                                   |                  |     |
| vpc-filters              | DescribeVpcs with a filter name EC2 does not know (e.g.            | none                              | -                | [11] |
|                          | `cidr-block`): InvalidParameterValue "The filter 'cidr-block' is   |                                   |                  |     |
|                          | invalid" (moto takes `cidr-block` as `cidr`, and answers HTTP 500 |                                   |                  |     |
|                          | to other unknown names)                                            |                                   |                  |     |
| pagination               | list/describe answers come in pages of 2 with a token (a page may  | none                              | -                | [12] |
|                          | hold fewer items than asked); EC2 describe calls and SQS ListQueues|                                   |                  |     |
|                          | page only when MaxResults is given, as those services do           |                                   |                  |     |
| cloudmap-operations      | the operation of a namespace's create or delete is SUBMITTED, then | a private namespace makes a Route | 0.6 s            | [13] |
|                          | PENDING, then SUCCESS (GetOperation; moto answers SUCCESS at once) | 53 zone (modelled: 60 s)          |                  |     |
| cloudmap-in-use          | Cloud Map DeleteService of a service with instances, DeleteNamespace| none                             | -                | [14] |
|                          | of a namespace with services: ResourceInUse (moto deletes them)    |                                   |                  |     |
| ecs-registers-tasks      | ECS registers a service's tasks in its Cloud Map registry          | none                              | -                | [15] |
|                          | (CreateService with serviceRegistries: desiredCount instances with |                                   |                  |     |
|                          | AWS_INSTANCE_IPV4), and deregisters them when the service is scaled|                                   |                  |     |
|                          | to 0 or deleted (moto keeps the registry and registers nothing)    |                                   |                  |     |
| ecs-container-memory     | RunTask of a FARGATE task definition whose containers give no      | none                              | -                | [16] |
|                          | memory of their own (the task's suffices) starts the task (moto    |                                   |                  |     |
|                          | answers HTTP 500): RegisterTaskDefinition gives moto such a        |                                   |                  |     |
|                          | container memoryReservation = the task's memory, and the layer     |                                   |                  |     |
|                          | takes it out of every RegisterTaskDefinition and                   |                                   |                  |     |
|                          | DescribeTaskDefinition answer again                                |                                   |                  |     |

Durations: the SQS 60 s and the Secrets Manager window are in the pages; the EC2 page prescribes
back-off "up to a few minutes" without a figure; the NAT, RDS and ALB figures are issue 16's (the
state pages give none); Lambda's Pending time is an estimate (the page gives none); the 20 minutes
of Lambda's interfaces come from AWS Support; a new service's 3 minutes are an estimate of its
parts (Fargate placing the task and pulling the image, about a minute; a Spring service starting
on 0.25 vCPU, about a minute; the target group's health checks, 2 x 15 s by this tool's defaults).

[1] https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html
    (error format: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html)
[2] https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_NatGateway.html (state: pending, available)
[3] https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html (DB instance status)
[4] https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_LoadBalancerState.html
[5] https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html
[6] https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteQueue.html
    (botocore: SQS.Client.exceptions.QueueDeletedRecently, "You must wait 60 seconds after deleting
    a queue before you can create another queue with the same name.")
[7] https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/Run_Instance_Idempotency.html
    (IdempotentParameterMismatch in https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html)
[8] https://docs.aws.amazon.com/secretsmanager/latest/userguide/manage_delete-secret.html
    (InvalidRequestException: "The secret is scheduled for deletion", botocore SecretsManager exceptions)
[9] https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-lambda-function-vpcconfig.html
    ("When you delete a function, CloudFormation monitors the state of its network interfaces and
    waits for Lambda to delete them"); 20 minutes: AWS Support, awslabs/aws-support-tools#174
[10] https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-cpu-memory-error.html
[11] https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeVpcs.html (the filter list)
[12] https://docs.aws.amazon.com/cli/latest/userguide/cli-usage-pagination.html and
     https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-pagination.html
[13] https://docs.aws.amazon.com/cloud-map/latest/api/API_GetOperation.html (Status: SUBMITTED,
     PENDING, SUCCESS, FAIL) and API_CreatePrivateDnsNamespace.html ("returns an OperationId");
     the 60 s is an estimate (the pages give no figure)
[14] https://docs.aws.amazon.com/cloud-map/latest/api/API_DeleteService.html and
     API_DeleteNamespace.html (ResourceInUse: "The specified resource can't be deleted because it
     contains other resources")
[15] https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-discovery.html ("Amazon ECS
     ... registers the task with the service registry"; tasks deregistered as they stop)
[16] https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-size-best-practice.html
     ("You can also specify CPU and memory at the container level for Fargate tasks. However,
     doing so isn't required.")
[17] https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html (rolloutState
     IN_PROGRESS until the deployment is COMPLETED; runningCount, pendingCount) and
     https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html
     (PROVISIONING, PENDING, ACTIVATING, RUNNING); the 180 s is an estimate (above)

Delays: ONE setting, RUNBOOK_AWS_STRICT_SCALE (default 0.01): a behaviour's delay is its real AWS
duration in seconds multiplied by it, kept between 0.5 s and 3 s (one linear factor cannot put both
SQS's 60 s and Lambda's 20 minutes inside a fast suite; the bounds keep every delay observable and
short). It must be more than 0: a delay is never zero. `make bench TIMING=aws` lifts the bounds
(POST /strict-api/config {"bounded": false}): every delay is then its real duration x the scale,
so that waits keep their real proportions.

Control (for tests; never forwarded):
  GET  /strict-api/config        {"behaviours": [...], "scale": S, "delays": {...}, "frozen": bool, ...}
  POST /strict-api/config        {"behaviours": "all" | "none" | "a,b" | [..], "scale": S, "frozen": bool,
                                  "bounded": bool}
  POST /strict-api/clock         {"advance": SECONDS} moves the layer's clock on (frozen or not);
                                 {"settle": "ec2-consistency"}: every id made so far is seen
                                 everywhere (EC2 has converged), the clock left as it is
  POST /moto-api/reset           forwarded to moto; then the layer forgets everything it remembered
                                 and goes back to its start-up configuration and clock
"""

import argparse
import base64
import http.client
import http.server
import json
import os
import re
import socketserver
import sys
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

# ----------------------------------------------------------------------------------------------
# Behaviours, durations, configuration

# name -> real AWS duration in seconds (None: no delay)
REAL_SECONDS = {
    "ec2-consistency": 180.0,
    "nat-pending": 120.0,
    "rds-creating": 600.0,
    "rds-backing-up": 300.0,
    "alb-provisioning": 180.0,
    "lambda-pending": 60.0,
    "sqs-deleted-recently": 60.0,
    "lambda-eni": 1200.0,
    "cloudmap-operations": 60.0,
    "ecs-service-starting": 180.0,
}
BEHAVIOURS = [
    "ec2-consistency", "nat-pending", "rds-creating", "alb-provisioning", "lambda-pending",
    "sqs-deleted-recently", "ec2-client-token", "secret-scheduled-deletion", "lambda-eni",
    "fargate-sizes", "vpc-filters", "pagination", "cloudmap-operations", "cloudmap-in-use",
    "ecs-registers-tasks", "ecs-container-memory", "ecs-service-starting",
]
ALIASES = {"readiness": ["nat-pending", "rds-creating", "alb-provisioning", "lambda-pending",
                         "ecs-service-starting"]}
DEFAULT_SCALE = 0.01
DELAY_FLOOR = 0.5
DELAY_CEILING = 3.0
PAGE_SIZE = 2


def parse_behaviours(value):
    """RUNBOOK_AWS_STRICT's value (or a list) -> set of behaviour names. Raises ValueError."""
    if isinstance(value, list):
        items = [str(v).strip() for v in value]
    else:
        value = (value or "").strip()
        if value.lower() in ("", "1", "all", "on", "true", "yes"):
            return set(BEHAVIOURS)
        if value.lower() in ("0", "none", "off", "false", "no"):
            return set()
        items = [v.strip() for v in value.split(",")]
    chosen = set()
    for item in items:
        if not item:
            continue
        if item in ("all", "1"):
            chosen.update(BEHAVIOURS)
        elif item in ALIASES:
            chosen.update(ALIASES[item])
        elif item in BEHAVIOURS:
            chosen.add(item)
        else:
            raise ValueError(
                f"unknown strict behaviour '{item}' (known: {', '.join(BEHAVIOURS)}, readiness, all)")
    return chosen


def parse_scale(value):
    scale = float(value)
    if not scale > 0:
        raise ValueError("RUNBOOK_AWS_STRICT_SCALE must be more than 0 (a delay is never zero)")
    return scale


class Clock:
    """Monotonic seconds, plus what tests added; frozen, it only moves when told to."""

    def __init__(self):
        self.offset = 0.0
        self.frozen_at = None

    def now(self):
        if self.frozen_at is not None:
            return self.frozen_at + self.offset
        return time.monotonic() + self.offset

    def freeze(self, frozen):
        if frozen and self.frozen_at is None:
            self.frozen_at = time.monotonic()
        elif not frozen and self.frozen_at is not None:
            self.offset += self.frozen_at - time.monotonic()
            self.frozen_at = None

    def advance(self, seconds):
        self.offset += seconds


class Config:
    def __init__(self, behaviours, scale):
        self.behaviours = set(behaviours)
        self.scale = scale
        self.bounded = True

    def on(self, name):
        return name in self.behaviours

    def delay(self, name):
        if not self.bounded:
            return REAL_SECONDS[name] * self.scale
        return min(DELAY_CEILING, max(DELAY_FLOOR, REAL_SECONDS[name] * self.scale))

    def describe(self, clock):
        return {
            "behaviours": sorted(self.behaviours),
            "known": BEHAVIOURS,
            "aliases": ALIASES,
            "scale": self.scale,
            "delays": {name: round(self.delay(name), 3) for name in REAL_SECONDS},
            "real_seconds": REAL_SECONDS,
            "bounds": [DELAY_FLOOR, DELAY_CEILING] if self.bounded else None,
            "page_size": PAGE_SIZE,
            "frozen": clock.frozen_at is not None,
        }


# ----------------------------------------------------------------------------------------------
# What the layer remembers (forgotten on /moto-api/reset)


class Memory:
    def __init__(self):
        self.fresh_ids = {}        # ec2 id -> time its create answered
        self.nat = {}              # nat gateway id -> created
        self.rds = {}              # db instance identifier -> created
        self.alb = {}              # load balancer arn -> created
        self.functions = {}        # lambda function name -> created
        self.deleted_queues = {}   # (region, queue name) -> deleted
        self.client_tokens = {}    # (action, token) -> (signature, status, content type, body)
        self.lambda_enis = []      # [{function, region, enis, subnets, groups, deleted}]
        self.operations = {}       # cloud map operation id -> time its create/delete answered
        self.registered = {}       # (region, ecs service name) -> [(cloud map service id, instance id)]
        self.container_memory = {} # task definition arn -> names of containers given memoryReservation
        self.ecs_services = {}     # ecs service arn -> created
        self.ecs_rollouts = {}     # ecs service arn -> the deployment its last UpdateService started


# ----------------------------------------------------------------------------------------------
# Requests


HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
    "transfer-encoding", "upgrade", "expect", "content-length", "proxy-connection",
}

JSON_TARGETS = {
    "AmazonSQS": "sqs",
    "secretsmanager": "secretsmanager",
    "AmazonEC2ContainerServiceV20141113": "ecs",
    "Logs_20140328": "logs",
    "AmazonEC2ContainerRegistry_V20150921": "ecr",
    "ResourceGroupsTaggingAPI_20170126": "tagging",
    "Route53AutoNaming_v20170314": "servicediscovery",
}

CREDENTIAL_RE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


class Call:
    """One request as the layer sees it."""

    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers      # list of (name, value)
        self.body = body            # bytes, or None when the body is streamed
        self.service = None
        self.action = None
        self.protocol = None        # "query", "json", "rest-json"
        self.params = None          # query protocol: list of (name, value)
        self.json = None            # json protocol: dict
        self.region = "us-east-1"
        self.function = None        # lambda: function name in the path
        self.container_memory = None  # ecs-container-memory: containers given a reservation
        auth = self.header("authorization") or ""
        match = CREDENTIAL_RE.search(auth)
        self.scope_service = None
        if match:
            self.region, self.scope_service = match.group(1), match.group(2)

    def header(self, name):
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    def param(self, name):
        for key, value in self.params or []:
            if key == name:
                return value
        return None

    def params_with_prefix(self, prefix):
        return [(k, v) for k, v in self.params or [] if k.startswith(prefix)]


def classify(method, path, headers, body_peek):
    """Decides from headers and path alone whether the layer must read the body."""
    lower = {k.lower(): v for k, v in headers}
    if lower.get("x-amz-target"):
        return True
    if path.startswith("/2015-03-31/functions"):
        return True
    content_type = lower.get("content-type", "")
    if method == "POST" and content_type.startswith("application/x-www-form-urlencoded"):
        return True
    if "Action=" in urllib.parse.urlsplit(path).query:
        return True
    return False


LAMBDA_PATH = re.compile(r"^/2015-03-31/functions/?([^/?]*)(/[^?]*)?")


def identify(call):
    """Fills service, action, protocol and the parsed parameters."""
    target = call.header("x-amz-target")
    split = urllib.parse.urlsplit(call.path)
    if target:
        prefix, _, action = target.rpartition(".")
        call.service = JSON_TARGETS.get(prefix, prefix)
        call.action = action
        call.protocol = "json"
        try:
            call.json = json.loads(call.body or b"{}")
        except ValueError:
            call.json = {}
        return
    match = LAMBDA_PATH.match(split.path)
    if match:
        call.service = "lambda"
        call.protocol = "rest-json"
        name = urllib.parse.unquote(match.group(1) or "")
        if ":function:" in name:
            name = name.split(":function:", 1)[1]
        name = name.split(":", 1)[0]
        call.function = name or None
        rest = match.group(2) or ""
        m = call.method
        if not name:
            call.action = {"POST": "CreateFunction", "GET": "ListFunctions"}.get(m)
        elif rest in ("", "/"):
            call.action = {"GET": "GetFunction", "DELETE": "DeleteFunction"}.get(m)
        elif rest == "/configuration":
            call.action = {"GET": "GetFunctionConfiguration",
                           "PUT": "UpdateFunctionConfiguration"}.get(m)
        elif rest == "/code" and m == "PUT":
            call.action = "UpdateFunctionCode"
        elif rest == "/invocations" and m == "POST":
            call.action = "Invoke"
        elif rest == "/versions" and m == "POST":
            call.action = "PublishVersion"
        if call.body and call.action in ("CreateFunction",):
            try:
                call.json = json.loads(call.body)
            except ValueError:
                call.json = {}
        return
    pairs = []
    if split.query:
        pairs += urllib.parse.parse_qsl(split.query, keep_blank_values=True)
    if call.body and (call.header("content-type") or "").startswith("application/x-www-form-urlencoded"):
        pairs += urllib.parse.parse_qsl(call.body.decode("utf-8", "replace"), keep_blank_values=True)
    action = dict(pairs).get("Action")
    if action:
        call.protocol = "query"
        call.params = pairs
        call.action = action
        call.service = {"elasticloadbalancing": "elbv2"}.get(call.scope_service, call.scope_service)


def encode_params(pairs):
    return urllib.parse.urlencode(pairs).encode()


# ----------------------------------------------------------------------------------------------
# Answers the layer makes itself


class Answer:
    def __init__(self, status, content_type, body, headers=()):
        self.status = status
        self.content_type = content_type
        self.body = body if isinstance(body, bytes) else body.encode()
        self.headers = list(headers)


def xml_escape(text):
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def ec2_error(code, message):
    """EC2's error answer (HTTP 400), as errors-overview.html shows it."""
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{xml_escape(code)}</Code><Message>{xml_escape(message)}</Message>"
            f"</Error></Errors><RequestID>{uuid.uuid4()}</RequestID></Response>")
    return Answer(400, "text/xml;charset=UTF-8", body)


def query_error(code, message, sender=True):
    """The query protocol's error answer (rds, elbv2, iam, sqs query)."""
    body = ('<?xml version="1.0"?>\n<ErrorResponse><Error>'
            f"<Type>{'Sender' if sender else 'Receiver'}</Type><Code>{xml_escape(code)}</Code>"
            f"<Message>{xml_escape(message)}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
    return Answer(400, "text/xml", body)


def json_error(call, type_name, message, query_code=None):
    version = "1.0" if call.service == "sqs" else "1.1"
    headers = [("x-amzn-RequestId", str(uuid.uuid4()))]
    if query_code:
        headers.append(("x-amzn-query-error", f"{query_code};Sender"))
    body = json.dumps({"__type": type_name, "message": message})
    return Answer(400, f"application/x-amz-json-{version}", body, headers)


def rest_json_error(status, type_name, message):
    headers = [("x-amzn-ErrorType", type_name), ("x-amzn-RequestId", str(uuid.uuid4()))]
    return Answer(status, "application/json", json.dumps({"Type": "User", "message": message}),
                  headers)


# ----------------------------------------------------------------------------------------------
# XML helpers (responses are rewritten with ElementTree, keeping the default namespace)


def parse_xml(body):
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return None, None
    ns = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    return root, ns


def q(ns, name):
    return f"{{{ns}}}{name}" if ns else name


def local(tag):
    return tag.split("}", 1)[1] if tag.startswith("{") else tag


def to_bytes(root, ns):
    text = ET.tostring(root, encoding="unicode", default_namespace=ns or None)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + text).encode()


def find_local(root, name):
    for element in root.iter():
        if local(element.tag) == name:
            return element
    return None


def child(element, ns, name):
    return element.find(q(ns, name))


# ----------------------------------------------------------------------------------------------
# EC2 eventual consistency

FRESH_ID_ERRORS = {
    "vpc-": ("InvalidVpcID.NotFound", "The vpc ID '{}' does not exist"),
    "subnet-": ("InvalidSubnetID.NotFound", "The subnet ID '{}' does not exist"),
    "sg-": ("InvalidGroup.NotFound", "The security group '{}' does not exist"),
    "eipalloc-": ("InvalidAllocationID.NotFound", "The allocation ID '{}' does not exist"),
    "igw-": ("InvalidInternetGatewayID.NotFound", "The internetGateway ID '{}' does not exist"),
    "rtb-": ("InvalidRouteTableID.NotFound", "The routeTable ID '{}' does not exist"),
}
# create action -> the element of its answer that holds the new id
CREATES = {
    "CreateVpc": "vpcId",
    "CreateSubnet": "subnetId",
    "CreateSecurityGroup": "groupId",
    "AllocateAddress": "allocationId",
    "CreateInternetGateway": "internetGatewayId",
    "CreateRouteTable": "routeTableId",
}

# DescribeVpcs filter names (API_DescribeVpcs.html)
VPC_FILTERS = {
    "cidr", "cidr-block-association.cidr-block", "cidr-block-association.association-id",
    "cidr-block-association.state", "dhcp-options-id", "ipv6-cidr-block-association.ipv6-cidr-block",
    "ipv6-cidr-block-association.ipv6-pool", "ipv6-cidr-block-association.association-id",
    "ipv6-cidr-block-association.state", "is-default", "owner-id", "state", "tag-key", "vpc-id",
}

# Fargate task sizes (task-cpu-memory-error.html): cpu -> allowed memory (MiB)
FARGATE_SIZES = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4096 + 1, 1024)),
    1024: set(range(2048, 8192 + 1, 1024)),
    2048: set(range(4096, 16384 + 1, 1024)),
    4096: set(range(8192, 30720 + 1, 1024)),
    8192: set(range(16384, 61440 + 1, 4096)),
    16384: set(range(32768, 122880 + 1, 8192)),
}


def fargate_units(value, unit_words, factor):
    """'1024' -> 1024; '1 vCPU' -> 1024; '2 GB' -> 2048. None when it is neither."""
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([A-Za-z]+)", text)
    if match and match.group(2).lower() in unit_words:
        return int(round(float(match.group(1)) * factor))
    return None


# ----------------------------------------------------------------------------------------------
# Pagination: (service, action) -> how the service pages that list (botocore paginators-1.json)
#   kind: "xml-ec2" | "xml-query" | "json" | "rest-json"
#   when: "always" (the service pages by default) | "asked" (only when the limit is given)

PAGED = {}


def _paged(service, actions, kind, token_in, limit, token_out, when="always", **extra):
    for action, result in actions.items():
        PAGED[(service, action)] = dict(kind=kind, token_in=token_in, limit=limit,
                                        token_out=token_out, result=result, when=when, **extra)


_paged("ec2", {
    "DescribeVpcs": "vpcSet", "DescribeSubnets": "subnetSet",
    "DescribeSecurityGroups": "securityGroupInfo", "DescribeSecurityGroupRules": "securityGroupRuleSet",
    "DescribeNatGateways": "natGatewaySet", "DescribeRouteTables": "routeTableSet",
    "DescribeInternetGateways": "internetGatewaySet", "DescribeNetworkInterfaces": "networkInterfaceSet",
}, "xml-ec2", "NextToken", "MaxResults", "nextToken", when="asked", item="item")
_paged("elbv2", {"DescribeLoadBalancers": "LoadBalancers", "DescribeTargetGroups": "TargetGroups",
                 "DescribeListeners": "Listeners"},
       "xml-query", "Marker", "PageSize", "NextMarker", item="member")
_paged("rds", {"DescribeDBInstances": ("DBInstances", "DBInstance"),
               "DescribeDBSubnetGroups": ("DBSubnetGroups", "DBSubnetGroup"),
               "DescribeDBSnapshots": ("DBSnapshots", "DBSnapshot")},
       "xml-query", "Marker", "MaxRecords", "Marker")
_paged("iam", {"ListRoles": "Roles", "ListAttachedRolePolicies": "AttachedPolicies",
               "ListRolePolicies": "PolicyNames", "ListRoleTags": "Tags"},
       "xml-query", "Marker", "MaxItems", "Marker", item="member", truncated="IsTruncated")
_paged("ecs", {"ListClusters": "clusterArns", "ListServices": "serviceArns", "ListTasks": "taskArns",
               "ListTaskDefinitions": "taskDefinitionArns", "ListTaskDefinitionFamilies": "families"},
       "json", "nextToken", "maxResults", "nextToken")
_paged("secretsmanager", {"ListSecrets": "SecretList"}, "json", "NextToken", "MaxResults", "NextToken")
_paged("logs", {"DescribeLogGroups": "logGroups"}, "json", "nextToken", "limit", "nextToken")
_paged("ecr", {"DescribeRepositories": "repositories", "DescribeImages": "imageDetails",
               "ListImages": "imageIds"}, "json", "nextToken", "maxResults", "nextToken")
_paged("sqs", {"ListQueues": "QueueUrls"}, "json", "NextToken", "MaxResults", "NextToken", when="asked")
_paged("tagging", {"GetResources": "ResourceTagMappingList"}, "json", "PaginationToken",
       "ResourcesPerPage", "PaginationToken")
_paged("lambda", {"ListFunctions": "Functions"}, "rest-json", "Marker", "MaxItems", "NextMarker")

TOKEN_PREFIX = "strict-page-"


def primary_deployment(service):
    """An ECS service's PRIMARY deployment (a dict of its answer), or None."""
    return next((d for d in service.get("deployments") or [] if d.get("status") == "PRIMARY"), None)


def make_token(offset):
    return TOKEN_PREFIX + base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def read_token(token):
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    try:
        return int(json.loads(base64.urlsafe_b64decode(token[len(TOKEN_PREFIX):]))["o"])
    except (ValueError, KeyError, TypeError):
        return None


# ----------------------------------------------------------------------------------------------
# The layer


class Layer:
    def __init__(self, upstream, behaviours, scale, log):
        split = urllib.parse.urlsplit(upstream)
        self.upstream_host = split.hostname
        self.upstream_port = split.port or 80
        self.upstream = upstream
        self.default_behaviours = set(behaviours)
        self.default_scale = scale
        self.config = Config(behaviours, scale)
        self.clock = Clock()
        self.memory = Memory()
        self.lock = threading.RLock()
        self.log_file = log

    # -- bookkeeping

    def log(self, message):
        line = f"{time.strftime('%H:%M:%S')} {message}\n"
        if self.log_file:
            with open(self.log_file, "a") as out:
                out.write(line)
        else:
            sys.stderr.write(line)
            sys.stderr.flush()

    def reset(self):
        with self.lock:
            self.memory = Memory()
            self.config = Config(self.default_behaviours, self.default_scale)
            self.clock = Clock()
        self.log("reset: memory cleared, start-up configuration")

    def within(self, since, name):
        """True while the delay of `name` since `since` runs (a microsecond of float slack)."""
        return since is not None and self.clock.now() - since < self.config.delay(name) - 1e-6

    # -- upstream

    def moto(self, method, path, headers, body):
        """A whole request to moto; returns (status, headers, body)."""
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=600)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            has_host = False
            for key, value in headers:
                if key.lower() in HOP_BY_HOP:
                    continue
                has_host = has_host or key.lower() == "host"
                conn.putheader(key, value)
            if not has_host:
                conn.putheader("Host", f"{self.upstream_host}:{self.upstream_port}")
            conn.putheader("Content-Length", str(len(body or b"")))
            conn.endheaders()
            if body:
                conn.send(body)
            response = conn.getresponse()
            data = response.read()
            return response.status, response.getheaders(), data
        finally:
            conn.close()

    def internal(self, region, service, action, params=None, target=None, payload=None):
        """A call of the layer's own to moto, in the region of the call it serves."""
        auth = (f"AWS4-HMAC-SHA256 Credential=testing/20240101/{region}/{service}/aws4_request, "
                "SignedHeaders=host, Signature=strict")
        if target:
            headers = [("Authorization", auth), ("X-Amz-Target", target),
                       ("Content-Type", "application/x-amz-json-1.1")]
            body = json.dumps(payload or {}).encode()
        else:
            headers = [("Authorization", auth),
                       ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
            body = encode_params([("Action", action), ("Version", "2016-11-15")] + list(params or []))
        return self.moto("POST", "/", headers, body)

    # -- housekeeping: Lambda lets go of its interfaces when their time has come

    def housekeeping(self):
        with self.lock:
            due = [r for r in self.memory.lambda_enis
                   if r["deleted"] is not None
                   and not self.within(r["deleted"], "lambda-eni")]
            for record in due:
                self.memory.lambda_enis.remove(record)
        for record in due:
            for eni in record["enis"]:
                status, _, _ = self.internal(record["region"], "ec2", "DeleteNetworkInterface",
                                             [("NetworkInterfaceId", eni)])
                self.log(f"lambda-eni: {record['function']}: {eni} deleted ({status})")

    # -- before moto

    def before(self, call):
        """An Answer of the layer's own, or None to forward the call."""
        c = self.config
        if call.service == "ec2" and call.params is not None:
            answer = self.before_ec2(call)
            if answer:
                return answer
        if call.service == "sqs" and call.action == "CreateQueue" and c.on("sqs-deleted-recently"):
            name = (call.json or {}).get("QueueName") if call.protocol == "json" else call.param("QueueName")
            with self.lock:
                deleted = self.memory.deleted_queues.get((call.region, name))
            if self.within(deleted, "sqs-deleted-recently"):
                message = ("You must wait 60 seconds after deleting a queue before you can create "
                           "another with the same name.")
                self.log(f"sqs-deleted-recently: CreateQueue {name}")
                code = "AWS.SimpleQueueService.QueueDeletedRecently"
                if call.protocol == "json":
                    return json_error(call, "com.amazonaws.sqs#QueueDeletedRecently", message, code)
                return query_error(code, message)
        if call.service == "servicediscovery" and c.on("cloudmap-in-use") and call.action in (
                "DeleteService", "DeleteNamespace"):
            answer = self.cloudmap_in_use(call)
            if answer:
                return answer
        if call.service == "ecs" and call.action == "RegisterTaskDefinition" and c.on("fargate-sizes"):
            answer = self.check_fargate(call)
            if answer:
                return answer
        if call.service == "ecs" and call.action == "RegisterTaskDefinition" \
                and c.on("ecs-container-memory"):
            self.give_container_memory(call)
        if call.service == "lambda" and c.on("lambda-pending") and call.action in (
                "Invoke", "UpdateFunctionCode", "UpdateFunctionConfiguration", "PublishVersion"):
            with self.lock:
                created = self.memory.functions.get(call.function)
            if self.within(created, "lambda-pending"):
                self.log(f"lambda-pending: {call.action} {call.function} refused")
                return rest_json_error(
                    409, "ResourceConflictException",
                    "The operation cannot be performed at this time. The function is currently in "
                    "the following state: Pending")
        return None

    def before_ec2(self, call):
        c = self.config
        action = call.action
        token = call.param("ClientToken")
        if token and c.on("ec2-client-token"):
            signature = sorted((k, v) for k, v in call.params if k not in ("ClientToken", "Version"))
            with self.lock:
                known = self.memory.client_tokens.get((action, token))
            if known:
                if known[0] != signature:
                    self.log(f"ec2-client-token: {action} {token}: other parameters")
                    return ec2_error(
                        "IdempotentParameterMismatch",
                        "The request uses the same client token as a previous, but non-identical "
                        "request. Do not reuse a client token with different requests, unless the "
                        "requests are identical.")
                self.log(f"ec2-client-token: {action} {token}: the original answer again")
                return Answer(known[1], known[2], known[3])
        if action == "DescribeVpcs" and c.on("vpc-filters"):
            for key, name in call.params:
                if re.fullmatch(r"Filter\.\d+\.Name", key) and not name.startswith("tag:") \
                        and name not in VPC_FILTERS:
                    self.log(f"vpc-filters: DescribeVpcs filter {name}")
                    return ec2_error("InvalidParameterValue", f"The filter '{name}' is invalid")
        if c.on("ec2-consistency"):
            with self.lock:
                fresh = dict(self.memory.fresh_ids)
            for key, value in call.params:
                if key in ("Action", "Version", "ClientToken") or key.startswith(("Filter.", "TagSpecification")):
                    continue
                created = fresh.get(value)
                if self.within(created, "ec2-consistency"):
                    prefix = next(p for p in FRESH_ID_ERRORS if value.startswith(p))
                    code, message = FRESH_ID_ERRORS[prefix]
                    self.log(f"ec2-consistency: {action} {key}={value}: {code}")
                    return ec2_error(code, message.format(value))
        if c.on("lambda-eni") and action in ("DeleteSubnet", "DeleteSecurityGroup",
                                             "DeleteNetworkInterface", "DetachNetworkInterface"):
            with self.lock:
                records = list(self.memory.lambda_enis)
            subnet = call.param("SubnetId")
            group = call.param("GroupId")
            eni = call.param("NetworkInterfaceId")
            for record in records:
                if action == "DeleteSubnet" and subnet in record["subnets"]:
                    self.log(f"lambda-eni: DeleteSubnet {subnet}: in use by {record['function']}")
                    return ec2_error("DependencyViolation",
                                     f"The subnet '{subnet}' has dependencies and cannot be deleted.")
                if action == "DeleteSecurityGroup" and group in record["groups"]:
                    self.log(f"lambda-eni: DeleteSecurityGroup {group}: in use by {record['function']}")
                    return ec2_error("DependencyViolation", f"resource {group} has a dependent object")
                if action == "DeleteNetworkInterface" and eni in record["enis"]:
                    return ec2_error("InvalidParameterValue",
                                     f"Network interface '{eni}' is currently in use.")
                if action == "DetachNetworkInterface":
                    attachment = call.param("AttachmentId") or ""
                    if any(attachment.endswith(e[4:]) for e in record["enis"]):
                        return ec2_error("OperationNotPermitted",
                                         f"You are not allowed to manage '{attachment}' attachments.")
        return None

    def give_container_memory(self, call):
        """moto's RunTask adds up its containers' memory figures and fails on one without: a
        FARGATE container with none gets the task's memory as its reservation (taken out of the
        answers again by ``hide_container_memory``)."""
        body = call.json or {}
        memory = fargate_units(str(body.get("memory") or ""), ("gb", "gib"), 1024)
        if "FARGATE" not in (body.get("requiresCompatibilities") or []) or memory is None:
            return
        given = []
        for container in body.get("containerDefinitions") or []:
            if container.get("memory") is None and container.get("memoryReservation") is None:
                container["memoryReservation"] = memory
                given.append(container.get("name"))
        if given:
            call.json = body
            call.body = json.dumps(body).encode()
            call.container_memory = given

    def hide_container_memory(self, call, body):
        try:
            data = json.loads(body)
        except ValueError:
            return body
        definition = data.get("taskDefinition") or {}
        arn = definition.get("taskDefinitionArn")
        with self.lock:
            if call.action == "RegisterTaskDefinition" and call.container_memory:
                self.memory.container_memory[arn] = list(call.container_memory)
            given = self.memory.container_memory.get(arn) or []
        if not given:
            return body
        for container in definition.get("containerDefinitions") or []:
            if container.get("name") in given:
                container.pop("memoryReservation", None)
        self.log(f"ecs-container-memory: {call.action} {arn}: {', '.join(given)}")
        return json.dumps(data).encode()

    def check_fargate(self, call):
        body = call.json or {}
        if "FARGATE" not in (body.get("requiresCompatibilities") or []):
            return None
        for field in ("cpu", "memory"):
            if body.get(field) in (None, ""):
                self.log(f"fargate-sizes: no task-level {field}")
                return json_error(call, "ClientException",
                                  f"Fargate requires that '{field}' be defined at the task level.")
        cpu = fargate_units(body["cpu"], ("vcpu",), 1024)
        if cpu is None:
            return json_error(call, "ClientException", "Invalid 'cpu' setting for task.")
        memory = fargate_units(body["memory"], ("gb", "gib"), 1024)
        if memory is None:
            return json_error(call, "ClientException", "Invalid 'memory' setting for task.")
        if memory not in FARGATE_SIZES.get(cpu, ()):
            self.log(f"fargate-sizes: cpu {body['cpu']} memory {body['memory']}")
            return json_error(call, "ClientException", "No Fargate configuration exists for given values.")
        return None

    # -- the request that goes to moto (pagination takes the whole list from moto)

    def paging(self, call):
        """(entry, offset, page size) when the layer pages this call, else None."""
        if not self.config.on("pagination"):
            return None
        entry = PAGED.get((call.service, call.action))
        if not entry:
            return None
        if entry["kind"] in ("xml-ec2", "xml-query", "rest-json"):
            if entry["kind"] == "rest-json":
                pairs = urllib.parse.parse_qsl(urllib.parse.urlsplit(call.path).query)
                lookup = dict(pairs)
            else:
                lookup = dict(call.params)
            token, limit = lookup.get(entry["token_in"]), lookup.get(entry["limit"])
        else:
            token, limit = (call.json or {}).get(entry["token_in"]), (call.json or {}).get(entry["limit"])
        offset = read_token(token)
        if token and offset is None:
            return None  # not a token of the layer's: moto's own, forwarded as is
        if limit in (None, "") and entry["when"] == "asked":
            return None
        try:
            size = min(PAGE_SIZE, int(limit)) if limit not in (None, "") else PAGE_SIZE
        except ValueError:
            size = PAGE_SIZE
        return entry, offset or 0, max(1, size)

    def strip_paging(self, call, entry):
        """The call without its page token and limit, so that moto answers the whole list."""
        drop = {entry["token_in"], entry["limit"]}
        if entry["kind"] == "rest-json":
            split = urllib.parse.urlsplit(call.path)
            pairs = [(k, v) for k, v in urllib.parse.parse_qsl(split.query, keep_blank_values=True)
                     if k not in drop]
            call.path = urllib.parse.urlunsplit(split._replace(query=urllib.parse.urlencode(pairs)))
        elif entry["kind"] == "json":
            body = {k: v for k, v in (call.json or {}).items() if k not in drop}
            call.body = json.dumps(body).encode()
        else:
            pairs = [(k, v) for k, v in call.params if k not in drop]
            call.body = encode_params(pairs)
            split = urllib.parse.urlsplit(call.path)
            if split.query:
                query = [(k, v) for k, v in urllib.parse.parse_qsl(split.query, keep_blank_values=True)
                         if k not in drop]
                call.path = urllib.parse.urlunsplit(split._replace(query=urllib.parse.urlencode(query)))

    def page(self, entry, offset, size, status, body):
        if status != 200:
            return body
        kind = entry["kind"]
        if kind in ("json", "rest-json"):
            try:
                data = json.loads(body)
            except ValueError:
                return body
            if not isinstance(data.get(entry["result"]), list):
                return body  # moto left the list out (nothing to list): so does AWS
            items = data[entry["result"]]
            data[entry["result"]] = items[offset:offset + size]
            if offset + size < len(items):
                data[entry["token_out"]] = make_token(offset + size)
            else:
                data.pop(entry["token_out"], None)
            return json.dumps(data).encode()
        root, ns = parse_xml(body)
        if root is None:
            return body
        if kind == "xml-ec2":
            holder = root
            listing = child(root, ns, entry["result"])
        else:
            holder = find_local(root, root.tag and local(root.tag).replace("Response", "Result"))
            if holder is None:
                return body
            name, item = (entry["result"] if isinstance(entry["result"], tuple)
                          else (entry["result"], entry.get("item", "member")))
            listing = child(holder, ns, name)
        if listing is None:
            return body
        items = list(listing)
        for element in items:
            listing.remove(element)
        for element in items[offset:offset + size]:
            listing.append(element)
        for old in holder.findall(q(ns, entry["token_out"])):
            holder.remove(old)
        more = offset + size < len(items)
        if more:
            token = ET.SubElement(holder, q(ns, entry["token_out"]))
            token.text = make_token(offset + size)
        if entry.get("truncated"):
            flag = child(holder, ns, entry["truncated"])
            if flag is None:
                flag = ET.SubElement(holder, q(ns, entry["truncated"]))
            flag.text = "true" if more else "false"
        return to_bytes(root, ns)

    # -- after moto

    def after(self, call, status, body):
        """Remembers what moto made and rewrites moto's answer where AWS answers otherwise.

        Returns the body to send, or an Answer that replaces moto's answer whole."""
        c = self.config
        service, action = call.service, call.action
        ok = 200 <= status < 300
        if service == "ecs" and ok and action in ("CreateService", "UpdateService", "DescribeServices") \
                and c.on("ecs-service-starting"):
            body = self.ecs_starting(call, body)
        if service == "ec2" and call.params is not None:
            body = self.after_ec2(call, status, body)
        elif service == "rds":
            body = self.after_rds(call, status, body)
        elif service == "elbv2" and action in ("CreateLoadBalancer", "DescribeLoadBalancers"):
            body = self.after_alb(call, status, body)
        elif service == "lambda":
            body = self.after_lambda(call, status, body)
        elif service == "servicediscovery":
            body = self.after_cloudmap(call, status, body)
        elif service == "ecs" and ok and action in ("CreateService", "UpdateService", "DeleteService") \
                and c.on("ecs-registers-tasks"):
            self.ecs_registry(call, body)
        elif service == "ecs" and ok and action in ("RegisterTaskDefinition", "DescribeTaskDefinition") \
                and c.on("ecs-container-memory"):
            body = self.hide_container_memory(call, body)
        elif service == "sqs" and action == "DeleteQueue" and ok and c.on("sqs-deleted-recently"):
            url = (call.json or {}).get("QueueUrl") if call.protocol == "json" else call.param("QueueUrl")
            if url:
                name = url.rstrip("/").rsplit("/", 1)[-1]
                with self.lock:
                    self.memory.deleted_queues[(call.region, name)] = self.clock.now()
        elif (service == "secretsmanager" and action == "CreateSecret" and status == 400
              and c.on("secret-scheduled-deletion") and b"ResourceExistsException" in body):
            name = (call.json or {}).get("Name")
            s, _, described = self.internal(call.region, "secretsmanager", "DescribeSecret",
                                            target="secretsmanager.DescribeSecret",
                                            payload={"SecretId": name})
            try:
                deleted = s == 200 and json.loads(described).get("DeletedDate")
            except ValueError:
                deleted = False
            if deleted:
                self.log(f"secret-scheduled-deletion: CreateSecret {name}")
                return json_error(call, "InvalidRequestException",
                                  "You can't create this secret because a secret with this name is "
                                  "already scheduled for deletion.")
        return body

    # -- Cloud Map

    def cloudmap(self, call, action, payload):
        """A Cloud Map call of the layer's own to moto; the parsed answer or None."""
        status, _, answer = self.internal(call.region, "servicediscovery", action,
                                          target=f"Route53AutoNaming_v20170314.{action}",
                                          payload=payload)
        try:
            return json.loads(answer) if status == 200 else None
        except ValueError:
            return None

    def cloudmap_in_use(self, call):
        data = call.json or {}
        if call.action == "DeleteService":
            listed = self.cloudmap(call, "ListInstances", {"ServiceId": data.get("Id")}) or {}
            if listed.get("Instances"):
                self.log(f"cloudmap-in-use: DeleteService {data.get('Id')}: instances")
                return json_error(call, "ResourceInUse",
                                  "The specified resource can't be deleted because it contains "
                                  "other resources.")
        else:
            listed = self.cloudmap(call, "ListServices", {}) or {}
            inside = [s for s in listed.get("Services", [])
                      if (s.get("NamespaceId") or (s.get("DnsConfig") or {}).get("NamespaceId"))
                      == data.get("Id")]
            if inside:
                self.log(f"cloudmap-in-use: DeleteNamespace {data.get('Id')}: services")
                return json_error(call, "ResourceInUse",
                                  "The specified resource can't be deleted because it contains "
                                  "other resources.")
        return None

    def after_cloudmap(self, call, status, body):
        if not self.config.on("cloudmap-operations") or not 200 <= status < 300:
            return body
        try:
            data = json.loads(body)
        except ValueError:
            return body
        if call.action in ("CreatePrivateDnsNamespace", "CreatePublicDnsNamespace",
                           "CreateHttpNamespace", "DeleteNamespace") and data.get("OperationId"):
            with self.lock:
                self.memory.operations[data["OperationId"]] = self.clock.now()
            return body
        if call.action == "GetOperation":
            operation = data.get("Operation") or {}
            with self.lock:
                started = self.memory.operations.get(operation.get("Id"))
            if not self.within(started, "cloudmap-operations"):
                return body
            half = self.config.delay("cloudmap-operations") / 2
            operation["Status"] = "SUBMITTED" if self.clock.now() - started < half else "PENDING"
            self.log(f"cloudmap-operations: {operation.get('Id')} {operation['Status']}")
            return json.dumps(data).encode()
        return body

    def ecs_starting(self, call, body):
        """New tasks are on their way: a new service runs none yet; a new deployment (an
        UpdateService with another task definition, or forceNewDeployment) gets an id of its own
        and is PRIMARY, IN_PROGRESS with no task running, beside the deployment it replaces
        (ACTIVE, its tasks still running), until its tasks have started. (moto keeps one
        deployment, its id and even its old taskDefinition, COMPLETED at once.)"""
        try:
            data = json.loads(body)
        except ValueError:
            return body
        now = self.clock.now()
        if call.action in ("CreateService", "UpdateService"):
            services = [data.get("service") or {}]
            with self.lock:
                for entry in services:
                    arn = entry.get("serviceArn")
                    if not arn:
                        continue
                    if call.action == "CreateService":
                        self.memory.ecs_services.setdefault(arn, now)
                    else:
                        self.new_deployment(call, entry, arn, now)
        else:
            services = data.get("services") or []
        with self.lock:
            created = dict(self.memory.ecs_services)
            rollouts = dict(self.memory.ecs_rollouts)
        changed = False
        for entry in services:
            arn = entry.get("serviceArn")
            desired = int(entry.get("desiredCount") or 0)
            primary = primary_deployment(entry)
            rollout = rollouts.get(arn)
            if rollout and primary is not None:
                primary.update(id=rollout["id"], taskDefinition=rollout["taskDefinition"])
                changed = True
                if self.within(rollout["started"], "ecs-service-starting"):
                    replaced = dict(primary, id=rollout["previous"], status="ACTIVE",
                                    taskDefinition=rollout["previousTaskDefinition"],
                                    runningCount=desired, pendingCount=0, rolloutState="COMPLETED",
                                    rolloutStateReason=f"ECS deployment {rollout['previous']} completed.")
                    primary.update(runningCount=0, pendingCount=desired, rolloutState="IN_PROGRESS",
                                   rolloutStateReason=f"ECS deployment {rollout['id']} in progress.")
                    entry["deployments"] = [primary, replaced]
                    entry.update(runningCount=desired, pendingCount=desired)
                    self.log(f"ecs-service-starting: {call.action} {entry.get('serviceName')}: "
                             f"deployment {rollout['id']} 0 of {desired} running")
                continue
            if not self.within(created.get(arn), "ecs-service-starting"):
                continue
            entry.update(runningCount=0, pendingCount=desired)
            if primary is not None:
                primary.update(
                    runningCount=0, pendingCount=desired, rolloutState="IN_PROGRESS",
                    rolloutStateReason=f"ECS deployment {primary.get('id')} in progress.")
            changed = True
            self.log(f"ecs-service-starting: {call.action} {entry.get('serviceName')}: 0 of {desired} running")
        return json.dumps(data).encode() if changed else body

    def new_deployment(self, call, entry, arn, now):
        """Remembers the deployment an UpdateService starts, if it starts one (lock held)."""
        request = call.json or {}
        primary = primary_deployment(entry)
        if primary is None:
            return
        earlier = self.memory.ecs_rollouts.get(arn)
        # What clients were shown last: an earlier rollout's deployment, else moto's own.
        previous = earlier["id"] if earlier else primary.get("id")
        previous_definition = earlier["taskDefinition"] if earlier else primary.get("taskDefinition")
        wanted = request.get("taskDefinition")
        def revision(value):
            return (value or "").rsplit("/", 1)[-1]
        if not request.get("forceNewDeployment") and (
                not wanted or revision(wanted) == revision(previous_definition)):
            return
        self.memory.ecs_rollouts[arn] = {
            "id": f"ecs-svc/{uuid.uuid4().int % 10**19}", "started": now,
            "taskDefinition": entry.get("taskDefinition") or previous_definition,
            "previous": previous, "previousTaskDefinition": previous_definition,
        }

    def ecs_registry(self, call, body):
        """ECS registers a service's tasks in its registry, and deregisters them as they stop."""
        data = call.json or {}
        name = data.get("serviceName") or data.get("service") or ""
        name = name.rsplit("/", 1)[-1]
        key = (call.region, name)
        if call.action == "CreateService":
            registries = data.get("serviceRegistries") or []
            records = []
            for registry in registries:
                service_id = (registry.get("registryArn") or "").rsplit("/", 1)[-1]
                for index in range(int(data.get("desiredCount") or 0)):
                    instance = f"task-{uuid.uuid4().hex[:12]}"
                    answer = self.cloudmap(call, "RegisterInstance", {
                        "ServiceId": service_id, "InstanceId": instance,
                        "Attributes": {"AWS_INSTANCE_IPV4": f"10.0.11.{10 + index}"}})
                    if answer is not None:
                        records.append((service_id, instance))
            if records:
                with self.lock:
                    self.memory.registered.setdefault(key, []).extend(records)
                self.log(f"ecs-registers-tasks: {name}: {len(records)} instance(s)")
            return
        if call.action == "UpdateService" and data.get("desiredCount") != 0:
            return
        with self.lock:
            records = self.memory.registered.pop(key, [])
        for service_id, instance in records:
            self.cloudmap(call, "DeregisterInstance", {"ServiceId": service_id,
                                                      "InstanceId": instance})
        if records:
            self.log(f"ecs-registers-tasks: {name}: {len(records)} instance(s) deregistered")

    def after_ec2(self, call, status, body):
        c = self.config
        action = call.action
        ok = status == 200
        if ok and action in CREATES and c.on("ec2-consistency"):
            root, ns = parse_xml(body)
            element = find_local(root, CREATES[action]) if root is not None else None
            if element is not None and element.text:
                with self.lock:
                    self.memory.fresh_ids[element.text] = self.clock.now()
        if ok and action == "CreateNatGateway" and c.on("nat-pending"):
            root, ns = parse_xml(body)
            gateway = find_local(root, "natGateway") if root is not None else None
            element = child(gateway, ns, "natGatewayId") if gateway is not None else None
            if element is not None:
                with self.lock:
                    self.memory.nat[element.text] = self.clock.now()
                state = child(gateway, ns, "state")
                if state is not None:
                    state.text = "pending"
                    body = to_bytes(root, ns)
        if ok and action == "DescribeNatGateways" and c.on("nat-pending"):
            body = self.rewrite_nat(call, body)
        if ok and action == "DescribeNetworkInterfaces" and c.on("lambda-eni"):
            body = self.rewrite_enis(body)
        token = call.param("ClientToken")
        if ok and token and c.on("ec2-client-token"):
            signature = sorted((k, v) for k, v in call.params if k not in ("ClientToken", "Version"))
            with self.lock:
                self.memory.client_tokens.setdefault(
                    (action, token), (signature, status, "text/xml;charset=UTF-8", body))
        return body

    def rewrite_nat(self, call, body):
        root, ns = parse_xml(body)
        if root is None:
            return body
        listing = child(root, ns, "natGatewaySet")
        if listing is None:
            return body
        wanted = None
        filters = {}
        for key, value in call.params:
            m = re.fullmatch(r"Filter\.(\d+)\.Name", key)
            if m:
                filters.setdefault(m.group(1), [None, []])[0] = value
            m = re.fullmatch(r"Filter\.(\d+)\.Value\.\d+", key)
            if m:
                filters.setdefault(m.group(1), [None, []])[1].append(value)
        for name, values in filters.values():
            if name == "state":
                wanted = set(values)
        changed = False
        with self.lock:
            created = dict(self.memory.nat)
        for item in list(listing):
            nat_id = child(item, ns, "natGatewayId")
            state = child(item, ns, "state")
            if nat_id is None or state is None:
                continue
            if state.text == "available" and self.within(created.get(nat_id.text), "nat-pending"):
                state.text = "pending"
                changed = True
                if wanted is not None and "pending" not in wanted:
                    listing.remove(item)
        return to_bytes(root, ns) if changed else body

    def rewrite_enis(self, body):
        with self.lock:
            ours = {eni: r["function"] for r in self.memory.lambda_enis for eni in r["enis"]}
        if not ours:
            return body
        root, ns = parse_xml(body)
        listing = child(root, ns, "networkInterfaceSet") if root is not None else None
        if listing is None:
            return body
        for item in listing:
            eni = child(item, ns, "networkInterfaceId")
            if eni is None or eni.text not in ours:
                continue
            for name, value in (("status", "in-use"), ("interfaceType", "lambda"),
                                ("requesterManaged", "true")):
                element = child(item, ns, name)
                if element is None:
                    element = ET.SubElement(item, q(ns, name))
                element.text = value
        return to_bytes(root, ns)

    def after_rds(self, call, status, body):
        if (status != 200 or call.action not in ("CreateDBInstance", "DescribeDBInstances")
                or not self.config.on("rds-creating")):
            return body
        root, ns = parse_xml(body)
        if root is None:
            return body
        if call.action == "CreateDBInstance":
            ident = find_local(root, "DBInstanceIdentifier")
            if ident is not None:
                with self.lock:
                    self.memory.rds[ident.text] = self.clock.now()
        changed = False
        with self.lock:
            created = dict(self.memory.rds)
        for instance in root.iter(q(ns, "DBInstance")):
            ident = child(instance, ns, "DBInstanceIdentifier")
            state = child(instance, ns, "DBInstanceStatus")
            since = created.get(ident.text) if ident is not None else None
            if since is None or state is None:
                continue
            age = self.clock.now() - since
            creating = self.config.delay("rds-creating")
            backing_up = self.config.delay("rds-backing-up")
            if age < creating:
                state.text = "creating"
            elif age < creating + backing_up:
                state.text = "backing-up"
            else:
                continue
            endpoint = child(instance, ns, "Endpoint")
            if endpoint is not None:
                instance.remove(endpoint)
            changed = True
        return to_bytes(root, ns) if changed else body

    def after_alb(self, call, status, body):
        if status != 200 or not self.config.on("alb-provisioning"):
            return body
        root, ns = parse_xml(body)
        if root is None:
            return body
        if call.action == "CreateLoadBalancer":
            with self.lock:
                for arn in root.iter(q(ns, "LoadBalancerArn")):
                    self.memory.alb.setdefault(arn.text, self.clock.now())
        with self.lock:
            created = dict(self.memory.alb)
        changed = False
        for balancer in root.iter(q(ns, "member")):
            arn = child(balancer, ns, "LoadBalancerArn")
            if arn is None or not self.within(created.get(arn.text), "alb-provisioning"):
                continue
            state = child(balancer, ns, "State")
            if state is None:
                state = ET.SubElement(balancer, q(ns, "State"))
            code = child(state, ns, "Code")
            if code is None:
                code = ET.SubElement(state, q(ns, "Code"))
            code.text = "provisioning"
            changed = True
        return to_bytes(root, ns) if changed else body

    def after_lambda(self, call, status, body):
        action = call.action
        if action == "CreateFunction" and status == 201:
            try:
                data = json.loads(body)
            except ValueError:
                return body
            name = data.get("FunctionName") or call.function
            vpc = (call.json or {}).get("VpcConfig") or {}
            if self.config.on("lambda-eni") and vpc.get("SubnetIds"):
                self.attach_enis(call, name, vpc)
            if self.config.on("lambda-pending"):
                with self.lock:
                    self.memory.functions[name] = self.clock.now()
                data.update(State="Pending", StateReason="The function is being created.",
                            StateReasonCode="Creating")
                return json.dumps(data).encode()
            return body
        if action == "DeleteFunction" and 200 <= status < 300:
            with self.lock:
                self.memory.functions.pop(call.function, None)
                for record in self.memory.lambda_enis:
                    if record["function"] == call.function and record["deleted"] is None:
                        record["deleted"] = self.clock.now()
                        self.log(f"lambda-eni: {call.function} deleted; its interfaces stay "
                                 f"{self.config.delay('lambda-eni')} s")
            return body
        if action in ("GetFunction", "GetFunctionConfiguration") and status == 200 \
                and self.config.on("lambda-pending"):
            with self.lock:
                created = self.memory.functions.get(call.function)
            if not self.within(created, "lambda-pending"):
                return body
            try:
                data = json.loads(body)
            except ValueError:
                return body
            target = data.get("Configuration") if action == "GetFunction" else data
            if isinstance(target, dict):
                target.update(State="Pending", StateReason="The function is being created.",
                              StateReasonCode="Creating")
            return json.dumps(data).encode()
        return body

    def attach_enis(self, call, name, vpc):
        groups = list(vpc.get("SecurityGroupIds") or [])
        record = {"function": name, "region": call.region, "enis": [], "subnets": list(vpc["SubnetIds"]),
                  "groups": groups, "deleted": None}
        for subnet in vpc["SubnetIds"]:
            params = [("SubnetId", subnet), ("Description", f"AWS Lambda VPC ENI-{name}")]
            params += [(f"SecurityGroupId.{i + 1}", g) for i, g in enumerate(groups)]
            status, _, answer = self.internal(call.region, "ec2", "CreateNetworkInterface", params)
            root, _ = parse_xml(answer)
            element = find_local(root, "networkInterfaceId") if root is not None else None
            if status == 200 and element is not None:
                record["enis"].append(element.text)
            else:
                self.log(f"lambda-eni: {name}: no interface in {subnet} ({status})")
        with self.lock:
            self.memory.lambda_enis.append(record)
        self.log(f"lambda-eni: {name}: interfaces {record['enis']}")


# ----------------------------------------------------------------------------------------------
# HTTP


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    layer = None  # set by main

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def do_GET(self):
        self.handle_any()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    # -- reading the request

    def read_body(self):
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            parts = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_answer(self, status, headers, body, content_type=None):
        self.send_response(status)
        sent_type = False
        for key, value in headers:
            lower = key.lower()
            if lower in HOP_BY_HOP or lower in ("date", "server"):
                continue
            if lower == "content-type":
                if content_type:
                    continue
                sent_type = True
            self.send_header(key, value)
        if content_type:
            self.send_header("Content-Type", content_type)
        elif not sent_type and body:
            self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def send_json(self, status, data):
        self.send_answer(status, [], json.dumps(data, indent=1).encode() + b"\n", "application/json")

    # -- the request

    def handle_any(self):
        layer = self.layer
        try:
            path = self.path
            if path.startswith("/strict-api/"):
                self.control(path)
                return
            headers = list(self.headers.items())
            if path.startswith("/moto-api/reset"):
                status, out_headers, data = layer.moto(self.command, path, headers, self.read_body())
                if status == 200:
                    layer.reset()
                self.send_answer(status, out_headers, data)
                return
            layer.housekeeping()
            if not classify(self.command, path, headers, None):
                self.stream(path, headers)
                return
            call = Call(self.command, path, headers, self.read_body())
            identify(call)
            answer = layer.before(call)
            if answer is not None:
                self.send_answer(answer.status, answer.headers, answer.body, answer.content_type)
                return
            paging = layer.paging(call)
            if paging:
                layer.strip_paging(call, paging[0])
            status, out_headers, data = layer.moto(call.method, call.path, call.headers, call.body)
            data = layer.after(call, status, data)
            if isinstance(data, Answer):
                self.send_answer(data.status, data.headers, data.body, data.content_type)
                return
            if paging:
                data = layer.page(paging[0], paging[1], paging[2], status, data)
            self.send_answer(status, out_headers, data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:  # the layer must never hang a call: say what broke
            layer.log(f"error: {self.command} {self.path}: {error!r}")
            try:
                self.send_answer(502, [], f"aws-strict: {error!r}\n".encode(), "text/plain")
            except OSError:
                self.close_connection = True

    def stream(self, path, headers):
        """Forwards a request the layer does not read (S3, ...) without holding its body."""
        layer = self.layer
        conn = http.client.HTTPConnection(layer.upstream_host, layer.upstream_port, timeout=600)
        try:
            conn.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
            for key, value in headers:
                if key.lower() not in HOP_BY_HOP:
                    conn.putheader(key, value)
            chunked = (self.headers.get("Transfer-Encoding") or "").lower() == "chunked"
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
                conn.endheaders()
                while True:
                    line = self.rfile.readline()
                    size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        conn.send(b"0\r\n\r\n")
                        break
                    conn.send(b"%x\r\n" % size + self.rfile.read(size) + b"\r\n")
                    self.rfile.readline()
            else:
                length = int(self.headers.get("Content-Length") or 0)
                if length or self.command in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", str(length))
                conn.endheaders()
                left = length
                while left > 0:
                    block = self.rfile.read(min(left, 1 << 16))
                    if not block:
                        break
                    conn.send(block)
                    left -= len(block)
            response = conn.getresponse()
            out_headers = response.getheaders()
            length = response.getheader("Content-Length")
            no_body = self.command == "HEAD" or response.status in (204, 304) or 100 <= response.status < 200
            if length is None or no_body:
                data = b"" if no_body else response.read()
                self.send_response(response.status)
                for key, value in out_headers:
                    if key.lower() not in HOP_BY_HOP and key.lower() not in ("date", "server"):
                        self.send_header(key, value)
                self.send_header("Content-Length", length if (no_body and length) else str(len(data)))
                self.end_headers()
                if data:
                    self.wfile.write(data)
                return
            self.send_response(response.status)
            for key, value in out_headers:
                if key.lower() not in HOP_BY_HOP and key.lower() not in ("date", "server"):
                    self.send_header(key, value)
            self.send_header("Content-Length", length)
            self.end_headers()
            while True:
                block = response.read(1 << 16)
                if not block:
                    break
                self.wfile.write(block)
        finally:
            conn.close()

    def control(self, path):
        layer = self.layer
        body = self.read_body()
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            self.send_json(400, {"error": "the body is not JSON"})
            return
        route = urllib.parse.urlsplit(path).path.rstrip("/")
        if route == "/strict-api/config":
            if self.command == "POST":
                try:
                    with layer.lock:
                        if "behaviours" in data:
                            layer.config.behaviours = parse_behaviours(data["behaviours"])
                        if "scale" in data:
                            layer.config.scale = parse_scale(data["scale"])
                        if "frozen" in data:
                            layer.clock.freeze(bool(data["frozen"]))
                        if "bounded" in data:
                            layer.config.bounded = bool(data["bounded"])
                except ValueError as error:
                    self.send_json(400, {"error": str(error)})
                    return
                layer.log(f"config: {sorted(layer.config.behaviours)} scale {layer.config.scale}")
            described = layer.config.describe(layer.clock)
            described["upstream"] = layer.upstream
            self.send_json(200, described)
            return
        if route == "/strict-api/clock" and self.command == "POST":
            with layer.lock:
                if "freeze" in data:
                    layer.clock.freeze(bool(data["freeze"]))
                if "advance" in data:
                    layer.clock.advance(float(data["advance"]))
                if data.get("settle") == "ec2-consistency":
                    layer.memory.fresh_ids.clear()
            layer.housekeeping()
            self.send_json(200, {"now": layer.clock.now(), "frozen": layer.clock.frozen_at is not None})
            return
        self.send_json(404, {"error": f"no such control: {self.command} {route}"})


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main(argv=None):
    parser = argparse.ArgumentParser(description="strict AWS layer in front of moto_server")
    parser.add_argument("--upstream", required=True, help="moto_server's URL")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free)")
    parser.add_argument("--port-file", help="write the port here once listening")
    parser.add_argument("--log", help="append one line per strict answer here (default: stderr)")
    args = parser.parse_args(argv)
    try:
        behaviours = parse_behaviours(os.environ.get("RUNBOOK_AWS_STRICT", "1"))
        scale = parse_scale(os.environ.get("RUNBOOK_AWS_STRICT_SCALE", DEFAULT_SCALE))
    except ValueError as error:
        print(f"aws-strict: {error}", file=sys.stderr)
        return 2
    Handler.layer = Layer(args.upstream, behaviours, scale, args.log)
    server = Server(("127.0.0.1", args.port), Handler)
    port = server.server_address[1]
    if args.port_file:
        temporary = args.port_file + ".tmp"
        with open(temporary, "w") as out:
            out.write(f"{port}\n")
        os.replace(temporary, args.port_file)
    Handler.layer.log(f"listening on 127.0.0.1:{port}, upstream {args.upstream}, "
                      f"behaviours {sorted(behaviours)}, scale {scale}")
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
