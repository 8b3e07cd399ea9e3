import Foundation
import Synchronization
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// The rds step through the Frontend with a scripted `aws` and scripted answers: what an operator
/// at a terminal sees, and what an interrupted wait leaves behind.
final class RDSStepUnitTests: XCTestCase {
  static let instanceARN = "arn:aws:rds:ap-northeast-2:123456789012:db:unisync-mysql"
  static let endpoint = "unisync-mysql.abcdefghij.ap-northeast-2.rds.amazonaws.com"
  static let secretARN =
    "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:rds!db-0123-AbCdEf"

  var stateDirectory = ""

  override func setUp() async throws {
    stateDirectory =
      FileManager.default.temporaryDirectory
      .appendingPathComponent("runbook-rds-unit-\(UUID().uuidString.prefix(8))").path
    // What network and security leave: the rds step's prerequisites.
    var checkpoint = Checkpoint(deployment: "unisync", region: "ap-northeast-2")
    checkpoint.account = "123456789012"
    checkpoint.exports = [
      "VPC_ID": "vpc-0123456789abcdef0", "SUBNET_PRIVATE_2A": "subnet-0aaaaaaaaaaaaaaaa",
      "SUBNET_PRIVATE_2C": "subnet-0cccccccccccccccc", "RDS_SG": "sg-0rrrrrrrrrrrrrrrr",
    ]
    let state = StateDirectory(path: stateDirectory)
    try state.prepare()
    try state.save(checkpoint)
  }

  override func tearDown() {
    try? FileManager.default.removeItem(atPath: stateDirectory)
    try? FileManager.default.removeItem(atPath: stateDirectory + "-manual.json")
  }

  /// runbooks/local.json with guide 3.3 by hand (`rds.databaseSetup.mode` `manual`), written
  /// beside the state directory (template paths made absolute).
  func manualConfiguration() throws -> String {
    let runbooks = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("runbooks")
    var config = try XCTUnwrap(
      try JSONSerialization.jsonObject(
        with: Data(contentsOf: runbooks.appendingPathComponent("local.json"))) as? [String: Any])
    var rds = try XCTUnwrap(config["rds"] as? [String: Any])
    rds["databaseSetup"] = ["mode": "manual"]
    config["rds"] = rds
    config["services"] = (config["services"] as? [[String: Any]] ?? []).map { service in
      var service = service
      service["taskDefinition"] =
        runbooks.appendingPathComponent(service["taskDefinition"] as? String ?? "").path
      return service
    }
    let path = stateDirectory + "-manual.json"
    try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path))
    return path
  }

  /// Runs `runbook ARGS` with this test's configuration and state directory.
  func run(
    _ arguments: [String], aws: FakeRDS, answers: [String] = [], terminal: Bool,
    output: BufferOutput = BufferOutput(), configuration path: String? = nil
  ) async -> (status: Int32, output: String, errors: String) {
    let queue = AnswerQueue(answers)
    let errors = BufferOutput()
    let frontend = Frontend(
      environment: Frontend.Environment(
        output: output, errors: errors, inputIsTerminal: terminal, variables: [:],
        readLine: { queue.next() }),
      runner: aws)
    aws.frontend.withLock { $0 = frontend }
    let configuration =
      path
      ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("runbooks/local.json").path
    let status = await frontend.run(
      ["-c", configuration, "--state-dir", stateDirectory, "--endpoint-url", "http://127.0.0.1:9"]
        + arguments)
    return (status, output.text, errors.text)
  }

  func checkpoint() throws -> Checkpoint {
    try XCTUnwrap(try StateDirectory(path: stateDirectory).load())
  }

  func testManualActionConfirmedAtTheTerminalIsRecordedDone() async throws {
    // [a]ll writes of the step, then "not yet" for the databases: pending.
    let manual = try manualConfiguration()
    let aws = FakeRDS(status: "available")
    let first = await run(
      ["run", "rds"], aws: aws, answers: ["a", "n"], terminal: true, configuration: manual)
    XCTAssertEqual(first.status, 0, first.errors)
    XCTAssertTrue(
      first.output.contains("mysql -h \(Self.endpoint) -P 3306 -u admin -p"), first.output)
    XCTAssertTrue(
      first.output.contains("--secret-id \(Self.secretARN) --query SecretString"), first.output)
    XCTAssertTrue(first.output.contains("done by hand?"), first.output)
    XCTAssertEqual(try checkpoint().record("rds", "create-databases")?.status, .pendingManual)
    XCTAssertEqual(
      aws.operations.filter { $0.hasPrefix("rds create-") },
      ["rds create-db-subnet-group", "rds create-db-instance"])
    // The wait's one poll also answered the endpoint and the secret's ARN.
    XCTAssertEqual(aws.operations.filter { $0 == "rds describe-db-instances" }.count, 1)
    XCTAssertEqual(try checkpoint().exports["RDS_ENDPOINT"], Self.endpoint)
    XCTAssertEqual(try checkpoint().exports["RDS_SECRET_ARN"], Self.secretARN)

    // At the next interactive run only the manual action is left: confirmed, recorded done.
    let again = FakeRDS(status: "available")
    let second = await run(
      ["run", "rds"], aws: again, answers: ["y"], terminal: true, configuration: manual)
    XCTAssertEqual(second.status, 0, second.errors)
    XCTAssertEqual(again.operations, ["sts get-caller-identity"], "only the manual action was left")
    let record = try XCTUnwrap(try checkpoint().record("rds", "create-databases"))
    XCTAssertEqual(record.status, .done)
    XCTAssertEqual(record.outcome, .confirmed)
    // The confirmation is what the ecs step needs before it starts.
    XCTAssertEqual(try checkpoint().exports["DATABASES_CONFIRMED"], "confirmed")
    let status = await run(
      ["status", "--json"], aws: FakeRDS(status: "available"), terminal: false,
      configuration: manual)
    let document = try JSONDecoder().decode(
      StatusReport.Document.self, from: Data(status.output.utf8))
    XCTAssertEqual(document.pendingManual, [])
    XCTAssertEqual(document.steps.first { $0.id == "rds" }?.status, "done")
  }

  func testPlanShowsTheDatabaseInstructionsWithPlaceholdersThenWithTheEndpoint() async throws {
    let manual = try manualConfiguration()
    let before = await run(
      ["plan", "rds"], aws: FakeRDS(status: "available"), terminal: false, configuration: manual)
    XCTAssertEqual(before.status, 0, before.errors)
    XCTAssertTrue(
      before.output.contains("mysql -h <RDS_ENDPOINT> -P 3306 -u admin -p"), before.output)
    XCTAssertTrue(before.output.contains("--secret-id <RDS_SECRET_ARN>"), before.output)
    for database in ["user_db", "course_db", "schedule_db"] {
      XCTAssertTrue(
        before.output.contains(
          "CREATE DATABASE IF NOT EXISTS \(database) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
        ),
        before.output)
    }
    let ran = await run(
      ["run", "rds", "--yes"], aws: FakeRDS(status: "available"), terminal: false,
      configuration: manual)
    XCTAssertEqual(ran.status, 0, ran.errors)
    XCTAssertTrue(ran.output.contains("manual actions pending: rds/create-databases"), ran.output)
    // Unconfirmed, it stops the ecs step before its first call.
    let ecs = await run(
      ["run", "ecs", "--yes"], aws: FakeRDS(status: "available"), terminal: false,
      configuration: manual)
    XCTAssertEqual(ecs.status, ExitStatus.usage, ecs.errors)
    XCTAssertTrue(ecs.errors.contains("DATABASES_CONFIRMED"), ecs.errors)
    let after = await run(
      ["plan", "rds"], aws: FakeRDS(status: "available"), terminal: false, configuration: manual)
    XCTAssertTrue(
      after.output.contains("mysql -h \(Self.endpoint) -P 3306 -u admin -p"), after.output)
    XCTAssertFalse(after.output.contains("<RDS_ENDPOINT>"), after.output)
  }

  /// Ctrl-C while the instance is still being created: the create is recorded, and the next run
  /// goes on waiting instead of creating a second instance.
  func testInterruptedWaitResumesWaitingWithoutCreatingAgain() async throws {
    let aws = FakeRDS(status: "creating", interruptOnPoll: true)
    let first = await run(["run", "rds", "--yes"], aws: aws, terminal: false)
    XCTAssertEqual(first.status, ExitStatus.interrupted, first.errors)
    XCTAssertTrue(
      first.output.contains("waiting rds/instance-available: creating (0s)"), first.output)
    var checkpoint = try checkpoint()
    XCTAssertEqual(checkpoint.record("rds", "instance")?.status, .done)
    XCTAssertEqual(checkpoint.record("rds", "instance")?.value, Self.instanceARN)
    XCTAssertNil(checkpoint.record("rds", "instance-available"))

    let resumed = FakeRDS(status: "available")
    let second = await run(["run", "rds", "--yes"], aws: resumed, terminal: false)
    XCTAssertEqual(second.status, 0, second.errors)
    XCTAssertFalse(
      resumed.operations.contains { $0.hasPrefix("rds create-") }, "\(resumed.operations)")
    XCTAssertEqual(resumed.statusPolls, 1)
    checkpoint = try self.checkpoint()
    XCTAssertEqual(checkpoint.exports["RDS_ENDPOINT"], Self.endpoint)
    XCTAssertEqual(checkpoint.exports["RDS_SECRET_ARN"], Self.secretARN)
  }

  func testCreateInstanceCarriesTheConfiguredSettingsAndNoPassword() throws {
    let deployment = try Deployment.load(
      from: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("runbooks/unisync-ecs.json").path)
    let actions = RDSStep().actions(for: deployment)
    XCTAssertEqual(
      actions.map(\.name),
      [
        "subnet-group", "instance", "instance-available", "endpoint", "master-secret",
      ])
    // Guide 3.3 is the ecs step's one-off task unless the configuration asks for it by hand.
    var manual = deployment
    manual.rds.setup.mode = .manual
    XCTAssertEqual(RDSStep().actions(for: manual).last?.name, "create-databases")
    // No subnet group can be in a VPC the same run created a moment ago: no look for one.
    XCTAssertEqual(
      actions.first { $0.name == "subnet-group" }?.settledBy,
      .nothingToFind(whenCreated: "vpc", inStep: "network"))
    let create = try XCTUnwrap(actions.first { $0.name == "instance" }).command.description
    for part in [
      "--db-instance-identifier unisync-mysql", "--db-instance-class db.t3.micro", "--engine mysql",
      "--engine-version 8.4", "--master-username admin", "--manage-master-user-password",
      "--allocated-storage 20", "--db-subnet-group-name unisync-db-subnet-group",
      "--vpc-security-group-ids <RDS_SG>",
      "--no-publicly-accessible", "--backup-retention-period 7", "--multi-az",
      "--storage-encrypted", "--copy-tags-to-snapshot",
    ] {
      XCTAssertTrue(create.contains(part), "\(part) missing from \(create)")
    }
    XCTAssertFalse(create.contains("--master-user-password"))
    let wait = try XCTUnwrap(actions.first { $0.name == "instance-available" }?.wait)
    XCTAssertEqual(wait.timeoutSeconds, 2_400)
    XCTAssertEqual(wait.intervalSeconds, 15)
    XCTAssertTrue(try XCTUnwrap(RDSStep().actions(for: manual).last).isManual)
    XCTAssertEqual(
      RDSStep().requiredExports(for: deployment).sorted(),
      ["RDS_SG", "SUBNET_PRIVATE_2A", "SUBNET_PRIVATE_2C", "VPC_ID"])
  }
}

/// Answers the aws calls of the rds step as AWS would, and records them.
final class FakeRDS: CommandRunner {
  let status: String
  let interruptOnPoll: Bool
  let frontend = Mutex<Frontend?>(nil)
  private let calls = Mutex<[[String]]>([])

  init(status: String, interruptOnPoll: Bool = false) {
    self.status = status
    self.interruptOnPoll = interruptOnPoll
  }

  /// `service operation` of every call, in order.
  var operations: [String] { calls.withLock { $0.map { $0.prefix(2).joined(separator: " ") } } }
  var statusPolls: Int {
    calls.withLock { $0.filter { $0.contains { $0.contains("DBInstanceStatus") } }.count }
  }

  func run(_ invocation: Invocation) async throws -> ProcessOutput {
    let argv = invocation.arguments
    calls.withLock { $0.append(argv) }
    let query = argv.firstIndex(of: "--query").map { argv[$0 + 1] } ?? ""
    let answer: String? =
      switch argv.prefix(2).joined(separator: " ") {
      case "sts get-caller-identity": "123456789012"
      case "rds describe-db-subnet-groups": ""
      case "rds create-db-subnet-group": "unisync-db-subnet-group"
      case "rds create-db-instance": RDSStepUnitTests.instanceARN
      // As AWS answers: no endpoint until the instance is available.
      case "rds describe-db-instances"
      where query == "DBInstances[0].[DBInstanceStatus,Endpoint.Address,MasterUserSecret.SecretArn]":
        status == "available"
          ? "available\t\(RDSStepUnitTests.endpoint)\t\(RDSStepUnitTests.secretARN)"
          : "\(status)\tNone\t\(RDSStepUnitTests.secretARN)"
      default: nil
      }
    if interruptOnPoll, query.contains("DBInstanceStatus") {
      _ = frontend.withLock { $0 }?.interrupt(reason: "Ctrl-C")
    }
    guard let answer else {
      return ProcessOutput(
        termination: .exited(255), standardOutput: Data(),
        standardError: Data("unexpected call: \(argv)".utf8))
    }
    return ProcessOutput(
      termination: .exited(0), standardOutput: Data((answer + "\n").utf8), standardError: Data())
  }

  func runPipeline(_ producer: Invocation, into consumer: Invocation) async throws -> PipelineOutput
  {
    XCTFail("the rds step pipes nothing")
    let output = try await run(consumer)
    return PipelineOutput(producer: output, consumer: output)
  }
}

/// Lines typed at the prompts, one per question; nil (end of input) when they run out.
final class AnswerQueue: Sendable {
  private let answers: Mutex<[String]>
  init(_ answers: [String]) { self.answers = Mutex(answers) }
  func next() -> String? { answers.withLock { $0.isEmpty ? nil : $0.removeFirst() } }
}
