import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// Guide 6: the commands the ecs step runs, without running them.
final class ECSStepArgvTests: XCTestCase {
  static let services = ["api-gateway", "user-service", "course-service", "schedule-service"]
  static let values: [String: String] = [
    ContextValue.account: "123456789012", ContextValue.region: "ap-northeast-2",
    ContextValue.lineage: "L",
    "IMAGE_TAG": "4acc735",
    "EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
    "TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/unisync-ecs-task-role",
    "COGNITO_SECRET_ARN":
      "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:unisync/cognito-config-AbCdEf",
    "ENCRYPTION_KEY_SECRET_ARN":
      "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:unisync/encryption-key-GhIjKl",
    "RDS_SECRET_ARN":
      "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:rds!db-1234-MnOpQr",
    "RDS_ENDPOINT": "unisync-mysql.abc.ap-northeast-2.rds.amazonaws.com",
    "TG_ARN":
      "arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:targetgroup/unisync-api-gateway-tg/1",
    "ECS_SG": "sg-ecs", "SUBNET_PRIVATE_2A": "subnet-a", "SUBNET_PRIVATE_2C": "subnet-c",
    "CLUSTER_ARN": "arn:aws:ecs:ap-northeast-2:123456789012:cluster/unisync-cluster",
    "DB_PASSWORD_SECRET_ARN_USER_SERVICE":
      "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:unisync/db-user-service-StUvWx",
    "DB_PASSWORD_SECRET_ARN_COURSE_SERVICE":
      "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:unisync/db-course-service-AbCdEf",
    "DB_PASSWORD_SECRET_ARN_SCHEDULE_SERVICE":
      "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:unisync/db-schedule-service-GhIjKl",
  ]

  func actions() throws -> [Action] { ECSStep().actions(for: try configuredDeployment()) }
  func action(_ name: String) throws -> Action {
    try XCTUnwrap(try actions().first { $0.name == name }, name)
  }

  func testActionsFollowTheGuideSections() throws {
    let names = try actions().map(\.name)
    var expected: [String] = [
      "cluster", "execution-role", "execution-role-AmazonECSTaskExecutionRolePolicy",
      "execution-role-SecretsManagerAccess", "task-role", "task-definition-families",
    ]
    expected += Self.services.flatMap {
      ["log-group-\($0)", "log-retention-\($0)", "task-definition-\($0)"]
    }
    // Guide 3.3: the databases, by a one-off task, before any service.
    expected += [
      "log-group-db-setup", "log-retention-db-setup", "task-definition-db-setup", "databases",
    ]
    expected += [
      "load-balancer", "load-balancer-active", "load-balancer-dns", "target-group",
      "target-group-attributes", "listener", "listener-forward",
      // What the guide forgot: the names the services find each other by.
      "discovery-namespace", "discovery-namespace-created", "discovery-namespace-arn",
    ]
    let discovery: [String] = Self.services.flatMap {
      ["discovery-service-\($0)", "discovery-arn-\($0)"]
    }
    let services: [String] = Self.services.flatMap { ["service-\($0)", "service-revision-\($0)"] }
    XCTAssertEqual(names, expected + discovery + services)
    let deployment = try configuredDeployment()
    XCTAssertEqual(
      Set(ECSStep().requiredExports(for: deployment)),
      [
        "ALB_SG", "ECS_SG", "VPC_ID", "SUBNET_PUBLIC_2A", "SUBNET_PUBLIC_2C", "SUBNET_PRIVATE_2A",
        "SUBNET_PRIVATE_2C",
        "IMAGE_TAG", "RDS_ENDPOINT", "RDS_SECRET_ARN", "ENCRYPTION_KEY_SECRET_ARN",
        "COGNITO_SECRET_ARN", "DB_PASSWORD_SECRET_ARN_USER_SERVICE",
        "DB_PASSWORD_SECRET_ARN_COURSE_SERVICE", "DB_PASSWORD_SECRET_ARN_SCHEDULE_SERVICE",
      ])
  }

  /// A rerun after a kill must be able to tell whether each write happened: every write has a
  /// lookup or a precheck (re-running one blindly would be a write again).
  func testEveryWriteOfTheThreeStepsCanTellWhetherItHappened() throws {
    let deployment = try configuredDeployment()
    let steps: [any GuideStep] = [ECRStep(), ECSStep(), LambdaStep()]
    for step in steps {
      for action in step.actions(for: deployment) where action.isWrite {
        // A procedure that reconciles itself (the database task finds its own task) says so.
        XCTAssertTrue(
          action.lookup != nil || action.precheck != nil
            || (action.procedure != nil && action.idempotent), "\(step.id)/\(action.name)")
      }
    }
  }

  /// The task role: trusted by ECS tasks, no policy by default (the configured managed policies
  /// when there are some), deleted by destroy with what it has.
  func testTheTaskRoleIsTrustedByECSTasksAndHasOnlyTheConfiguredPolicies() throws {
    var deployment = try configuredDeployment()
    let create = try XCTUnwrap(ECSStep().actions(for: deployment).first { $0.name == "task-role" })
    XCTAssertEqual(
      create.command.argument(after: "--role-name").map { render($0, with: [:]) },
      "unisync-ecs-task-role")
    let trust = try XCTUnwrap(
      try jsonArgument(create.command, after: "--assume-role-policy-document", with: Self.values)
        as? [String: Any])
    XCTAssertEqual(
      ((trust["Statement"] as? [[String: Any]])?.first?["Principal"] as? [String: String])?[
        "Service"], "ecs-tasks.amazonaws.com")
    XCTAssertFalse(
      ECSStep().actions(for: deployment).contains { $0.name.hasPrefix("task-role-") },
      "no policy by default")
    XCTAssertEqual(
      ECSStep().teardown(for: deployment).filter { $0.deletes == "task-role" }.map(\.name),
      ["delete-task-role"])
    deployment.ecs.taskRolePolicies = ["arn:aws:iam::aws:policy/AmazonSQSFullAccess"]
    XCTAssertEqual(
      ECSStep().actions(for: deployment).filter { $0.name.hasPrefix("task-role") }.map(\.name),
      ["task-role", "task-role-AmazonSQSFullAccess"])
    XCTAssertEqual(
      ECSStep().teardown(for: deployment).filter { $0.deletes == "task-role" }.map(\.name),
      ["detach-task-role-AmazonSQSFullAccess", "delete-task-role"])
  }

  func testTaskDefinitionsAreRenderedFromTheTemplatesWithTheSecretARNs() throws {
    let gateway = try action("task-definition-api-gateway")
    let document = try XCTUnwrap(
      try jsonArgument(gateway.command, after: "--cli-input-json", with: Self.values)
        as? [String: Any])
    XCTAssertEqual(document["family"] as? String, "unisync-api-gateway")
    XCTAssertEqual(document["executionRoleArn"] as? String, Self.values["EXECUTION_ROLE_ARN"])
    XCTAssertEqual(document["taskRoleArn"] as? String, Self.values["TASK_ROLE_ARN"])
    let container = try XCTUnwrap((document["containerDefinitions"] as? [[String: Any]])?.first)
    XCTAssertEqual(container["image"] as? String, "127.0.0.1:5000/unisync/api-gateway:4acc735")
    XCTAssertEqual(
      (container["portMappings"] as? [[String: Any]])?.first?["containerPort"] as? Int, 8080)
    XCTAssertEqual(
      (container["secrets"] as? [[String: String]])?.map { $0["valueFrom"] ?? "" },
      [
        Self.values["COGNITO_SECRET_ARN"]! + ":userPoolId::",
        Self.values["COGNITO_SECRET_ARN"]! + ":clientId::",
      ])
    XCTAssertEqual(
      gateway.after, ["log-group-api-gateway"], "the log group exists before anything logs to it")

    let user = try action("task-definition-user-service")
    let userDocument = try XCTUnwrap(
      try jsonArgument(user.command, after: "--cli-input-json", with: Self.values) as? [String: Any]
    )
    let userContainer = try XCTUnwrap(
      (userDocument["containerDefinitions"] as? [[String: Any]])?.first)
    XCTAssertEqual(userContainer["name"] as? String, "user-service")
    XCTAssertEqual(
      (userContainer["portMappings"] as? [[String: Any]])?.first?["containerPort"] as? Int, 8081)
    var secrets: [String: String] = [:]
    for secret in userContainer["secrets"] as? [[String: String]] ?? [] {
      secrets[secret["name"]!] = secret["valueFrom"]
    }
    // The service's own user and its secret: not the master user, whose password RDS rotates.
    XCTAssertEqual(
      secrets["SPRING_DATASOURCE_PASSWORD"], Self.values["DB_PASSWORD_SECRET_ARN_USER_SERVICE"])
    XCTAssertNil(secrets["SPRING_DATASOURCE_USERNAME"])
    XCTAssertFalse(
      String(describing: userDocument).contains(Self.values["RDS_SECRET_ARN"]!),
      "a service reads nothing of the master secret")
    XCTAssertEqual(secrets["ENCRYPTION_KEY"], Self.values["ENCRYPTION_KEY_SECRET_ARN"])
    let environment = (userContainer["environment"] as? [[String: String]] ?? []).reduce(
      into: [String: String]()
    ) {
      $0[$1["name"]!] = $1["value"]
    }
    XCTAssertEqual(environment["DB_NAME"], "user_db")
    XCTAssertEqual(environment["SPRING_DATASOURCE_USERNAME"], "user_service")
    XCTAssertEqual(
      environment["SPRING_DATASOURCE_URL"],
      "jdbc:mysql://\(Self.values["RDS_ENDPOINT"]!):3306/user_db")
    let logs =
      (userContainer["logConfiguration"] as? [String: Any])?["options"] as? [String: String]
    XCTAssertEqual(logs?["awslogs-group"], "/ecs/unisync-user-service")
    XCTAssertEqual(logs?["awslogs-region"], "ap-northeast-2")
  }

  /// Registered only when the latest active revision differs in a setting the document gives, and
  /// only in a family whose latest active revision is this deployment's (or that has none).
  func testATaskDefinitionIsRegisteredOnlyWhenItDiffersAndOnlyInAFamilyOfItsOwn() throws {
    let action = try action("task-definition-course-service")
    let precheck = try XCTUnwrap(action.precheck)
    XCTAssertEqual(
      precheck.command.arguments.map { render($0, with: [:]) },
      [
        "ecs", "describe-task-definition", "--task-definition", "unisync-course-service",
        "--include", "TAGS", "--query", "{taskDefinition: taskDefinition, tags: tags}", "--output",
        "json",
      ])
    let rendered = render(
      try XCTUnwrap(action.command.argument(after: "--cli-input-json")), with: Self.values)
    var described = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(rendered.utf8)) as? [String: Any])
    let arn = "arn:aws:ecs:ap-northeast-2:123456789012:task-definition/unisync-course-service:3"
    // What AWS adds: the ARN, the revision, defaults, and the same lists in another order.
    described["taskDefinitionArn"] = arn
    described["revision"] = 3
    described["status"] = "ACTIVE"
    described["compatibilities"] = ["EC2", "FARGATE"]
    var container = (described["containerDefinitions"] as! [[String: Any]])[0]
    container["essential"] = true
    container["mountPoints"] = [Any]()
    container["environment"] = Array((container["environment"] as! [Any]).reversed())
    described["containerDefinitions"] = [container]
    let ours: [[String: String]] = [["key": "runbook:deployment", "value": "unisync"]]
    func describe(_ object: [String: Any], tags: [[String: String]] = ours) -> String {
      String(
        decoding: try! JSONSerialization.data(withJSONObject: [
          "taskDefinition": object, "tags": tags,
        ]), as: UTF8.self)
    }
    XCTAssertEqual(precheck.upToDate(describe(described), Self.values), arn)
    XCTAssertNil(precheck.refusal?(describe(described), Self.values))
    // A family whose latest active revision is another's (no tag, or another deployment's):
    // registering into it is refused; an inactive latest one is no one's.
    for tags in [[], [["key": "runbook:deployment", "value": "other"]]] {
      let refusal = try XCTUnwrap(precheck.refusal?(describe(described, tags: tags), Self.values))
      XCTAssertTrue(
        refusal.contains("family 'unisync-course-service' has revisions this deployment did not"),
        refusal)
      XCTAssertTrue(refusal.contains("ecs.familyPrefix"), refusal)
    }

    var newImage = Self.values
    newImage["IMAGE_TAG"] = "5bdd846"
    XCTAssertNil(
      precheck.upToDate(describe(described), newImage), "a new image needs a new revision")
    var inactive = described
    inactive["status"] = "INACTIVE"
    XCTAssertNil(precheck.upToDate(describe(inactive), Self.values))
    XCTAssertNil(precheck.refusal?(describe(inactive, tags: []), Self.values))
    XCTAssertNil(precheck.upToDate("not json", Self.values))
  }

  func testExecutionRoleReadsOnlyThisDeploymentsSecretsAndTheRDSSecret() throws {
    let put = try action("execution-role-SecretsManagerAccess")
    let document = try XCTUnwrap(
      try jsonArgument(put.command, after: "--policy-document", with: Self.values) as? [String: Any]
    )
    let statement = try XCTUnwrap((document["Statement"] as? [[String: Any]])?.first)
    XCTAssertEqual(statement["Action"] as? [String], ["secretsmanager:GetSecretValue"])
    XCTAssertEqual(
      statement["Resource"] as? [String],
      [
        "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:unisync/*",
        Self.values["RDS_SECRET_ARN"]!,
      ])
    let trust = try jsonArgument(
      try action("execution-role").command, after: "--assume-role-policy-document")
    XCTAssertEqual(
      (((trust as? [String: Any])?["Statement"] as? [[String: Any]])?.first?["Principal"]
        as? [String: String])?["Service"],
      "ecs-tasks.amazonaws.com")
    // Put only when the role's document differs.
    let precheck = try XCTUnwrap(put.precheck)
    let same = render(
      try XCTUnwrap(put.command.argument(after: "--policy-document")), with: Self.values)
    XCTAssertEqual(precheck.upToDate(same, Self.values), "SecretsManagerAccess")
    XCTAssertNil(
      precheck.upToDate(same.replacingOccurrences(of: "unisync/*", with: "other/*"), Self.values))
    let attach = try action("execution-role-AmazonECSTaskExecutionRolePolicy")
    let attached = Capture(export: nil, pattern: try XCTUnwrap(attach.lookup?.pattern))
    XCTAssertTrue(
      attached.accepts("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"))
    XCTAssertFalse(
      attached.accepts("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicyX"))
  }

  func testLoadBalancerTargetGroupAndListenerAreLookedUpBeforeTheyAreCreated() throws {
    let alb = try action("load-balancer")
    XCTAssertEqual(
      alb.command.arguments.map {
        render(
          $0,
          with: [
            "SUBNET_PUBLIC_2A": "subnet-1", "SUBNET_PUBLIC_2C": "subnet-2", "ALB_SG": "sg-alb",
          ])
      }
      .prefix(12),
      [
        "elbv2", "create-load-balancer", "--name", "unisync-alb", "--subnets", "subnet-1",
        "subnet-2", "--security-groups",
        "sg-alb", "--scheme", "internet-facing", "--type",
      ])
    let found =
      "arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:loadbalancer/app/unisync-alb/50dc6c495c0c9188"
    // An ALB of that name is found; its lineage tag says whether it is this deployment's.
    let check = try XCTUnwrap(alb.precheck)
    XCTAssertEqual(check.upToDate(found + "\n", [:]), found)
    XCTAssertNil(check.upToDate("\n", [:]))
    XCTAssertNil(
      check.upToDate(found.replacingOccurrences(of: "unisync-alb", with: "other-alb"), [:]))
    let ownership = try XCTUnwrap(check.ownership)
    XCTAssertEqual(
      ownership.command.arguments.prefix(4).map { render($0, with: [Precheck.found: found]) },
      ["elbv2", "describe-tags", "--resource-arns", found])
    XCTAssertTrue(ownership.owned("L-1\n", [ContextValue.lineage: "L-1"]))
    XCTAssertFalse(ownership.owned("\n", [ContextValue.lineage: "L-1"]))
    XCTAssertFalse(ownership.owned("L-2\n", [ContextValue.lineage: "L-1"]))
    XCTAssertTrue(ownership.refusal.contains("ALB 'unisync-alb' exists already"))
    XCTAssertTrue(ownership.refusal.contains("pass --adopt"))
    // After an interrupted create, the look-up by name finds what that run made; --adopt takes
    // one in this deployment's VPC only.
    XCTAssertEqual(
      render(try XCTUnwrap(alb.lookup?.command.argument(after: "--query")), with: [:]),
      "LoadBalancers[?LoadBalancerName=='unisync-alb'].LoadBalancerArn")
    XCTAssertEqual(
      render(
        try XCTUnwrap(alb.adoptLookup?.command.argument(after: "--query")),
        with: ["VPC_ID": "vpc-1"]),
      "LoadBalancers[?LoadBalancerName=='unisync-alb' && VpcId=='vpc-1'].LoadBalancerArn")

    let group = try action("target-group")
    XCTAssertEqual(
      group.command.arguments.map { render($0, with: ["VPC_ID": "vpc-1"]) }.prefix(22),
      [
        "elbv2", "create-target-group", "--name", "unisync-api-gateway-tg", "--protocol", "HTTP",
        "--port", "8080",
        "--vpc-id", "vpc-1", "--target-type", "ip", "--health-check-path", "/actuator/health",
        // The configuration's health check (the defaults: docs/operator-guide.md).
        "--health-check-interval-seconds", "15", "--health-check-timeout-seconds", "5",
        "--healthy-threshold-count", "2", "--unhealthy-threshold-count", "3",
      ])
    // A target group of that name is this deployment's only with its lineage tag.
    let groupFound =
      "arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:targetgroup/unisync-api-gateway-tg/73e2d6bc24d8a067"
    let groupCheck = try XCTUnwrap(group.precheck)
    XCTAssertEqual(groupCheck.upToDate(groupFound + "\n", [:]), groupFound)
    let groupOwnership = try XCTUnwrap(groupCheck.ownership)
    XCTAssertEqual(
      groupOwnership.command.arguments.prefix(4).map {
        render($0, with: [Precheck.found: groupFound])
      },
      ["elbv2", "describe-tags", "--resource-arns", groupFound])
    XCTAssertFalse(groupOwnership.owned("\n", [ContextValue.lineage: "L-1"]))
    XCTAssertTrue(groupOwnership.owned("L-1\n", [ContextValue.lineage: "L-1"]))
    XCTAssertTrue(
      groupOwnership.refusal.contains("target group 'unisync-api-gateway-tg' exists already"))
    XCTAssertEqual(
      render(
        try XCTUnwrap(group.adoptLookup?.command.argument(after: "--query")),
        with: ["VPC_ID": "vpc-1"]),
      "TargetGroups[?TargetGroupName=='unisync-api-gateway-tg' && VpcId=='vpc-1'].TargetGroupArn")
    let attributes = try jsonArgument(
      try action("target-group-attributes").command, after: "--attributes")
    XCTAssertEqual(
      attributes as? [[String: String]],
      [["Key": "deregistration_delay.timeout_seconds", "Value": "30"]])

    let listener = try action("listener")
    XCTAssertEqual(
      render(try XCTUnwrap(listener.precheck?.command.argument(after: "--query")), with: [:]),
      "Listeners[?Port==`80`].ListenerArn")
    let forward = try XCTUnwrap(try action("listener-forward").precheck)
    let listenerArn =
      "arn:aws:elasticloadbalancing:ap-northeast-2:123456789012:listener/app/unisync-alb/50dc6c495c0c9188/f2f7dc8efc522ab2"
    XCTAssertEqual(
      forward.upToDate("\(listenerArn)\t\(Self.values["TG_ARN"]!)\n", Self.values), listenerArn)
    XCTAssertNil(
      forward.upToDate(
        "\(listenerArn)\tarn:aws:elasticloadbalancing:x:targetgroup/other/2\n", Self.values))
  }

  func testServicesRunPrivatelyWithTheCircuitBreakerAndOnlyTheGatewayIsBehindTheALB() throws {
    for service in Self.services {
      let create = try action("service-\(service)")
      let command = create.command
      XCTAssertEqual(
        render(try XCTUnwrap(command.argument(after: "--launch-type")), with: [:]), "FARGATE")
      XCTAssertEqual(
        render(try XCTUnwrap(command.argument(after: "--desired-count")), with: [:]), "2")
      XCTAssertEqual(
        render(try XCTUnwrap(command.argument(after: "--task-definition")), with: Self.values),
        Self.values["TASK_DEF_\(service.uppercased().replacingOccurrences(of: "-", with: "_"))"]
          ?? "<TASK_DEF_\(service.uppercased().replacingOccurrences(of: "-", with: "_"))>")
      XCTAssertEqual(
        try jsonArgument(command, after: "--network-configuration", with: Self.values)
          as? NSDictionary,
        [
          "awsvpcConfiguration": [
            "subnets": ["subnet-a", "subnet-c"], "securityGroups": ["sg-ecs"],
            "assignPublicIp": "DISABLED",
          ]
        ])
      XCTAssertEqual(
        try jsonArgument(command, after: "--deployment-configuration") as? NSDictionary,
        ["deploymentCircuitBreaker": ["enable": true, "rollback": true]])
      let gateway = service == "api-gateway"
      XCTAssertEqual(command.argument(after: "--load-balancers") != nil, gateway, service)
      XCTAssertEqual(
        command.argument(after: "--health-check-grace-period-seconds").map {
          render($0, with: [:])
        }, gateway ? "180" : nil)
      XCTAssertEqual(create.after, gateway ? ["databases", "listener-forward"] : ["databases"])
      XCTAssertNotNil(create.transientErrors)
      // Found ACTIVE services are never created again (the emulator would replace them).
      XCTAssertEqual(
        render(try XCTUnwrap(create.precheck?.command.argument(after: "--query")), with: [:]),
        "services[?status=='ACTIVE'].serviceArn")
    }
    let loadBalancers = try jsonArgument(
      try action("service-api-gateway").command, after: "--load-balancers", with: Self.values)
    XCTAssertEqual(
      loadBalancers as? [NSDictionary],
      [
        [
          "targetGroupArn": Self.values["TG_ARN"]!, "containerName": "api-gateway",
          "containerPort": 8080,
        ]
      ])
  }

  func testAnExistingServiceMovesToTheRegisteredRevision() throws {
    let update = try action("service-revision-user-service")
    XCTAssertEqual(
      update.command.arguments.map {
        render($0, with: ["TASK_DEF_USER_SERVICE": "td:2", "CLUSTER_ARN": "c"])
      }.prefix(8),
      [
        "ecs", "update-service", "--cluster", "c", "--service", "user-service", "--task-definition",
        "td:2",
      ])
    let precheck = try XCTUnwrap(update.precheck)
    let arn = "arn:aws:ecs:ap-northeast-2:123456789012:service/unisync-cluster/user-service"
    XCTAssertEqual(precheck.upToDate("\(arn)\ttd:2\n", ["TASK_DEF_USER_SERVICE": "td:2"]), arn)
    XCTAssertNil(precheck.upToDate("\(arn)\ttd:1\n", ["TASK_DEF_USER_SERVICE": "td:2"]))
    XCTAssertNil(precheck.upToDate("\n", ["TASK_DEF_USER_SERVICE": "td:2"]))
  }

  /// What a cluster, ALB, listener or service made in the same run settles without a read.
  func testReadsAfterACreationInTheSameRunAreSettled() throws {
    let settled = Dictionary(
      uniqueKeysWithValues: try actions().compactMap { action in
        action.settledBy.map { (action.name, $0) }
      })
    XCTAssertEqual(settled["listener"], .nothingToFind(whenCreated: "load-balancer"))
    XCTAssertEqual(settled["listener-forward"], .nothingToDo(whenCreated: "listener"))
    XCTAssertEqual(
      settled["execution-role-SecretsManagerAccess"], .nothingToFind(whenCreated: "execution-role"))
    for service in Self.services {
      XCTAssertEqual(settled["service-\(service)"], .nothingToFind(whenCreated: "cluster"))
      XCTAssertEqual(
        settled["service-revision-\(service)"], .nothingToDo(whenCreated: "service-\(service)"))
    }
    // One listing of the families with an active revision stands in for a describe of each.
    for service in Self.services {
      XCTAssertEqual(
        settled["task-definition-\(service)"],
        .nothingToFind(unlessListedBy: "task-definition-families", name: "unisync-\(service)"))
    }
    let families = try action("task-definition-families")
    XCTAssertEqual(families.effect, .read)
    XCTAssertEqual(
      families.command.arguments.map(\.description),
      [
        "ecs", "list-task-definition-families", "--family-prefix", "unisync-", "--status", "ACTIVE",
        "--query", "families", "--output", "text",
      ])
    // Nothing of that name can serve a VPC this run created a moment ago.
    for name in ["load-balancer", "target-group"] {
      XCTAssertEqual(settled[name], .nothingToFind(whenCreated: "vpc", inStep: "network"), name)
    }
    // The namespace: nothing to find in a VPC made in this run; its services: nothing to find in
    // a namespace made in this run.
    XCTAssertEqual(
      settled["discovery-namespace"], .nothingToFind(whenCreated: "vpc", inStep: "network"))
    for service in Self.services {
      XCTAssertEqual(
        settled["discovery-service-\(service)"],
        .nothingToFind(whenCreated: "discovery-namespace"))
    }
    XCTAssertEqual(
      settled["task-definition-db-setup"],
      .nothingToFind(unlessListedBy: "task-definition-families", name: "unisync-db-setup"))
    XCTAssertEqual(settled.count, 7 + 4 * Self.services.count, "\(settled.keys.sorted())")
    // The cluster is looked for first: create-cluster would return one that was there before.
    let cluster = try action("cluster")
    let precheck = try XCTUnwrap(cluster.precheck)
    XCTAssertEqual(
      precheck.command.arguments.prefix(4).map(\.description),
      ["ecs", "describe-clusters", "--clusters", "unisync-cluster"])
  }

  func testLogGroupsKeepTheConfiguredRetention() throws {
    let retention = try action("log-retention-schedule-service")
    XCTAssertEqual(
      retention.command.arguments.map { render($0, with: [:]) },
      [
        "logs", "put-retention-policy", "--log-group-name", "/ecs/unisync-schedule-service",
        "--retention-in-days", "7",
      ])
    XCTAssertEqual(
      render(try XCTUnwrap(retention.lookup?.command.argument(after: "--query")), with: [:]),
      "logGroups[?logGroupName=='/ecs/unisync-schedule-service' && retentionInDays==`7`].logGroupName"
    )
  }

  func testTemplatesFillKnownPlaceholdersAndReferenceExportsForTheRest() throws {
    let template = DocumentTemplate(
      path: "t.json", text: #"{"a": "${NAME}", "b": ${PORT}, "c": "${VPC_ID}-${NAME}"}"#)
    XCTAssertEqual(template.placeholders, ["NAME", "PORT", "VPC_ID"])
    let rendered = template.render(["NAME": .text(#"x"y"#), "PORT": .text("80")])
    XCTAssertEqual(rendered.exportReferences, ["VPC_ID"])
    XCTAssertEqual(
      render(rendered, with: ["VPC_ID": "vpc-1"]), #"{"a": "x\"y", "b": 80, "c": "vpc-1-x\"y"}"#)
    let folder = try makeScratchFolder()
    try Data("{ not json ${X} }".utf8).write(to: folder.appendingPathComponent("bad.json"))
    guard case .failure(let problem) = DocumentTemplate.load("bad.json", base: folder.path) else {
      return XCTFail("a file that is not JSON is refused")
    }
    XCTAssertTrue(problem.reason.contains("is not a JSON object"), problem.reason)
    guard case .failure = DocumentTemplate.load("missing.json", base: folder.path) else {
      return XCTFail("a missing file is refused")
    }
  }

  func testJSONContainmentIgnoresAddedKeysAndOrder() {
    XCTAssertTrue(jsonContains(["a": 1, "b": [1, 2], "c": "x"], ["a": 1, "b": [2, 1]]))
    XCTAssertFalse(jsonContains(["a": 1, "b": [1, 2, 3]], ["b": [2, 1]]))
    XCTAssertFalse(jsonContains(["a": "1"], ["a": 1]))
    XCTAssertTrue(
      jsonContains(["a": 1], ["b": []]), "an empty list AWS leaves out is the same")
    XCTAssertFalse(jsonContains(["a": 1], ["b": [1]]))
  }
}
