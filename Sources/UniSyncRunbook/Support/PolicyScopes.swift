import Foundation
import RunbookAWS
import RunbookState

/// Where the operator policy can name its resources, per service, and what AWS authorizes besides
/// the call itself. From the Service Authorization Reference ("Actions, resources, and condition
/// keys for <service>"): an action whose resource types column is empty, or that is called here
/// without naming one resource (a list, a describe of all), is allowed on `*` only.
/// https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html
enum PolicyScopes {
  /// Actions that take no resource-level permissions (or that the tool calls on every resource).
  static let anyResource: Set<String> = [
    "ecr:GetAuthorizationToken", "ecr:DescribeRepositories",
    "ecs:RegisterTaskDefinition", "ecs:DeregisterTaskDefinition", "ecs:DescribeTaskDefinition",
    "ecs:ListTaskDefinitionFamilies", "ecs:ListTaskDefinitions", "ecs:ListClusters",
    "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DescribeTargetGroupAttributes", "elasticloadbalancing:DescribeTags",
    "iam:ListRoles", "lambda:ListFunctions", "lambda:ListEventSourceMappings",
    "lambda:CreateEventSourceMapping", "lambda:GetEventSourceMapping",
    "lambda:DeleteEventSourceMapping", "lambda:UpdateEventSourceMapping",
    "logs:DescribeLogGroups", "rds:DescribeDBInstances", "rds:DescribeDBSubnetGroups",
    "secretsmanager:ListSecrets", "sqs:ListQueues", "sts:GetCallerIdentity", "tag:GetResources",
  ]

  /// Services whose every action here is allowed on `*` (EC2's creates cannot name the resource
  /// they make; the tagging API and STS have no resources).
  static let unscopedServices: Set<String> = ["ec2", "tag", "sts"]

  /// What `docker push` and `docker manifest inspect` against ECR are authorized as
  /// (https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-push-iam.html).
  static let registryActions: [String: [String]] = [
    "push": [
      "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload", "ecr:PutImage",
    ],
    "manifest": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
    "pull": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
  ]

  /// The tagging action each service authorizes when a create carries tags (besides the create).
  static let tagOnCreate: [String: Set<String>] = [
    "ecs": ["ecs:TagResource"], "elasticloadbalancing": ["elasticloadbalancing:AddTags"],
    "rds": ["rds:AddTagsToResource"], "iam": ["iam:TagRole"],
    "secretsmanager": ["secretsmanager:TagResource"], "ecr": ["ecr:TagResource"],
    "logs": ["logs:TagResource", "logs:TagLogGroup"], "sqs": ["sqs:TagQueue"],
    "lambda": ["lambda:TagResource"],
  ]

  /// The resources of this deployment a service's actions are scoped to, by name.
  static func resources(_ prefix: String, _ deployment: Deployment) -> [String] {
    let ecs = deployment.ecs
    switch prefix {
    case "ecs":
      return [
        "arn:aws:ecs:*:*:cluster/\(ecs.cluster)", "arn:aws:ecs:*:*:service/\(ecs.cluster)/*",
        "arn:aws:ecs:*:*:task/\(ecs.cluster)/*",
        "arn:aws:ecs:*:*:task-definition/\(ecs.familyPrefix)-*:*",
      ]
    case "elasticloadbalancing":
      return [
        "arn:aws:elasticloadbalancing:*:*:loadbalancer/app/\(ecs.loadBalancer)/*",
        "arn:aws:elasticloadbalancing:*:*:listener/app/\(ecs.loadBalancer)/*",
        "arn:aws:elasticloadbalancing:*:*:targetgroup/\(ecs.targetGroup)/*",
      ]
    case "rds":
      // CreateDBInstance is authorized on the instance, its subnet group, and the default
      // parameter and option groups; destroy's final snapshot is a snapshot resource.
      return [
        "arn:aws:rds:*:*:db:\(deployment.rds.instanceIdentifier)",
        "arn:aws:rds:*:*:subgrp:\(deployment.rds.subnetGroupName)",
        "arn:aws:rds:*:*:snapshot:\(deployment.rds.instanceIdentifier)-*",
        "arn:aws:rds:*:*:pg:*", "arn:aws:rds:*:*:og:*", "arn:aws:rds:*:*:secgrp:*",
      ]
    case "secretsmanager":
      // The deployment's secrets, and the master password secret RDS makes (`rds!db-...`).
      return deployment.secretNamePatterns().map { "arn:aws:secretsmanager:*:*:secret:\($0)" }
        + ["arn:aws:secretsmanager:*:*:secret:rds!*"]
    case "ecr":
      return ["arn:aws:ecr:*:*:repository/\(deployment.ecr.repositoryPrefix)/*"]
    case "logs":
      let groups = ["/ecs/\(ecs.familyPrefix)-*", "/aws/lambda/\(deployment.lambda.functionName)"]
      return groups.flatMap {
        ["arn:aws:logs:*:*:log-group:\($0)", "arn:aws:logs:*:*:log-group:\($0):*"]
      }
    case "iam":
      return roleNames(deployment).map { "arn:aws:iam::*:role/\($0)" }
    case "lambda":
      return ["arn:aws:lambda:*:*:function:\(deployment.lambda.functionName)"]
    case "sqs":
      return (deployment.sqs.queues + [deployment.sqs.deadLetterQueue]).map {
        "arn:aws:sqs:*:*:\($0)"
      }
    default:
      return ["*"]
    }
  }

  /// The roles the steps make (the execution role, the task role, the function's role).
  static func roleNames(_ deployment: Deployment) -> [String] {
    [deployment.ecs.executionRole, deployment.ecs.taskRole, deployment.lambda.roleName]
  }

  /// A service's statements: its actions scoped by name, and those that need `*` apart.
  static func statements(prefix: String, actions: Set<String>, deployment: Deployment)
    -> [OperatorPolicy.Statement]
  {
    let sid = sidName(prefix)
    if unscopedServices.contains(prefix) {
      return [OperatorPolicy.Statement(sid: sid, actions: actions.sorted(), resources: ["*"])]
    }
    let anywhere = actions.filter(anyResource.contains).sorted()
    let scoped = actions.subtracting(anywhere).sorted()
    var statements: [OperatorPolicy.Statement] = []
    if !scoped.isEmpty {
      statements.append(
        OperatorPolicy.Statement(
          sid: sid, actions: scoped, resources: resources(prefix, deployment)))
    }
    if !anywhere.isEmpty {
      statements.append(
        OperatorPolicy.Statement(sid: sid + "AnyResource", actions: anywhere, resources: ["*"]))
    }
    return statements
  }

  /// What AWS checks besides the calls: handing the roles to ECS and Lambda, and the
  /// service-linked roles ECS, Elastic Load Balancing and RDS create on their first use.
  static func besidesTheCall(steps: Set<String>, deployment: Deployment)
    -> [OperatorPolicy.Statement]
  {
    var statements: [OperatorPolicy.Statement] = []
    // https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html
    if steps.contains("ecs") || steps.contains("update") {
      statements.append(
        OperatorPolicy.Statement(
          sid: "PassTaskRolesToECS", actions: ["iam:PassRole"],
          resources: [deployment.ecs.executionRole, deployment.ecs.taskRole].map {
            "arn:aws:iam::*:role/\($0)"
          },
          condition: ["StringEquals": ["iam:PassedToService": ["ecs-tasks.amazonaws.com"]]]))
    }
    if steps.contains("lambda") {
      statements.append(
        OperatorPolicy.Statement(
          sid: "PassFunctionRoleToLambda", actions: ["iam:PassRole"],
          resources: ["arn:aws:iam::*:role/\(deployment.lambda.roleName)"],
          condition: ["StringEquals": ["iam:PassedToService": ["lambda.amazonaws.com"]]]))
    }
    // https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html
    var linked: [String] = []
    if steps.contains("ecs") {
      linked += ["ecs.amazonaws.com", "elasticloadbalancing.amazonaws.com"]
    }
    if steps.contains("rds") { linked.append("rds.amazonaws.com") }
    if !linked.isEmpty {
      statements.append(
        OperatorPolicy.Statement(
          sid: "ServiceLinkedRolesOnFirstUse", actions: ["iam:CreateServiceLinkedRole"],
          resources: ["arn:aws:iam::*:role/aws-service-role/*"],
          condition: ["StringEquals": ["iam:AWSServiceName": linked]]))
    }
    return statements
  }

  /// The S3 state store (`--state s3://BUCKET/PREFIX`): its objects, the listing of its prefix,
  /// and the bucket's versioning for doctor.
  static func stateStore(_ location: S3Location) -> [OperatorPolicy.Statement] {
    let bucket = "arn:aws:s3:::\(location.bucket)"
    let prefix = location.prefix.isEmpty ? "" : location.prefix + "/"
    return [
      OperatorPolicy.Statement(
        sid: "StateObjects", actions: ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
        resources: ["\(bucket)/\(prefix)*"]),
      OperatorPolicy.Statement(
        sid: "StateListing", actions: ["s3:ListBucket"], resources: [bucket],
        condition: ["StringLike": ["s3:prefix": ["\(prefix)*"]]]),
      OperatorPolicy.Statement(
        sid: "StateVersioning", actions: ["s3:GetBucketVersioning"], resources: [bucket]),
    ]
  }

  /// `elasticloadbalancing` -> `ElasticLoadBalancing`-like statement ids (letters and digits).
  static func sidName(_ prefix: String) -> String {
    prefix.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
  }
}

extension Deployment {
  /// Names of the deployment's secrets as patterns: `unisync/*` for names under `unisync/`,
  /// `NAME-*` for a name without a folder (AWS adds a random suffix).
  func secretNamePatterns() -> [String] {
    var patterns: [String] = []
    // (Module-qualified: `DatabaseSetup` alone is the configuration's `rds.databaseSetup` here.)
    let users = services.filter { $0.database != nil }.map {
      UniSyncRunbook.DatabaseSetup.userSecret(self, $0)
    }
    for name in [secrets.encryptionKeyName, secrets.canvasToken.name, secrets.cognito.name] + users
    {
      let pattern =
        name.contains("/") ? String(name[...name.lastIndex(of: "/")!]) + "*" : name + "-*"
      if !patterns.contains(pattern) { patterns.append(pattern) }
    }
    return patterns
  }
}
