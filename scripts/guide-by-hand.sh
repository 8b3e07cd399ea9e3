#!/usr/bin/env bash
# The UniSync deployment guide ("Deployment Guide - AWS ECS") run by hand: its commands as one plain
# sequential script, the way an operator pastes them into a shell, with the ids the guide asks to
# `export VPC_ID=...` copied from each command's output (`--query ... --output text`) into shell
# variables. It is the manual baseline of `make bench` (scripts/bench.py), which times it against
# `runbook run --yes` on another emulator.
#
#   scripts/guide-by-hand.sh [--sections "2.1 2.2 3 4 8"] ENDPOINT_URL [REGISTRY]
#
# - ENDPOINT_URL: the AWS endpoint (the local emulator); every aws call gets
#   `--endpoint-url ENDPOINT_URL --region ap-northeast-2` (the aws CLI v1 ignores
#   AWS_ENDPOINT_URL for sqs).
# - REGISTRY (host:port, or RUNBOOK_TEST_REGISTRY): the image registry of guide 5. With a registry
#   and a Docker engine (DOCKER_HOST), sections 5, 6 and 7 run too; without, 2.1 2.2 3 4 8.
# - --sections: run only these sections (any of 2.1 2.2 3 4 5 6 7 8 9), always in guide order; each
#   uses the ids of the ones before it (VPC_ID, the subnets, the security groups): start at 2.1.
#   Guide 3 stops after the endpoint lookup (3.3's mysql part needs a host inside the VPC).
#   Guide 9 (only when asked) tries the health check until it answers, as an operator must on
#   AWS while the load balancer provisions and the services' tasks start: here it looks at the
#   load balancer's state and the services' running counts, then gets BY_HAND_HEALTH_URL (the
#   emulator's load balancer name is made up); 9.2's `aws logs tail --follow` is not run.
# - Secrets come from the environment, as in the tool's local configuration:
#   UNISYNC_CANVAS_API_TOKEN, UNISYNC_COGNITO_USER_POOL_ID, UNISYNC_COGNITO_CLIENT_ID, and
#   UNISYNC_RDS_PASSWORD (generated when unset).
# - BY_HAND_POLL_SECONDS: when set, the wait for the DB instance (and guide 9's for the services)
#   polls at this pause instead of the aws waiter's 30 s (make bench TIMING=aws scales AWS's
#   timings down, and the pause with them).
# - Build contexts: UNISYNC_SERVICES_DIR (default <repo>/examples/services/<service>) and
#   UNISYNC_LAMBDA_DIR (default <repo>/examples/canvas-sync-lambda); when missing, minimal
#   `FROM scratch` images and a one-file handler are generated in the work folder.
#
# Like the guide, and unlike the tool, this script puts secret values on aws command lines
# (`--master-user-password`, `--secret-string`), where `ps` and shell history can see them, and
# stops at the first error with nothing recorded: run it again and it creates a second VPC. It
# also does only what the guide says: no route tables, no tags beyond the guide's Name tags, no
# log groups, no dead-letter link. It exists to measure the manual procedure; never point it at a
# real AWS account.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REGION=ap-northeast-2

usage() {
  printf 'usage: %s [--sections "2.1 2.2 3 4 5 6 7 8 9"] ENDPOINT_URL [REGISTRY]\n' "$0" >&2
  exit 2
}

SECTIONS=""
while (($#)); do
  case "$1" in
    --sections)
      (($# >= 2)) || usage
      SECTIONS="$2"
      shift 2
      ;;
    --sections=*)
      SECTIONS="${1#--sections=}"
      shift
      ;;
    -h | --help) usage ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
  esac
done
(($# >= 1 && $# <= 2)) || usage
ENDPOINT_URL="$1"
REGISTRY="${2:-${RUNBOOK_TEST_REGISTRY:-}}"

if [[ -z "$SECTIONS" ]]; then
  SECTIONS="2.1 2.2 3 4 8"
  if [[ -n "$REGISTRY" && -n "${DOCKER_HOST:-}" ]]; then
    SECTIONS="2.1 2.2 3 4 5 6 7 8"
  fi
fi
for section in $SECTIONS; do
  case "$section" in
    2.1 | 2.2 | 3 | 4 | 5 | 6 | 7 | 8 | 9) ;;
    *) printf 'guide-by-hand: unknown section %s\n' "$section" >&2; exit 2 ;;
  esac
done
wanted() { [[ " $SECTIONS " == *" $1 "* ]]; }
if wanted 5 && [[ -z "$REGISTRY" || -z "${DOCKER_HOST:-}" ]]; then
  printf 'guide-by-hand: section 5 needs a registry (argument or RUNBOOK_TEST_REGISTRY) and DOCKER_HOST\n' >&2
  exit 2
fi
if wanted 4; then
  : "${UNISYNC_CANVAS_API_TOKEN:?set UNISYNC_CANVAS_API_TOKEN (guide 4)}"
  : "${UNISYNC_COGNITO_USER_POOL_ID:?set UNISYNC_COGNITO_USER_POOL_ID (guide 4)}"
  : "${UNISYNC_COGNITO_CLIENT_ID:?set UNISYNC_COGNITO_CLIENT_ID (guide 4)}"
fi
# 'YOUR_SECURE_PASSWORD' of guide 3.2 and 4 (RDS refuses '/', '@', '"' and spaces).
RDS_PASSWORD="${UNISYNC_RDS_PASSWORD:-$(openssl rand -base64 24 | tr -d '/+=')}"

# Every aws call of the guide, against the emulator.
aws() {
  command aws --endpoint-url "$ENDPOINT_URL" --region "$REGION" "$@"
}

# The guide's files (trust policies, task definitions, the Lambda package) are written here.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/guide-by-hand.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

section() {
  printf '\n== %s\n' "$*" >&2
}

# What `export X=...` would be given: stop when a lookup came back empty.
check() {
  local name value
  for name in "$@"; do
    value="${!name:-}"
    if [[ -z "$value" || "$value" == None ]]; then
      printf 'guide-by-hand: %s came back empty\n' "$name" >&2
      exit 1
    fi
    printf '%s=%s\n' "$name" "$value" >&2
  done
}

SERVICES=(api-gateway user-service course-service schedule-service)
declare -A PORT=([api-gateway]=8080 [user-service]=8081 [course-service]=8082 [schedule-service]=8083)

if wanted 2.1; then
  section "2.1 VPC and network"
  # Create the VPC
  VPC_ID=$(aws ec2 create-vpc \
    --cidr-block 10.0.0.0/16 \
    --tag-specifications 'ResourceType=vpc,Tags=[{Key=Name,Value=unisync-vpc}]' \
    --query Vpc.VpcId --output text)
  check VPC_ID

  # Public subnets (for the ALB)
  SUBNET_PUBLIC_2A=$(aws ec2 create-subnet \
    --vpc-id "$VPC_ID" \
    --cidr-block 10.0.1.0/24 \
    --availability-zone ap-northeast-2a \
    --tag-specifications 'ResourceType=subnet,Tags=[{Key=Name,Value=unisync-public-2a}]' \
    --query Subnet.SubnetId --output text)
  SUBNET_PUBLIC_2C=$(aws ec2 create-subnet \
    --vpc-id "$VPC_ID" \
    --cidr-block 10.0.2.0/24 \
    --availability-zone ap-northeast-2c \
    --tag-specifications 'ResourceType=subnet,Tags=[{Key=Name,Value=unisync-public-2c}]' \
    --query Subnet.SubnetId --output text)
  # Private subnets (for ECS and RDS)
  SUBNET_PRIVATE_2A=$(aws ec2 create-subnet \
    --vpc-id "$VPC_ID" \
    --cidr-block 10.0.11.0/24 \
    --availability-zone ap-northeast-2a \
    --tag-specifications 'ResourceType=subnet,Tags=[{Key=Name,Value=unisync-private-2a}]' \
    --query Subnet.SubnetId --output text)
  SUBNET_PRIVATE_2C=$(aws ec2 create-subnet \
    --vpc-id "$VPC_ID" \
    --cidr-block 10.0.12.0/24 \
    --availability-zone ap-northeast-2c \
    --tag-specifications 'ResourceType=subnet,Tags=[{Key=Name,Value=unisync-private-2c}]' \
    --query Subnet.SubnetId --output text)
  check SUBNET_PUBLIC_2A SUBNET_PUBLIC_2C SUBNET_PRIVATE_2A SUBNET_PRIVATE_2C

  # Create the internet gateway and attach it
  IGW_ID=$(aws ec2 create-internet-gateway \
    --tag-specifications 'ResourceType=internet-gateway,Tags=[{Key=Name,Value=unisync-igw}]' \
    --query InternetGateway.InternetGatewayId --output text)
  check IGW_ID
  aws ec2 attach-internet-gateway \
    --vpc-id "$VPC_ID" \
    --internet-gateway-id "$IGW_ID"

  # NAT gateway (outbound traffic for the private subnets)
  # 1. Allocate an Elastic IP
  EIP_ID=$(aws ec2 allocate-address --domain vpc --query AllocationId --output text)
  check EIP_ID
  # 2. Create the NAT gateway (placed in a public subnet)
  NAT_ID=$(aws ec2 create-nat-gateway \
    --subnet-id "$SUBNET_PUBLIC_2A" \
    --allocation-id "$EIP_ID" \
    --query NatGateway.NatGatewayId --output text)
  check NAT_ID
  export NAT_ID # for the operator's later use; the guide needs it no further
fi

if wanted 2.2; then
  section "2.2 Security groups"
  # ALB security group
  ALB_SG=$(aws ec2 create-security-group \
    --group-name unisync-alb-sg \
    --description "Security group for UniSync ALB" \
    --vpc-id "$VPC_ID" \
    --query GroupId --output text)
  check ALB_SG
  # Allow HTTP/HTTPS
  aws ec2 authorize-security-group-ingress \
    --group-id "$ALB_SG" \
    --protocol tcp --port 80 --cidr 0.0.0.0/0
  aws ec2 authorize-security-group-ingress \
    --group-id "$ALB_SG" \
    --protocol tcp --port 443 --cidr 0.0.0.0/0

  # ECS task security group
  ECS_SG=$(aws ec2 create-security-group \
    --group-name unisync-ecs-sg \
    --description "Security group for UniSync ECS tasks" \
    --vpc-id "$VPC_ID" \
    --query GroupId --output text)
  check ECS_SG
  # Allow traffic from the ALB only
  aws ec2 authorize-security-group-ingress \
    --group-id "$ECS_SG" \
    --protocol tcp --port 8080-8083 \
    --source-group "$ALB_SG"

  # RDS security group
  RDS_SG=$(aws ec2 create-security-group \
    --group-name unisync-rds-sg \
    --description "Security group for UniSync RDS" \
    --vpc-id "$VPC_ID" \
    --query GroupId --output text)
  check RDS_SG
  # Allow MySQL access from the ECS tasks
  aws ec2 authorize-security-group-ingress \
    --group-id "$RDS_SG" \
    --protocol tcp --port 3306 \
    --source-group "$ECS_SG"
fi

if wanted 3; then
  section "3 RDS MySQL"
  # 3.1 Create the subnet group (private subnets)
  aws rds create-db-subnet-group \
    --db-subnet-group-name unisync-db-subnet-group \
    --db-subnet-group-description "Subnet group for UniSync RDS" \
    --subnet-ids "$SUBNET_PRIVATE_2A" "$SUBNET_PRIVATE_2C"

  # 3.2 Create the RDS instance
  aws rds create-db-instance \
    --db-instance-identifier unisync-mysql \
    --db-instance-class db.t3.micro \
    --engine mysql \
    --engine-version 8.0 \
    --master-username admin \
    --master-user-password "$RDS_PASSWORD" \
    --allocated-storage 20 \
    --db-subnet-group-name unisync-db-subnet-group \
    --vpc-security-group-ids "$RDS_SG" \
    --no-publicly-accessible \
    --backup-retention-period 7 \
    --multi-az

  # 3.3 "Once the RDS instance exists, look up its endpoint" (the databases themselves need mysql
  # from inside the VPC: not part of this script).
  if [[ -n "${BY_HAND_POLL_SECONDS:-}" ]]; then
    # make bench TIMING=aws: AWS's timings scaled down, and the waiter's 30 s pause with them.
    until [[ "$(aws rds describe-db-instances --db-instance-identifier unisync-mysql \
      --query 'DBInstances[0].DBInstanceStatus' --output text)" == available ]]; do
      sleep "$BY_HAND_POLL_SECONDS"
    done
  else
    aws rds wait db-instance-available --db-instance-identifier unisync-mysql
  fi
  RDS_ENDPOINT=$(aws rds describe-db-instances \
    --db-instance-identifier unisync-mysql \
    --query 'DBInstances[0].Endpoint.Address' --output text)
  check RDS_ENDPOINT
  export RDS_ENDPOINT # for `mysql -h $RDS_ENDPOINT -u admin -p` from inside the VPC
fi

if wanted 4; then
  section "4 Secrets Manager"
  # Store ENCRYPTION_KEY
  aws secretsmanager create-secret \
    --name unisync/encryption-key \
    --secret-string "$(openssl rand -base64 32)"
  # Store the RDS password
  aws secretsmanager create-secret \
    --name unisync/rds-password \
    --secret-string "$RDS_PASSWORD"
  # Canvas API token
  aws secretsmanager create-secret \
    --name unisync/canvas-api-token \
    --secret-string "$UNISYNC_CANVAS_API_TOKEN"
  # Cognito configuration
  aws secretsmanager create-secret \
    --name unisync/cognito-config \
    --secret-string "{
    \"userPoolId\": \"$UNISYNC_COGNITO_USER_POOL_ID\",
    \"clientId\": \"$UNISYNC_COGNITO_CLIENT_ID\"
  }"
fi

# ACCOUNT_ID of the guide's ARNs and ECR host names.
if wanted 5 || wanted 6 || wanted 7; then
  ACCOUNT_ID=$(aws sts get-caller-identity --query Account --output text)
  check ACCOUNT_ID
  # The guide pushes to ACCOUNT_ID.dkr.ecr.ap-northeast-2.amazonaws.com; here, to REGISTRY.
  REGISTRY="${REGISTRY:-$ACCOUNT_ID.dkr.ecr.$REGION.amazonaws.com}"
fi

if wanted 5; then
  section "5 ECR and Docker images"
  # 5.1 One ECR repository per service
  aws ecr create-repository --repository-name unisync/api-gateway
  aws ecr create-repository --repository-name unisync/user-service
  aws ecr create-repository --repository-name unisync/course-service
  aws ecr create-repository --repository-name unisync/schedule-service

  # 5.2 Log in to ECR
  aws ecr get-login-password |
    docker login --username AWS --password-stdin \
      "$REGISTRY"

  # Build and push each service ("repeat the same for the other services")
  services_dir="${UNISYNC_SERVICES_DIR:-$ROOT/examples/services}"
  for service in "${SERVICES[@]}"; do
    context="$services_dir/$service"
    if [[ ! -f "$context/Dockerfile" ]]; then
      context="$WORK/services/$service"
      mkdir -p "$context"
      printf '%s: example service image\n' "$service" >"$context/service.txt"
      printf 'FROM scratch\nCOPY service.txt /service.txt\n' >"$context/Dockerfile"
    fi
    (
      cd "$context"
      docker build -t "unisync/$service" .
      docker tag "unisync/$service:latest" \
        "$REGISTRY/unisync/$service:latest"
      docker push "$REGISTRY/unisync/$service:latest"
    )
  done
fi

if wanted 6; then
  section "6 ECS cluster and services"
  # 6.1 Create the ECS cluster
  aws ecs create-cluster --cluster-name unisync-cluster

  # 6.2 Create the task execution role
  cat >ecs-task-trust-policy.json <<'EOF'
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": {
        "Service": "ecs-tasks.amazonaws.com"
      },
      "Action": "sts:AssumeRole"
    }
  ]
}
EOF
  aws iam create-role \
    --role-name ecsTaskExecutionRole \
    --assume-role-policy-document file://ecs-task-trust-policy.json
  # Attach the required policy
  aws iam attach-role-policy \
    --role-name ecsTaskExecutionRole \
    --policy-arn arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy
  # Add a Secrets Manager access policy
  aws iam put-role-policy \
    --role-name ecsTaskExecutionRole \
    --policy-name SecretsManagerAccess \
    --policy-document "{
    \"Version\": \"2012-10-17\",
    \"Statement\": [
      {
        \"Effect\": \"Allow\",
        \"Action\": [
          \"secretsmanager:GetSecretValue\"
        ],
        \"Resource\": \"arn:aws:secretsmanager:$REGION:$ACCOUNT_ID:secret:unisync/*\"
      }
    ]
  }"

  # 6.3 Register the task definitions (the gateway's as in the guide; "the other services the
  # same way": their own name, port and log group)
  for service in "${SERVICES[@]}"; do
    cat >"$service-task.json" <<EOF
{
  "family": "unisync-$service",
  "networkMode": "awsvpc",
  "requiresCompatibilities": ["FARGATE"],
  "cpu": "256",
  "memory": "512",
  "executionRoleArn": "arn:aws:iam::$ACCOUNT_ID:role/ecsTaskExecutionRole",
  "containerDefinitions": [
    {
      "name": "$service",
      "image": "$REGISTRY/unisync/$service:latest",
      "portMappings": [
        {
          "containerPort": ${PORT[$service]},
          "protocol": "tcp"
        }
      ],
      "environment": [
        {
          "name": "SPRING_PROFILES_ACTIVE",
          "value": "prod"
        },
        {
          "name": "USER_SERVICE_URL",
          "value": "http://unisync-user-service:8081"
        },
        {
          "name": "COURSE_SERVICE_URL",
          "value": "http://unisync-course-service:8082"
        },
        {
          "name": "SCHEDULE_SERVICE_URL",
          "value": "http://unisync-schedule-service:8083"
        }
      ],
      "secrets": [
        {
          "name": "COGNITO_USER_POOL_ID",
          "valueFrom": "arn:aws:secretsmanager:$REGION:$ACCOUNT_ID:secret:unisync/cognito-config:userPoolId::"
        },
        {
          "name": "COGNITO_CLIENT_ID",
          "valueFrom": "arn:aws:secretsmanager:$REGION:$ACCOUNT_ID:secret:unisync/cognito-config:clientId::"
        }
      ],
      "logConfiguration": {
        "logDriver": "awslogs",
        "options": {
          "awslogs-group": "/ecs/unisync-$service",
          "awslogs-region": "$REGION",
          "awslogs-stream-prefix": "ecs"
        }
      }
    }
  ]
}
EOF
    aws ecs register-task-definition --cli-input-json "file://$service-task.json"
  done

  # 6.4 Create the Application Load Balancer (public subnets)
  ALB_ARN=$(aws elbv2 create-load-balancer \
    --name unisync-alb \
    --subnets "$SUBNET_PUBLIC_2A" "$SUBNET_PUBLIC_2C" \
    --security-groups "$ALB_SG" \
    --query 'LoadBalancers[0].LoadBalancerArn' --output text)
  check ALB_ARN
  # Create the target group (for the API Gateway)
  TG_ARN=$(aws elbv2 create-target-group \
    --name unisync-api-gateway-tg \
    --protocol HTTP \
    --port 8080 \
    --vpc-id "$VPC_ID" \
    --target-type ip \
    --health-check-path /actuator/health \
    --health-check-interval-seconds 30 \
    --query 'TargetGroups[0].TargetGroupArn' --output text)
  check TG_ARN
  # Create the listener
  aws elbv2 create-listener \
    --load-balancer-arn "$ALB_ARN" \
    --protocol HTTP \
    --port 80 \
    --default-actions "Type=forward,TargetGroupArn=$TG_ARN"

  # 6.5 Create the ECS services (private subnets)
  aws ecs create-service \
    --cluster unisync-cluster \
    --service-name api-gateway \
    --task-definition unisync-api-gateway \
    --desired-count 2 \
    --launch-type FARGATE \
    --network-configuration "awsvpcConfiguration={
    subnets=[$SUBNET_PRIVATE_2A,$SUBNET_PRIVATE_2C],
    securityGroups=[$ECS_SG],
    assignPublicIp=DISABLED
  }" \
    --load-balancers "targetGroupArn=$TG_ARN,containerName=api-gateway,containerPort=8080"
  # The other services the same way (no load balancer)
  for service in user-service course-service schedule-service; do
    aws ecs create-service \
      --cluster unisync-cluster \
      --service-name "$service" \
      --task-definition "unisync-$service" \
      --desired-count 2 \
      --launch-type FARGATE \
      --network-configuration "awsvpcConfiguration={
    subnets=[$SUBNET_PRIVATE_2A,$SUBNET_PRIVATE_2C],
    securityGroups=[$ECS_SG],
    assignPublicIp=DISABLED
  }"
  done
fi

if wanted 7; then
  section "7 Lambda function"
  # 7.1 Create the Lambda execution role
  cat >lambda-trust-policy.json <<EOF
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Principal": {
        "Service": "lambda.amazonaws.com"
      },
      "Action": "sts:AssumeRole"
    }
  ]
}
EOF
  aws iam create-role \
    --role-name unisync-lambda-execution-role \
    --assume-role-policy-document file://lambda-trust-policy.json
  # Attach the required policies
  aws iam attach-role-policy \
    --role-name unisync-lambda-execution-role \
    --policy-arn arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole
  aws iam attach-role-policy \
    --role-name unisync-lambda-execution-role \
    --policy-arn arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole
  # ("Add SQS and Secrets Manager permissions": the guide gives no command for it.)

  # 7.2 Package and deploy the Lambda function, in a copy of its folder
  lambda_dir="${UNISYNC_LAMBDA_DIR:-$ROOT/examples/canvas-sync-lambda}"
  mkdir -p canvas-sync-lambda
  if [[ -f "$lambda_dir/src/handler.py" ]]; then
    cp -R "$lambda_dir/." canvas-sync-lambda/
  else
    mkdir -p canvas-sync-lambda/src
    printf 'def lambda_handler(event, context):\n    return {"statusCode": 200}\n' \
      >canvas-sync-lambda/src/handler.py
  fi
  [[ -f canvas-sync-lambda/requirements.txt ]] || : >canvas-sync-lambda/requirements.txt
  cd canvas-sync-lambda
  # Package together with the dependencies
  python3 -m pip install -q --disable-pip-version-check -r requirements.txt -t package/
  cd package
  # With no dependencies the folder is empty: zip says "Nothing to do!" (12) and makes no file.
  zip -r ../canvas-sync-lambda.zip . || (($? == 12))
  cd ..
  zip -g canvas-sync-lambda.zip src/handler.py
  # Create the Lambda function
  aws lambda create-function \
    --function-name canvas-sync-lambda \
    --runtime python3.11 \
    --role "arn:aws:iam::$ACCOUNT_ID:role/unisync-lambda-execution-role" \
    --handler src.handler.lambda_handler \
    --zip-file fileb://canvas-sync-lambda.zip \
    --timeout 300 \
    --memory-size 512 \
    --environment Variables="{
    USER_SERVICE_URL=http://unisync-user-service:8081,
    CANVAS_API_BASE_URL=https://canvas.instructure.com/api/v1
  }"
  cd "$WORK"
fi

if wanted 8; then
  section "8 SQS queues"
  # assignment-events-queue
  aws sqs create-queue --queue-name assignment-events-queue
  # DLQ
  aws sqs create-queue --queue-name assignment-events-queue-dlq
  # The remaining queues
  aws sqs create-queue --queue-name submission-events-queue
  aws sqs create-queue --queue-name task-creation-queue
  aws sqs create-queue --queue-name llm-analysis-queue
fi

if wanted 9; then
  section "9 Verify the deployment"
  # 9.1 Look up the ALB DNS name
  ALB_DNS=$(aws elbv2 describe-load-balancers \
    --names unisync-alb \
    --query 'LoadBalancers[0].DNSName' --output text)
  check ALB_DNS
  # Health Check: on AWS it answers once the load balancer is active and the services' tasks run
  # (and pass its health checks); until then the operator tries again.
  until [[ "$(aws elbv2 describe-load-balancers --names unisync-alb \
    --query 'LoadBalancers[0].State.Code' --output text)" == active &&
    "$(aws ecs describe-services --cluster unisync-cluster --services "${SERVICES[@]}" \
      --query 'length(services[?runningCount < desiredCount])' --output text)" == 0 ]]; do
    sleep "${BY_HAND_POLL_SECONDS:-30}"
  done
  curl -fsS "${BY_HAND_HEALTH_URL:-http://$ALB_DNS/actuator/health}"
  echo
fi

section "done: $SECTIONS"
