import Foundation
import XCTest

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif

/// The strict layer (Tests/Fixtures/aws-strict.py): for each behaviour, the real aws CLI (through
/// the test shim) against the layer in front of this process's emulator gets the answer real AWS
/// documents, and moto's lenient answer once the behaviour is switched off.
///
/// The layer's clock is frozen for each test and moved on by hand (`advance`), so the scaled delays
/// are checked exactly and nothing depends on how fast the machine runs the aws CLI. The layer is
/// reached through `RUNBOOK_TEST_STRICT_ENDPOINTS` (make test starts it beside every emulator,
/// whatever RUNBOOK_AWS_STRICT says), at the index of the emulator this process claimed.
final class StrictLayerTests: XCTestCase {
  private var layer: StrictLayer!

  override func setUpWithError() throws {
    layer = try StrictLayer.forThisProcess()
    try layer.reset()
  }

  override func tearDownWithError() throws {
    // Back to the layer's start-up configuration and an empty emulator for the next class.
    try layer?.reset()
  }

  /// The delays a test run sees by default, as docs/reliability.md lists them.
  func testDefaultDelaysAreTheDocumentedOnes() throws {
    let config = try layer.config()
    XCTAssertEqual(config["scale"] as? Double, 0.01)
    let delays = try XCTUnwrap(config["delays"] as? [String: Double])
    XCTAssertEqual(
      delays,
      [
        "ec2-consistency": 1.8, "nat-pending": 1.2, "rds-creating": 3, "rds-backing-up": 3,
        "alb-provisioning": 1.8, "lambda-pending": 0.6, "sqs-deleted-recently": 0.6,
        "lambda-eni": 3, "cloudmap-operations": 0.6, "ecs-service-starting": 1.8,
      ])
    for (name, delay) in delays {
      XCTAssertTrue((0.5...3).contains(delay), "\(name): \(delay) s")
    }
    XCTAssertEqual(
      Set(config["known"] as? [String] ?? []),
      [
        "ec2-consistency", "nat-pending", "rds-creating", "alb-provisioning", "lambda-pending",
        "sqs-deleted-recently", "ec2-client-token", "secret-scheduled-deletion", "lambda-eni",
        "fargate-sizes", "vpc-filters", "pagination", "cloudmap-operations", "cloudmap-in-use",
        "ecs-registers-tasks", "ecs-container-memory", "ecs-service-starting",
      ])
  }

  // MARK: 1. EC2 eventual consistency

  func testFreshEC2IdsAreNotFoundForAWhile() throws {
    try layer.configure([])
    let lenient = try layer.ec2("CreateVpc", ["CidrBlock": "10.21.0.0/16"], "vpcId")
    try layer.configure(["ec2-consistency"])
    let vpc = try layer.value(["ec2", "create-vpc", "--cidr-block", "10.20.0.0/16"], "Vpc.VpcId")
    layer.assertError(
      try layer.aws(["ec2", "create-subnet", "--vpc-id", vpc, "--cidr-block", "10.20.1.0/24"]),
      "InvalidVpcID.NotFound", "The vpc ID '\(vpc)' does not exist")
    try layer.advance(1.7)
    layer.assertError(
      try layer.aws(["ec2", "describe-vpcs", "--vpc-ids", vpc]), "InvalidVpcID.NotFound")
    // EC2's own error format and status, as errors-overview.html shows them.
    let (status, body) = try layer.http(
      "POST", "/", form: "Action=DescribeVpcs&Version=2016-11-15&VpcId.1=\(vpc)", service: "ec2")
    XCTAssertEqual(status, 400)
    XCTAssertTrue(
      body.contains("<Response><Errors><Error><Code>InvalidVpcID.NotFound</Code>"), body)
    XCTAssertTrue(body.contains("<RequestID>"), body)

    try layer.advance(0.1)  // 1.8 s: the window is over
    // Made through the layer (it records them as any create), not by the aws CLI: setup only.
    let subnet = try layer.ec2(
      "CreateSubnet", ["VpcId": vpc, "CidrBlock": "10.20.1.0/24"], "subnetId")
    // (moto names a task's interface only in a VPC with DNS hostnames, as the network step makes.)
    _ = try layer.ec2(
      "ModifyVpcAttribute", ["VpcId": vpc, "EnableDnsHostnames.Value": "true"], "requestId")
    let group = try layer.ec2(
      "CreateSecurityGroup", ["GroupName": "strict", "GroupDescription": "d", "VpcId": vpc],
      "groupId")
    let gateway = try layer.ec2("CreateInternetGateway", [:], "internetGatewayId")
    let table = try layer.ec2("CreateRouteTable", ["VpcId": vpc], "routeTableId")
    let allocation = try layer.ec2("AllocateAddress", ["Domain": "vpc"], "allocationId")
    let described = try layer.awsAll([
      ["ec2", "describe-vpcs", "--vpc-ids", vpc, lenient, "--query", "Vpcs[].VpcId"],
      ["ec2", "describe-subnets", "--subnet-ids", subnet],
      ["ec2", "describe-security-groups", "--group-ids", group],
      ["ec2", "describe-internet-gateways", "--internet-gateway-ids", gateway],
      ["ec2", "describe-route-tables", "--route-table-ids", table],
      ["ec2", "describe-addresses", "--allocation-ids", allocation],
    ])
    XCTAssertEqual(
      Set(try described[0].json() as? [String] ?? []), [vpc, lenient],
      "the window is over; moto knew the VPC made with the behaviour off at once")
    layer.assertError(
      described[1], "InvalidSubnetID.NotFound", "The subnet ID '\(subnet)' does not exist")
    layer.assertError(
      described[2], "InvalidGroup.NotFound", "The security group '\(group)' does not exist")
    layer.assertError(
      described[3], "InvalidInternetGatewayID.NotFound",
      "The internetGateway ID '\(gateway)' does not exist")
    layer.assertError(
      described[4], "InvalidRouteTableID.NotFound", "The routeTable ID '\(table)' does not exist")
    layer.assertError(
      described[5], "InvalidAllocationID.NotFound",
      "The allocation ID '\(allocation)' does not exist")
    // `settle` (the kill chains, between a kill and the next run): seen at once, clock unmoved.
    try layer.settleEC2()
    let settled = try layer.aws(["ec2", "describe-subnets", "--subnet-ids", subnet])
    XCTAssertEqual(settled.status, 0, settled.stderr)
  }

  // MARK: 2. Readiness

  func testNATGatewayIsPendingBeforeAvailable() throws {
    try layer.configure([])
    let vpc = try layer.ec2("CreateVpc", ["CidrBlock": "10.22.0.0/16"], "vpcId")
    let subnet = try layer.ec2(
      "CreateSubnet", ["VpcId": vpc, "CidrBlock": "10.22.1.0/24"], "subnetId")
    let addresses = try (0..<2).map { _ in
      try layer.ec2("AllocateAddress", ["Domain": "vpc"], "allocationId")
    }
    let lenient = try layer.ec2(
      "CreateNatGateway", ["SubnetId": subnet, "AllocationId": addresses[0]], "natGatewayId")

    try layer.configure(["nat-pending"])
    let created = try layer.aws([
      "ec2", "create-nat-gateway", "--subnet-id", subnet, "--allocation-id", addresses[1],
    ])
    XCTAssertEqual(try created.string("NatGateway.State"), "pending")
    let nat = try created.string("NatGateway.NatGatewayId")
    let state = [
      "ec2", "describe-nat-gateways", "--nat-gateway-ids", nat, "--query", "NatGateways[0].State",
    ]
    let early = try layer.awsAll([
      state,
      [
        "ec2", "describe-nat-gateways", "--filter", "Name=state,Values=available",
        "--query", "NatGateways[].NatGatewayId",
      ],
    ])
    XCTAssertEqual(try early[0].json() as? String, "pending")
    XCTAssertEqual(
      try early[1].json() as? [String], [lenient],
      "a state filter sees the state AWS reports; moto made the other one available at once")
    try layer.advance(1.2)
    XCTAssertEqual(try layer.aws(state).json() as? String, "available")
  }

  func testDBInstanceIsCreatingThenBackingUpWithoutEndpoint() throws {
    let common = [
      "DBInstanceClass": "db.t3.micro", "Engine": "mysql", "MasterUsername": "admin",
      "MasterUserPassword": "strict-password", "AllocatedStorage": "20",
    ]
    try layer.configure([])
    _ = try layer.query(
      "rds", "CreateDBInstance", "2014-10-31",
      common.merging(["DBInstanceIdentifier": "strict-lenient"]) { $1 })
    try layer.configure(["rds-creating"])
    let created = try layer.aws([
      "rds", "create-db-instance", "--db-instance-identifier", "strict-db", "--db-instance-class",
      "db.t3.micro", "--engine", "mysql", "--master-username", "admin",
      "--master-user-password", "strict-password", "--allocated-storage", "20",
      "--query", "DBInstance.[DBInstanceStatus, Endpoint.Address]",
    ])
    XCTAssertEqual(try created.strings(), ["creating", nil])
    let describe = [
      "rds", "describe-db-instances", "--output", "text", "--query",
      "DBInstances[].[DBInstanceIdentifier, DBInstanceStatus, to_string(Endpoint.Address != null)]",
    ]
    try layer.advance(3)
    XCTAssertEqual(
      try layer.aws(describe).lines,
      ["strict-lenient\tavailable\ttrue", "strict-db\tbacking-up\tfalse"],
      "moto: available at once, with its endpoint")
    try layer.advance(3)
    XCTAssertEqual(
      try layer.aws(describe).lines,
      ["strict-lenient\tavailable\ttrue", "strict-db\tavailable\ttrue"])
  }

  func testLoadBalancerIsProvisioningBeforeActive() throws {
    try layer.configure([])
    let vpc = try layer.ec2("CreateVpc", ["CidrBlock": "10.23.0.0/16"], "vpcId")
    let subnets = try ["a", "c"].enumerated().map { index, zone in
      try layer.ec2(
        "CreateSubnet",
        [
          "VpcId": vpc, "CidrBlock": "10.23.\(index + 1).0/24",
          "AvailabilityZone": "ap-northeast-2\(zone)",
        ],
        "subnetId")
    }
    _ = try layer.query(
      "elasticloadbalancing", "CreateLoadBalancer", "2015-12-01",
      ["Name": "strict-lenient", "Subnets.member.1": subnets[0], "Subnets.member.2": subnets[1]])
    try layer.configure(["alb-provisioning"])
    let created = try layer.aws(
      ["elbv2", "create-load-balancer", "--name", "strict-alb", "--subnets"] + subnets
        + ["--query", "LoadBalancers[0].State.Code"])
    XCTAssertEqual(try created.json() as? String, "provisioning")
    let states = [
      "elbv2", "describe-load-balancers", "--query",
      "LoadBalancers[].[LoadBalancerName, State.Code]",
    ]
    XCTAssertEqual(
      try layer.aws(states).json() as? [[String]],
      [["strict-lenient", "active"], ["strict-alb", "provisioning"]], "moto: active at once")
    try layer.advance(1.8)
    XCTAssertEqual(
      try layer.aws(states).json() as? [[String]],
      [["strict-lenient", "active"], ["strict-alb", "active"]])
  }

  /// An ECS cluster and a task definition of one container, straight to the emulator.
  func ecsCluster(_ name: String, family: String) throws {
    let ecs = "AmazonEC2ContainerServiceV20141113."
    try layer.json("ecs", ecs + "CreateCluster", ["clusterName": name])
    try layer.json(
      "ecs", ecs + "RegisterTaskDefinition",
      [
        "family": family,
        "containerDefinitions": [["name": "app", "image": "x", "memory": 512]],
      ])
  }

  /// A new ECS service runs no task at once: its tasks are placed, pull their image and start
  /// while its deployment is IN_PROGRESS (moto reports them running at once).
  func testNewServiceRunsNoTaskUntilItsTasksHaveStarted() throws {
    try layer.configure([])
    try ecsCluster("strict-starting", family: "strict-starting")
    let counts = "[runningCount, pendingCount, deployments[0].rolloutState]"
    func create(_ name: String) throws -> [Any] {
      let created = try layer.aws([
        "ecs", "create-service", "--cluster", "strict-starting", "--service-name", name,
        "--task-definition", "strict-starting", "--desired-count", "2", "--query",
        "service.\(counts)",
      ])
      return try XCTUnwrap(try created.json() as? [Any], created.stdout + created.stderr)
    }
    func described() throws -> [[Any]] {
      let answer = try layer.aws([
        "ecs", "describe-services", "--cluster", "strict-starting", "--services", "lenient",
        "starting", "--query", "services[].\(counts)",
      ])
      return try XCTUnwrap(try answer.json() as? [[Any]], answer.stdout + answer.stderr)
    }
    let lenient = try create("lenient")
    XCTAssertEqual(lenient.first as? Int, 2, "moto runs the tasks at once: \(lenient)")
    try layer.configure(["ecs-service-starting"])
    let created = try create("starting")
    XCTAssertEqual(created[0] as? Int, 0)
    XCTAssertEqual(created[1] as? Int, 2)
    XCTAssertEqual(created[2] as? String, "IN_PROGRESS")
    var states = try described()
    XCTAssertEqual(states[0][2] as? String, "COMPLETED", "the service made before is left alone")
    XCTAssertEqual(states[1][0] as? Int, 0)
    XCTAssertEqual(states[1][2] as? String, "IN_PROGRESS")
    try layer.advance(1.8)
    states = try described()
    XCTAssertEqual(states[1][0] as? Int, 2, "\(states)")
    XCTAssertEqual(states[1][2] as? String, "COMPLETED")
  }

  /// An UpdateService with another task definition starts a deployment of its own: a new id,
  /// PRIMARY and IN_PROGRESS with no task running, beside the one it replaces (ACTIVE, running),
  /// until its tasks have started; a change of the desired count alone starts none.
  func testANewTaskDefinitionStartsADeploymentOfItsOwn() throws {
    try layer.configure([])
    try ecsCluster("strict-rollout", family: "strict-rollout")
    func register() throws -> String {
      try layer.value(
        [
          "ecs", "register-task-definition", "--family", "strict-rollout",
          "--container-definitions", #"[{"name": "app", "image": "x", "memory": 512}]"#,
        ], "taskDefinition.taskDefinitionArn")
    }
    _ = try layer.aws([
      "ecs", "create-service", "--cluster", "strict-rollout", "--service-name", "app",
      "--task-definition", "strict-rollout:1", "--desired-count", "2",
    ])
    let deployments = "deployments[].[id, status, rolloutState, runningCount, taskDefinition]"
    func described() throws -> [[Any]] {
      let answer = try layer.aws([
        "ecs", "describe-services", "--cluster", "strict-rollout", "--services", "app", "--query",
        "services[0].\(deployments)",
      ])
      return try XCTUnwrap(try answer.json() as? [[Any]], answer.stdout + answer.stderr)
    }
    func update(_ extra: [String]) throws -> [[Any]] {
      let answer = try layer.aws(
        ["ecs", "update-service", "--cluster", "strict-rollout", "--service", "app"] + extra
          + ["--query", "service.\(deployments)"])
      return try XCTUnwrap(try answer.json() as? [[Any]], answer.stdout + answer.stderr)
    }
    let first = try described()
    let original = try XCTUnwrap(first.first?.first as? String)
    let lenient = try update(["--task-definition", try register()])
    XCTAssertEqual(lenient.count, 1, "moto keeps one deployment: \(lenient)")
    XCTAssertEqual(lenient[0][0] as? String, original, "and its id")

    try layer.configure(["ecs-service-starting"])
    let third = try register()
    let started = try update(["--task-definition", third])
    XCTAssertEqual(started.count, 2, "\(started)")
    let id = try XCTUnwrap(started[0][0] as? String)
    XCTAssertNotEqual(id, original)
    XCTAssertEqual(started[0][1] as? String, "PRIMARY")
    XCTAssertEqual(started[0][2] as? String, "IN_PROGRESS")
    XCTAssertEqual(started[0][3] as? Int, 0)
    XCTAssertEqual(started[0][4] as? String, third)
    XCTAssertEqual(started[1][0] as? String, original)
    XCTAssertEqual(started[1][1] as? String, "ACTIVE")
    XCTAssertEqual(started[1][3] as? Int, 2)
    XCTAssertEqual(try described().count, 2)
    try layer.advance(1.8)
    let done = try described()
    XCTAssertEqual(done.count, 1, "\(done)")
    XCTAssertEqual(done[0][0] as? String, id, "the new deployment's id stays")
    XCTAssertEqual(done[0][2] as? String, "COMPLETED")
    XCTAssertEqual(done[0][4] as? String, third)
    // Scaling alone starts no deployment.
    let scaled = try update(["--desired-count", "1"])
    XCTAssertEqual(scaled.count, 1, "\(scaled)")
    XCTAssertEqual(scaled[0][0] as? String, id)
  }

  func testFunctionIsPendingBeforeActive() throws {
    let role = try layer.lambdaRole()
    try layer.configure([])
    try layer.createFunctionDirectly("strict-lenient", role: role)
    try layer.configure(["lambda-pending"])
    let created = try layer.createFunction(
      "strict-fn", role: role, query: "[State, StateReasonCode]")
    XCTAssertEqual(try created.strings(), ["Pending", "Creating"])
    let early = try layer.awsAll([
      ["lambda", "get-function-configuration", "--function-name", "strict-fn", "--query", "State"],
      [
        "lambda", "update-function-configuration", "--function-name", "strict-fn", "--timeout",
        "10",
      ],
      [
        "lambda", "get-function-configuration", "--function-name", "strict-lenient", "--query",
        "State",
      ],
    ])
    XCTAssertEqual(try early[0].json() as? String, "Pending")
    layer.assertError(
      early[1], "ResourceConflictException",
      "The function is currently in the following state: Pending")
    XCTAssertEqual(try early[2].json() as? String, "Active", "moto: active at once")
    try layer.advance(0.6)
    let later = try layer.awsAll([
      ["lambda", "get-function", "--function-name", "strict-fn", "--query", "Configuration.State"],
      [
        "lambda", "update-function-configuration", "--function-name", "strict-fn", "--timeout",
        "10",
      ],
    ])
    XCTAssertEqual(try later[0].json() as? String, "Active")
    XCTAssertEqual(later[1].status, 0, later[1].stderr)
  }

  // MARK: 3. SQS: a name deleted less than 60 s ago

  func testQueueNameDeletedRecentlyCannotBeCreated() throws {
    let create = ["sqs", "create-queue", "--queue-name", "strict-queue", "--query", "QueueUrl"]
    try layer.configure([])
    let url = try layer.sqs("CreateQueue", ["QueueName": "strict-queue"], "QueueUrl")
    try layer.sqs("DeleteQueue", ["QueueUrl": url])
    XCTAssertEqual(try layer.aws(create).json() as? String, url, "moto: the name is free at once")

    try layer.configure(["sqs-deleted-recently"])
    try layer.sqs("DeleteQueue", ["QueueUrl": url])
    layer.assertError(
      try layer.aws(create), "AWS.SimpleQueueService.QueueDeletedRecently",
      "You must wait 60 seconds after deleting a queue before you can create another with the same name."
    )
    try layer.advance(0.6)
    XCTAssertEqual(try layer.aws(create).json() as? String, url)
  }

  // MARK: 4. EC2 client tokens

  func testClientTokenIsRememberedWithItsParameters() throws {
    try layer.configure([])
    let vpc = try layer.ec2("CreateVpc", ["CidrBlock": "10.24.0.0/16"], "vpcId")
    let subnet = try layer.ec2(
      "CreateSubnet", ["VpcId": vpc, "CidrBlock": "10.24.1.0/24"], "subnetId")
    let allocation = try layer.ec2("AllocateAddress", ["Domain": "vpc"], "allocationId")
    let create = [
      "ec2", "create-nat-gateway", "--subnet-id", subnet, "--allocation-id", allocation,
      "--client-token", "strict-token", "--query", "NatGateway.NatGatewayId",
    ]
    let other = create + ["--tag-specifications", "ResourceType=natgateway,Tags=[{Key=k,Value=v}]"]

    try layer.configure(["ec2-client-token"])
    let first = try layer.aws(create).json() as? String
    XCTAssertNotNil(first)
    let again = try layer.awsAll([create, other])
    XCTAssertEqual(try again[0].json() as? String, first, "the original answer again")
    layer.assertError(
      again[1], "IdempotentParameterMismatch",
      "The request uses the same client token as a previous, but non-identical request.")

    try layer.configure([])
    let lenient = try layer.awsAll([create, other])
    XCTAssertFalse(
      lenient[0].status == 0 && lenient[0].stdout.contains(first ?? "-"),
      "moto forgets client tokens: \(lenient[0].stdout)\(lenient[0].stderr)")
    XCTAssertFalse(lenient[1].stderr.contains("IdempotentParameterMismatch"))
  }

  // MARK: 5. Secrets Manager: a name scheduled for deletion

  func testSecretScheduledForDeletionBlocksItsName() throws {
    try layer.configure([])
    try layer.json(
      "secretsmanager", "secretsmanager.CreateSecret",
      ["Name": "strict/secret", "SecretString": "a"])
    try layer.json(
      "secretsmanager", "secretsmanager.DeleteSecret",
      ["SecretId": "strict/secret", "RecoveryWindowInDays": 7])
    let create = [
      "secretsmanager", "create-secret", "--name", "strict/secret", "--secret-string", "b",
    ]
    // moto refuses the name too, but as if the secret were live.
    layer.assertError(try layer.aws(create), "ResourceExistsException")
    try layer.configure(["secret-scheduled-deletion"])
    layer.assertError(
      try layer.aws(create), "InvalidRequestException",
      "You can't create this secret because a secret with this name is already scheduled for deletion."
    )
  }

  // MARK: 6. Lambda keeps its VPC network interfaces after DeleteFunction

  func testLambdaInterfacesOutliveTheFunctionForAWhile() throws {
    let role = try layer.lambdaRole()
    try layer.configure([])
    let vpc = try layer.ec2("CreateVpc", ["CidrBlock": "10.25.0.0/16"], "vpcId")
    let subnet = try layer.ec2(
      "CreateSubnet", ["VpcId": vpc, "CidrBlock": "10.25.1.0/24"], "subnetId")
    let lenientSubnet = try layer.ec2(
      "CreateSubnet", ["VpcId": vpc, "CidrBlock": "10.25.2.0/24"], "subnetId")
    // (moto names a task's interface only in a VPC with DNS hostnames, as the network step makes.)
    _ = try layer.ec2(
      "ModifyVpcAttribute", ["VpcId": vpc, "EnableDnsHostnames.Value": "true"], "requestId")
    let group = try layer.ec2(
      "CreateSecurityGroup", ["GroupName": "strict-fn", "GroupDescription": "d", "VpcId": vpc],
      "groupId")
    let lenientGroup = try layer.ec2(
      "CreateSecurityGroup",
      ["GroupName": "strict-lenient", "GroupDescription": "d", "VpcId": vpc], "groupId")
    // With the behaviour off: a function in the other subnet and group, deleted at once.
    try layer.createFunctionDirectly(
      "strict-lenient", role: role, subnet: lenientSubnet, group: lenientGroup)
    try layer.deleteFunctionDirectly("strict-lenient")

    try layer.configure(["lambda-eni"])
    try layer.createFunctionDirectly("strict-fn", role: role, subnet: subnet, group: group)
    let interfaces = [
      "ec2", "describe-network-interfaces", "--filters",
      "Name=description,Values=AWS Lambda VPC ENI-*",
      "--query",
      "NetworkInterfaces[].[NetworkInterfaceId, Status, SubnetId, Groups[0].GroupId, Description]",
    ]
    let listed = try XCTUnwrap(try layer.aws(interfaces).json() as? [[String]])
    XCTAssertEqual(
      listed.count, 1,
      "one interface for the function's subnet, none for the other (moto makes none)")
    XCTAssertEqual(
      Array(listed.first?.dropFirst() ?? []),
      ["in-use", subnet, group, "AWS Lambda VPC ENI-strict-fn"])
    let interface = try XCTUnwrap(listed.first?.first)

    try layer.deleteFunctionDirectly("strict-fn")
    let blocked = try layer.awsAll([
      ["ec2", "delete-subnet", "--subnet-id", subnet],
      ["ec2", "delete-security-group", "--group-id", group],
      ["ec2", "delete-network-interface", "--network-interface-id", interface],
      [
        "ec2", "describe-network-interfaces", "--filters", "Name=group-id,Values=\(group)",
        "--query", "NetworkInterfaces[].NetworkInterfaceId",
      ],
      ["ec2", "delete-subnet", "--subnet-id", lenientSubnet],
      ["ec2", "delete-security-group", "--group-id", lenientGroup],
    ])
    layer.assertError(
      blocked[0], "DependencyViolation",
      "The subnet '\(subnet)' has dependencies and cannot be deleted.")
    layer.assertError(blocked[1], "DependencyViolation", "resource \(group) has a dependent object")
    layer.assertError(blocked[2], "InvalidParameterValue", "is currently in use")
    XCTAssertEqual(
      try blocked[3].json() as? [String], [interface], "a tool can wait for them to go")
    XCTAssertEqual(
      blocked[4...].map(\.status), [0, 0],
      "moto: the subnet and group of a deleted function go at once: \(blocked[4...].map(\.stderr))")

    try layer.advance(3)
    let released = try layer.awsAll([
      interfaces,
      ["ec2", "delete-subnet", "--subnet-id", subnet],
      ["ec2", "delete-security-group", "--group-id", group],
    ])
    XCTAssertEqual(try released[0].json() as? [[String]], [], "gone after the scaled delay")
    XCTAssertEqual(released.dropFirst().map(\.status), [0, 0], released.map(\.stderr).joined())
  }

  // MARK: 7. Fargate task sizes

  func testFargateRefusesSizesItDoesNotOffer() throws {
    func register(cpu: String, memory: String) -> [String] {
      [
        "ecs", "register-task-definition", "--family", "strict", "--requires-compatibilities",
        "FARGATE",
        "--network-mode", "awsvpc", "--cpu", cpu, "--memory", memory, "--container-definitions",
        #"[{"name": "app", "image": "app:1"}]"#, "--query", "taskDefinition.[cpu, memory]",
      ]
    }
    try layer.configure([])
    XCTAssertEqual(
      try layer.aws(register(cpu: "256", memory: "4096")).strings(), ["256", "4096"],
      "moto takes any pair")
    try layer.configure(["fargate-sizes"])
    let runs = try layer.awsAll([
      register(cpu: "256", memory: "4096"), register(cpu: "512", memory: "1536"),
      register(cpu: "1 vCPU", memory: "2 GB"), register(cpu: "4096", memory: "30720"),
    ])
    layer.assertError(
      runs[0], "ClientException", "No Fargate configuration exists for given values.")
    layer.assertError(
      runs[1], "ClientException", "No Fargate configuration exists for given values.")
    XCTAssertEqual(runs[2].status, 0, runs[2].stderr)
    XCTAssertEqual(runs[3].status, 0, runs[3].stderr)
  }

  /// A FARGATE task definition whose container gives no memory of its own runs (AWS takes the
  /// task's): moto fails RunTask with HTTP 500; the layer gives moto a reservation and hides it.
  func testFargateTaskRunsWithoutContainerMemory() throws {
    try layer.configure([])
    let vpc = try layer.ec2("CreateVpc", ["CidrBlock": "10.28.0.0/16"], "vpcId")
    let subnet = try layer.ec2(
      "CreateSubnet", ["VpcId": vpc, "CidrBlock": "10.28.1.0/24"], "subnetId")
    // (moto names a task's interface only in a VPC with DNS hostnames, as the network step makes.)
    _ = try layer.ec2(
      "ModifyVpcAttribute", ["VpcId": vpc, "EnableDnsHostnames.Value": "true"], "requestId")
    let group = try layer.ec2(
      "CreateSecurityGroup",
      ["GroupName": "strict-memory", "GroupDescription": "strict memory", "VpcId": vpc], "groupId")
    let cluster = try layer.value(
      ["ecs", "create-cluster", "--cluster-name", "strict-memory"], "cluster.clusterArn")
    func register() throws -> String {
      try layer.value(
        [
          "ecs", "register-task-definition", "--family", "strict-memory",
          "--requires-compatibilities", "FARGATE", "--network-mode", "awsvpc", "--cpu", "256",
          "--memory", "512", "--container-definitions", #"[{"name": "app", "image": "app:1"}]"#,
        ], "taskDefinition.taskDefinitionArn")
    }
    let run = { (definition: String) in
      [
        "ecs", "run-task", "--cluster", cluster, "--task-definition", definition,
        "--launch-type", "FARGATE", "--network-configuration",
        #"{"awsvpcConfiguration":{"subnets":["\#(subnet)"],"securityGroups":["\#(group)"]}}"#,
        "--query", "tasks[0].taskArn", "--output", "text",
      ]
    }
    let lenient = try layer.aws(run(try register()))
    XCTAssertNotEqual(lenient.status, 0, "moto runs it after all: drop the behaviour")
    XCTAssertTrue(lenient.stderr.contains("500"), lenient.stderr)
    try layer.configure(["ecs-container-memory"])
    let definition = try register()
    let started = try layer.aws(run(definition))
    XCTAssertEqual(started.status, 0, started.stderr)
    XCTAssertTrue(started.stdout.contains(":task/"), started.stdout)
    let described = try layer.aws([
      "ecs", "describe-task-definition", "--task-definition", definition, "--query",
      "taskDefinition.containerDefinitions[0]",
    ])
    let container = try XCTUnwrap(try described.json() as? [String: Any], described.stdout)
    XCTAssertEqual(container["name"] as? String, "app")
    XCTAssertNil(container["memoryReservation"], "the layer's reservation shows")
    XCTAssertNil(container["memory"])
  }

  // MARK: 8. DescribeVpcs filter names

  func testDescribeVpcsKnowsOnlyEC2sFilterNames() throws {
    let vpc = try layer.ec2("CreateVpc", ["CidrBlock": "10.26.0.0/16"], "vpcId")
    let query = ["--query", "Vpcs[].VpcId"]
    let unknown =
      ["ec2", "describe-vpcs", "--filters", "Name=cidr-block,Values=10.26.0.0/16"] + query
    try layer.configure([])
    XCTAssertEqual(
      try layer.aws(unknown).json() as? [String], [vpc], "moto takes the name EC2 refuses")
    try layer.configure(["vpc-filters"])
    let runs = try layer.awsAll([
      unknown,
      ["ec2", "describe-vpcs", "--filters", "Name=cidr,Values=10.26.0.0/16"] + query,
      [
        "ec2", "describe-vpcs", "--filters",
        "Name=cidr-block-association.cidr-block,Values=10.26.0.0/16",
      ] + query,
    ])
    layer.assertError(runs[0], "InvalidParameterValue", "The filter 'cidr-block' is invalid")
    XCTAssertEqual(try runs[1].json() as? [String], [vpc])
    XCTAssertEqual(try runs[2].json() as? [String], [vpc])
  }

  // MARK: 9. Pagination

  /// aws CLI v1 applies `--query` to each page with `--output text` (to the whole result with
  /// JSON output): an account-wide list that does not fit one page prints one line per page.
  func testListsComeInPagesAndTextOutputQueriesEachPage() throws {
    for name in ["a", "b", "c"] {
      try layer.json("logs", "Logs_20140328.CreateLogGroup", ["logGroupName": "/strict/\(name)"])
    }
    for cidr in ["10.27.0.0/16", "10.28.0.0/16"] {
      _ = try layer.ec2("CreateVpc", ["CidrBlock": cidr], "vpcId")
    }
    let first = [
      "logs", "describe-log-groups", "--log-group-name-prefix", "/strict/", "--query",
      "logGroups[0].logGroupName",
    ]
    let count = [
      "logs", "describe-log-groups", "--log-group-name-prefix", "/strict/", "--query",
      "length(logGroups)",
    ]
    let vpcs = ["ec2", "describe-vpcs", "--query", "length(Vpcs)", "--output", "text"]
    try layer.configure([])
    let lenient = try layer.awsAll([first + ["--output", "text"], count + ["--output", "text"]])
    XCTAssertEqual(lenient.map(\.lines), [["/strict/a"], ["3"]], "moto: one page")

    try layer.configure(["pagination"])
    let runs = try layer.awsAll([
      first + ["--output", "text"], first + ["--output", "json"], count + ["--output", "text"],
      count + ["--output", "json"],
      // EC2 returns every item when MaxResults is not given, and pages when it is.
      vpcs, vpcs + ["--page-size", "5"],
    ])
    XCTAssertEqual(runs[0].lines, ["/strict/a", "/strict/c"], "one line per page of 2")
    XCTAssertEqual(try runs[1].json() as? String, "/strict/a")
    XCTAssertEqual(runs[2].lines, ["2", "1"])
    XCTAssertEqual(try runs[3].json() as? Int, 3)
    XCTAssertEqual(runs[4].lines, ["3"], "the default VPC and 2")
    XCTAssertEqual(runs[5].lines, ["2", "1"])
  }

  // MARK: 10. Cloud Map: namespace operations, in-use deletes, ECS registering its tasks

  static let cloudMap = "Route53AutoNaming_v20170314."

  /// A namespace's create answers an operation id; the operation is SUBMITTED, then PENDING, then
  /// SUCCESS with the namespace as its target (moto answers SUCCESS at once).
  func testNamespaceOperationIsSubmittedThenPendingBeforeSuccess() throws {
    try layer.configure([])
    let lenientVPC = try layer.ec2("CreateVpc", ["CidrBlock": "10.31.0.0/16"], "vpcId")
    let vpc = try layer.ec2("CreateVpc", ["CidrBlock": "10.32.0.0/16"], "vpcId")
    let lenient = try layer.value(
      [
        "servicediscovery", "create-private-dns-namespace", "--name", "lenient.internal", "--vpc",
        lenientVPC,
      ], "OperationId")
    let status = ["--query", "Operation.Status", "--output", "text"]
    XCTAssertEqual(
      try layer.value(
        ["servicediscovery", "get-operation", "--operation-id", lenient], "Operation.Status"),
      "SUCCESS", "moto, without the layer")

    try layer.configure(["cloudmap-operations"])
    let operation = try layer.value(
      [
        "servicediscovery", "create-private-dns-namespace", "--name", "strict.internal", "--vpc",
        vpc,
      ],
      "OperationId")
    let get = ["servicediscovery", "get-operation", "--operation-id", operation] + status
    XCTAssertEqual(
      try layer.aws(get).stdout.trimmingCharacters(in: .whitespacesAndNewlines), "SUBMITTED")
    try layer.advance(0.35)  // past half the delay
    XCTAssertEqual(
      try layer.aws(get).stdout.trimmingCharacters(in: .whitespacesAndNewlines), "PENDING")
    try layer.advance(0.25)  // 0.6 s: done
    let done = try layer.aws(
      [
        "servicediscovery", "get-operation", "--operation-id", operation, "--query",
        "Operation.[Status,Targets.NAMESPACE]", "--output", "text",
      ]).stdout
    XCTAssertTrue(done.hasPrefix("SUCCESS\tns-"), done)
  }

  /// ECS registers a service's tasks in its Cloud Map service and deregisters them when the
  /// service is scaled to 0; Cloud Map refuses to delete a service with instances or a namespace
  /// with services (ResourceInUse).
  func testECSRegistersItsTasksAndCloudMapRefusesToDeleteWhatIsInUse() throws {
    try layer.configure(["ecs-registers-tasks", "cloudmap-in-use"])
    let vpc = try layer.ec2("CreateVpc", ["CidrBlock": "10.33.0.0/16"], "vpcId")
    let created = try layer.json(
      "servicediscovery", Self.cloudMap + "CreatePrivateDnsNamespace",
      ["Name": "inuse.internal", "Vpc": vpc])
    let operation = try XCTUnwrap(created["OperationId"] as? String)
    let answer = try layer.json(
      "servicediscovery", Self.cloudMap + "GetOperation", ["OperationId": operation])
    let namespace = try XCTUnwrap(
      ((answer["Operation"] as? [String: Any])?["Targets"] as? [String: Any])?["NAMESPACE"]
        as? String)
    let service = try XCTUnwrap(
      try layer.json(
        "servicediscovery", Self.cloudMap + "CreateService",
        [
          "Name": "unisync-user-service", "NamespaceId": namespace,
          "DnsConfig": ["RoutingPolicy": "MULTIVALUE", "DnsRecords": [["Type": "A", "TTL": 10]]],
        ])["Service"] as? [String: Any])
    let serviceID = try XCTUnwrap(service["Id"] as? String)
    let registry = try XCTUnwrap(service["Arn"] as? String)
    let ecs = "AmazonEC2ContainerServiceV20141113."
    try ecsCluster("strict-cloudmap", family: "strict-user")
    try layer.json(
      "ecs", ecs + "CreateService",
      [
        "cluster": "strict-cloudmap", "serviceName": "user-service",
        "taskDefinition": "strict-user", "desiredCount": 2,
        "serviceRegistries": [["registryArn": registry]],
      ])
    let instances = [
      "servicediscovery", "list-instances", "--service-id", serviceID, "--query",
      "Instances[].Attributes.AWS_INSTANCE_IPV4", "--output", "text",
    ]
    let addresses = try layer.aws(instances).stdout.split(whereSeparator: \.isWhitespace)
    XCTAssertEqual(addresses.count, 2, "one per task: \(addresses)")
    layer.assertError(
      try layer.aws(["servicediscovery", "delete-service", "--id", serviceID]), "ResourceInUse")
    layer.assertError(
      try layer.aws(["servicediscovery", "delete-namespace", "--id", namespace]), "ResourceInUse")

    try layer.json(
      "ecs", ecs + "UpdateService",
      ["cluster": "strict-cloudmap", "service": "user-service", "desiredCount": 0])
    XCTAssertEqual(
      try layer.aws(instances).stdout.trimmingCharacters(in: .whitespacesAndNewlines), "",
      "the stopped tasks are deregistered")
    XCTAssertEqual(
      try layer.aws(["servicediscovery", "delete-service", "--id", serviceID]).status, 0)
    XCTAssertEqual(
      try layer.aws(["servicediscovery", "delete-namespace", "--id", namespace]).status, 0)
  }
}

// MARK: - The layer and the aws CLI, for these tests

/// The strict layer in front of the emulator this test process uses.
struct StrictLayer {
  let url: String

  static let region = "ap-northeast-2"

  static let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  /// RUNBOOK_TEST_STRICT_ENDPOINTS[i] stands in front of RUNBOOK_TEST_ENDPOINTS[i] (the same URL
  /// when RUNBOOK_AWS_STRICT is on): the one in front of the emulator this process claimed.
  static func forThisProcess() throws -> StrictLayer {
    let environment = ProcessInfo.processInfo.environment
    let claimed = try Emulator.endpoint()
    let words = { (name: String) in (environment[name] ?? "").split(separator: " ").map(String.init)
    }
    let plain = words("RUNBOOK_TEST_ENDPOINTS")
    let strict = words("RUNBOOK_TEST_STRICT_ENDPOINTS")
    if let index = plain.firstIndex(of: claimed), index < strict.count {
      return StrictLayer(url: strict[index])
    }
    if plain.count <= 1, let single = environment["RUNBOOK_TEST_STRICT_ENDPOINT"], !single.isEmpty {
      return StrictLayer(url: single)
    }
    throw StrictLayerError(
      "no strict layer for \(claimed): run the tests through 'make test', which starts one beside every emulator (RUNBOOK_TEST_STRICT_ENDPOINTS)"
    )
  }

  // MARK: control

  /// Resets moto and the layer (what it remembers, its configuration, its clock).
  func reset() throws {
    let (status, body) = try http("POST", "/moto-api/reset")
    guard status == 200 else { throw StrictLayerError("reset answered \(status): \(body)") }
  }

  /// Switches exactly these behaviours on, the clock frozen.
  @discardableResult
  func configure(_ behaviours: [String], frozen: Bool = true) throws -> [String: Any] {
    let (status, body) = try http(
      "POST", "/strict-api/config", json: ["behaviours": behaviours, "frozen": frozen])
    guard status == 200 else { throw StrictLayerError("configure answered \(status): \(body)") }
    return try config()
  }

  func config() throws -> [String: Any] {
    let (status, body) = try http("GET", "/strict-api/config")
    guard status == 200,
      let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
    else { throw StrictLayerError("config answered \(status): \(body)") }
    return object
  }

  /// Moves the layer's clock on.
  func advance(_ seconds: Double) throws {
    let (status, body) = try http("POST", "/strict-api/clock", json: ["advance": seconds])
    guard status == 200 else { throw StrictLayerError("advance answered \(status): \(body)") }
  }

  /// EC2 has converged: every id made so far is seen by every call (the clock stays as it is).
  func settleEC2() throws {
    let (status, body) = try http("POST", "/strict-api/clock", json: ["settle": "ec2-consistency"])
    guard status == 200 else { throw StrictLayerError("settle answered \(status): \(body)") }
  }

  // MARK: setup calls of the tests' own (straight HTTP: setup is not what is tested, and an aws
  // CLI call costs a second of CPU). They go through the layer, which treats them as any call.

  /// An EC2 call; returns the first `<element>` of the answer.
  func ec2(_ action: String, _ parameters: [String: String], _ element: String) throws -> String {
    let (status, body) = try http(
      "POST", "/",
      form: Self.form(["Action": action, "Version": "2016-11-15"].merging(parameters) { $1 }),
      service: "ec2")
    guard status == 200, let value = Self.element(element, in: body) else {
      throw StrictLayerError("\(action) answered \(status): \(body)")
    }
    return value
  }

  /// A query-protocol call (rds, elasticloadbalancing, iam); returns the answer.
  @discardableResult
  func query(_ service: String, _ action: String, _ version: String, _ parameters: [String: String])
    throws
    -> String
  {
    let (status, body) = try http(
      "POST", "/",
      form: Self.form(["Action": action, "Version": version].merging(parameters) { $1 }),
      service: service)
    guard status == 200 else { throw StrictLayerError("\(action) answered \(status): \(body)") }
    return body
  }

  /// CreateFunction (Lambda's REST API) of an empty zip archive, without the aws CLI.
  func createFunctionDirectly(
    _ name: String, role: String, subnet: String? = nil, group: String? = nil
  )
    throws
  {
    var payload: [String: Any] = [
      "FunctionName": name, "Runtime": "python3.11", "Handler": "handler.handle", "Role": role,
      "Code": ["ZipFile": Data(Self.emptyZip).base64EncodedString()],
    ]
    if let subnet, let group {
      payload["VpcConfig"] = ["SubnetIds": [subnet], "SecurityGroupIds": [group]]
    }
    let (status, body) = try http("POST", "/2015-03-31/functions", json: payload, service: "lambda")
    guard status == 201 else {
      throw StrictLayerError("CreateFunction answered \(status): \(body)")
    }
  }

  func deleteFunctionDirectly(_ name: String) throws {
    let (status, body) = try http("DELETE", "/2015-03-31/functions/\(name)", service: "lambda")
    guard status == 204 || status == 200 else {
      throw StrictLayerError("DeleteFunction answered \(status): \(body)")
    }
  }

  /// An empty zip archive: moto neither runs nor unpacks a function's code.
  static let emptyZip: [UInt8] = [0x50, 0x4b, 0x05, 0x06] + [UInt8](repeating: 0, count: 18)

  /// An SQS call (JSON protocol); returns `key` of the answer when asked.
  @discardableResult
  func sqs(_ action: String, _ payload: [String: Any], _ key: String? = nil) throws -> String {
    let answer = try json("sqs", "AmazonSQS.\(action)", payload, version: "1.0")
    guard let key else { return "" }
    guard let value = answer[key] as? String else {
      throw StrictLayerError("\(action): no \(key) in \(answer)")
    }
    return value
  }

  /// A JSON-protocol call (X-Amz-Target).
  @discardableResult
  func json(_ service: String, _ target: String, _ payload: [String: Any], version: String = "1.1")
    throws
    -> [String: Any]
  {
    let (status, body) = try http(
      "POST", "/", json: payload, service: service,
      headers: ["X-Amz-Target": target, "Content-Type": "application/x-amz-json-\(version)"])
    guard status == 200 else { throw StrictLayerError("\(target) answered \(status): \(body)") }
    return (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
  }

  static func form(_ parameters: [String: String]) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return parameters.sorted { $0.key < $1.key }.map {
      "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.value)"
    }.joined(separator: "&")
  }

  static func element(_ name: String, in xml: String) -> String? {
    guard let open = xml.range(of: "<\(name)>"),
      let close = xml.range(of: "</\(name)>", range: open.upperBound..<xml.endIndex)
    else { return nil }
    return String(xml[open.upperBound..<close.lowerBound])
  }

  /// One HTTP request to the layer, signed (in name only: moto reads the region and service from
  /// the credential scope) when it is an AWS call.
  func http(
    _ method: String, _ path: String, json: [String: Any]? = nil, form: String? = nil,
    service: String? = nil, headers: [String: String] = [:]
  ) throws -> (Int, String) {
    var request = URLRequest(url: URL(string: url + path)!)
    request.httpMethod = method
    request.timeoutInterval = 60
    if let json {
      request.httpBody = try JSONSerialization.data(withJSONObject: json)
      request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    }
    if let form {
      request.httpBody = Data(form.utf8)
      request.setValue(
        "application/x-www-form-urlencoded; charset=utf-8", forHTTPHeaderField: "Content-Type")
    }
    if let service {
      request.setValue(
        "AWS4-HMAC-SHA256 Credential=testing/20240101/\(Self.region)/\(service)/aws4_request, SignedHeaders=host, Signature=x",
        forHTTPHeaderField: "Authorization")
    }
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    final class Box: @unchecked Sendable {
      var status = 0
      var body = ""
      var error: Error?
    }
    let box = Box()
    let done = DispatchSemaphore(value: 0)
    URLSession.shared.dataTask(with: request) { data, response, error in
      box.error = error
      box.status = (response as? HTTPURLResponse)?.statusCode ?? 0
      box.body = String(decoding: data ?? Data(), as: UTF8.self)
      done.signal()
    }.resume()
    done.wait()
    if let error = box.error { throw error }
    return (box.status, box.body)
  }

  // MARK: aws CLI

  /// Runs `aws ARGS` (the test shim, then the real aws CLI) against the layer and waits for it.
  func aws(_ arguments: [String]) throws -> StrictAWSRun {
    try awsAll([arguments])[0]
  }

  /// Runs these aws calls at the same time and waits for them all.
  func awsAll(_ calls: [[String]]) throws -> [StrictAWSRun] {
    let started = try calls.map { try StrictAWSProcess(arguments: $0, endpoint: url) }
    return try started.map { try $0.wait() }
  }

  /// `aws ARGS --query QUERY --output text`, which must succeed: its one value.
  func value(_ arguments: [String], _ query: String) throws -> String {
    let run = try aws(arguments)
    return try run.string(query)
  }

  func assertError(
    _ run: StrictAWSRun, _ code: String, _ message: String? = nil, file: StaticString = #filePath,
    line: UInt = #line
  ) {
    XCTAssertEqual(
      run.status, 255, "\(run.arguments): \(run.stdout)\(run.stderr)", file: file, line: line)
    XCTAssertTrue(
      run.stderr.contains("An error occurred (\(code))"), "\(run.arguments): \(run.stderr)",
      file: file,
      line: line)
    if let message {
      XCTAssertTrue(
        run.stderr.contains(message), "\(run.arguments): \(run.stderr)", file: file, line: line)
    }
  }

  // MARK: Lambda

  /// A role Lambda can assume (made through the layer, not by the aws CLI: setup only).
  func lambdaRole() throws -> String {
    let policy =
      #"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#
    let (status, body) = try http(
      "POST", "/",
      form: Self.form([
        "Action": "CreateRole", "Version": "2010-05-08", "RoleName": "strict-lambda",
        "AssumeRolePolicyDocument": policy,
      ]), service: "iam")
    guard status == 200, let arn = Self.element("Arn", in: body) else {
      throw StrictLayerError("CreateRole answered \(status): \(body)")
    }
    return arn
  }

  /// `aws lambda create-function` of an empty zip archive.
  func createFunction(
    _ name: String, role: String, subnet: String? = nil, group: String? = nil, query: String? = nil
  ) throws -> StrictAWSRun {
    let zip = FileManager.default.temporaryDirectory.appendingPathComponent(
      "strict-\(UUID().uuidString).zip")
    try Data(Self.emptyZip).write(to: zip)
    defer { try? FileManager.default.removeItem(at: zip) }
    var arguments = [
      "lambda", "create-function", "--function-name", name, "--runtime", "python3.11", "--handler",
      "handler.handle", "--role", role, "--zip-file", "fileb://\(zip.path)",
    ]
    if let subnet, let group {
      arguments += ["--vpc-config", "SubnetIds=\(subnet),SecurityGroupIds=\(group)"]
    }
    if let query { arguments += ["--query", query] }
    let run = try aws(arguments)
    guard run.status == 0 else { throw StrictLayerError("create-function \(name): \(run.stderr)") }
    return run
  }
}

struct StrictLayerError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

/// What one aws call printed.
struct StrictAWSRun {
  let arguments: [String]
  let status: Int32
  let stdout: String
  let stderr: String

  var lines: [String] {
    stdout.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
  }

  /// A JSON array of strings and nulls.
  func strings() throws -> [String?] {
    guard let array = try json() as? [Any] else {
      throw StrictLayerError("\(arguments): not an array: \(stdout)")
    }
    return array.map { $0 as? String }
  }

  func json() throws -> Any? {
    guard status == 0 else { throw StrictLayerError("\(arguments) failed: \(stderr)") }
    return try JSONSerialization.jsonObject(with: Data(stdout.utf8), options: [.fragmentsAllowed])
  }

  /// A string at a dotted path of the JSON answer ("Vpc.VpcId", "LoadBalancers[0].State.Code").
  func string(_ path: String) throws -> String {
    var value = try json()
    for part in path.split(separator: ".") {
      var name = Substring(part)
      var index: Int?
      if let open = part.firstIndex(of: "["), part.hasSuffix("]") {
        name = part[..<open]
        index = Int(part[part.index(after: open)..<part.index(before: part.endIndex)])
      }
      if !name.isEmpty { value = (value as? [String: Any])?[String(name)] }
      if let index {
        value = (value as? [Any]).flatMap { $0.indices.contains(index) ? $0[index] : nil }
      }
    }
    guard let text = value as? String else {
      throw StrictLayerError("\(arguments): no string at \(path) in \(stdout)")
    }
    return text
  }
}

/// One aws call running: the test shim first on PATH, stdout and stderr in files.
final class StrictAWSProcess {
  let arguments: [String]
  let process = Process()
  let output: URL
  let errors: URL

  init(arguments: [String], endpoint: String) throws {
    self.arguments = arguments
    let shims = StrictLayer.repositoryRoot.appendingPathComponent("Tests/Fixtures/bin")
    let temporary = FileManager.default.temporaryDirectory
    output = temporary.appendingPathComponent("strict-\(UUID().uuidString).out")
    errors = temporary.appendingPathComponent("strict-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: output.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
    var environment = ProcessInfo.processInfo.environment
    environment["PATH"] = shims.path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
    for (name, value) in [
      ("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
      ("AWS_CONFIG_FILE", "/dev/null"), ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
      ("AWS_EC2_METADATA_DISABLED", "true"), ("AWS_PAGER", ""),
    ] {
      environment[name] = value
    }
    for name in [
      "RUNBOOK_AWS_LOG", "RUNBOOK_CRASH_AT", "RUNBOOK_FAULT_RATE", "RUNBOOK_KILL_MATCH",
      "AWS_PROFILE",
    ] {
      environment[name] = nil
    }
    process.executableURL = shims.appendingPathComponent("aws")
    process.arguments =
      ["--endpoint-url", endpoint, "--region", StrictLayer.region, "--output", "json"] + arguments
    process.environment = environment
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = try FileHandle(forWritingTo: output)
    process.standardError = try FileHandle(forWritingTo: errors)
    try process.run()
  }

  func wait() throws -> StrictAWSRun {
    process.waitUntilExit()
    defer {
      try? FileManager.default.removeItem(at: output)
      try? FileManager.default.removeItem(at: errors)
    }
    return StrictAWSRun(
      arguments: arguments, status: process.terminationStatus,
      stdout: try String(contentsOf: output, encoding: .utf8),
      stderr: try String(contentsOf: errors, encoding: .utf8))
  }
}
