import Foundation
import RunbookState
import XCTest

/// `runbook drift` over a whole deployment: the DB instance, secrets, repositories, task
/// definitions, services, the function and the queues, each changed by hand with the aws CLI
/// after the tool made it; read with the aws CLI v1 and v2 alike.
final class DriftWholeDeploymentTests: XCTestCase {
  func testEveryKindChangedByHandIsFoundWithEitherAWSCLI() async throws {
    let registry = try DockerEnvironment.registry()
    try Emulator.reset()
    let workspace = try Workspace { config in config["registry"] = registry }
    workspace.environment["DOCKER_CONFIG"] =
      workspace.directory.appendingPathComponent("docker-config").path
    let deployed = try await workspace.run(
      ["run", "--yes", "--jobs", "4"], environment: ECRECSLambdaStepTests.suppliedSecrets)
    XCTAssertEqual(deployed.status, 0, deployed.summary)
    guard deployed.status == 0 else { return }

    let clean = try await workspace.runLogged(["drift", "--json"])
    XCTAssertEqual(clean.run.status, 0, clean.run.summary)
    XCTAssertEqual(try driftFindings(clean.run).count, 0, clean.run.stdout)
    XCTAssertEqual(clean.calls.filter { $0["write"] as? Bool == true }.count, 0)
    let operations = Set(
      clean.calls.map { ($0["argv"] as? [String] ?? []).prefix(2).joined(separator: " ") })
    for read in [
      "rds describe-db-instances", "secretsmanager describe-secret", "ecr describe-repositories",
      "ecs describe-task-definition", "ecs describe-services", "lambda get-function-configuration",
      "sqs get-queue-attributes", "resourcegroupstaggingapi get-resources",
    ] {
      XCTAssertTrue(operations.contains(read), "\(read) not in \(operations.sorted())")
    }
    XCTAssertFalse(operations.contains("secretsmanager get-secret-value"), "\(operations)")

    // Behind the tool's back, one of each kind.
    let exports = try workspace.checkpoint().exports
    let cluster = try XCTUnwrap(exports["CLUSTER_ARN"])
    let deadLetter = try XCTUnwrap(exports["QUEUE_ARN_ASSIGNMENT_EVENTS_QUEUE_DLQ"])
    for change in [
      [
        "rds", "modify-db-instance", "--db-instance-identifier", "unisync-mysql",
        "--db-instance-class", "db.t3.small", "--apply-immediately",
      ],
      [
        "secretsmanager", "delete-secret", "--secret-id", "unisync/encryption-key",
        "--force-delete-without-recovery",
      ],
      ["ecr", "delete-repository", "--repository-name", "unisync/course-service", "--force"],
      [
        "ecs", "update-service", "--cluster", cluster, "--service", "user-service",
        "--desired-count", "5",
      ],
      [
        "ecs", "deregister-task-definition", "--task-definition",
        try XCTUnwrap(exports["TASK_DEF_SCHEDULE_SERVICE"]),
      ],
      [
        "lambda", "update-function-configuration", "--function-name", "canvas-sync-lambda",
        "--timeout", "60",
      ],
      [
        "sqs", "set-queue-attributes", "--queue-url",
        try XCTUnwrap(exports["QUEUE_URL_TASK_CREATION_QUEUE"]), "--attributes",
        #"{"VisibilityTimeout":"120"}"#,
      ],
      [
        "sqs", "set-queue-attributes", "--queue-url",
        try XCTUnwrap(exports["QUEUE_URL_ASSIGNMENT_EVENTS_QUEUE"]), "--attributes",
        #"{"RedrivePolicy":"{\"deadLetterTargetArn\":\"\#(deadLetter)\",\"maxReceiveCount\":9}"}"#,
      ],
    ] {
      _ = try await workspace.aws(change)
    }

    let before = workspace.stateSnapshot()
    let found = try await workspace.runLogged(["drift", "--json"])
    XCTAssertEqual(found.run.status, 4, found.run.summary)
    XCTAssertEqual(found.calls.filter { $0["write"] as? Bool == true }.count, 0)
    XCTAssertEqual(workspace.stateSnapshot(), before, "drift writes nothing")
    let findings = try driftFindings(found.run)
    let image = "\(registry)/unisync/schedule-service:\(exports["IMAGE_TAG"] ?? "?")"
    let expected: [String: (kind: String, expected: String, actual: String?)] = [
      "rds/instance": ("changed", "db.t3.micro 8.4 True 20", "db.t3.small 8.4 True 20"),
      "secrets/encryption-key": ("missing", "unisync/encryption-key", nil),
      "ecr/repository-course-service": (
        "missing", "\(exports["REPO_URI_COURSE_SERVICE"] ?? "?") True", nil
      ),
      "ecs/service-user-service": (
        "changed", "2 \(exports["TASK_DEF_USER_SERVICE"] ?? "?")",
        "5 \(exports["TASK_DEF_USER_SERVICE"] ?? "?")"
      ),
      // The image from the configured registry (the local one), with the deployment's tag.
      "ecs/task-definition-schedule-service": (
        "changed", "ACTIVE 256 512 \(image)", "INACTIVE 256 512 \(image)"
      ),
      "lambda/function": (
        "changed", "python3.11 512 300 src.handler.lambda_handler",
        "python3.11 512 60 src.handler.lambda_handler"
      ),
      "sqs/queue-task-creation-queue": ("changed", "30 345600", "120 345600"),
      "sqs/queue-assignment-events-queue": (
        "changed", "30 345600 \(deadLetter) 5", "30 345600 \(deadLetter) 9"
      ),
    ]
    XCTAssertEqual(
      Set(findings.map { "\($0["step"] as? String ?? "")/\($0["action"] as? String ?? "")" }),
      Set(expected.keys), "\(findings)")
    for (name, want) in expected {
      let parts = name.split(separator: "/").map(String.init)
      guard let got = finding(findings, parts[0], parts[1]) else { continue }
      XCTAssertEqual(got["kind"] as? String, want.kind, name)
      XCTAssertEqual(got["expected"] as? String, want.expected, name)
      XCTAssertEqual(got["actual"] as? String, want.actual, name)
      // A resource gone is made again by a refresh; what a create made and someone changed is
      // not made again in place (run --refresh refuses it), and the finding says so.
      XCTAssertEqual(
        got["converge"] as? String,
        want.kind == "missing"
          ? "runbook run --refresh \(parts[0])"
          : "set it back in AWS, or make the configuration say what AWS has ('runbook run --refresh \(parts[0])' does not replace it: 'runbook destroy \(parts[0])', then 'runbook run \(parts[0])' does)",
        name)
    }

    // A step alone: its own findings, one line each.
    let queues = try await workspace.run(["drift", "sqs"])
    XCTAssertEqual(queues.status, 4, queues.summary)
    XCTAssertTrue(
      queues.stdout.contains(
        "sqs/queue-task-creation-queue \(exports["QUEUE_URL_TASK_CREATION_QUEUE"] ?? "?")  changed: visibility timeout (s), retention (s) is 120 345600, today's configuration says 30 345600  converge: set it back in AWS, or make the configuration say what AWS has ('runbook run --refresh sqs' does not replace it: 'runbook destroy sqs', then 'runbook run sqs' does)\n"
      ), queues.stdout)
    XCTAssertEqual(queues.stdout.split(separator: "\n").count, 3, queues.stdout)

    // The aws CLI v2 reads the same.
    try AWSCLIV2Tests.use(in: workspace)
    let second = try await workspace.runLogged(["drift", "--json"])
    XCTAssertEqual(second.run.status, 4, second.run.summary)
    XCTAssertEqual(second.calls.filter { $0["write"] as? Bool == true }.count, 0)
    let again = try driftFindings(second.run)
    XCTAssertEqual(
      Set(
        again.map {
          "\($0["step"] ?? "")/\($0["action"] ?? "") \($0["kind"] ?? "") \($0["actual"] ?? "-")"
        }),
      Set(
        findings.map {
          "\($0["step"] ?? "")/\($0["action"] ?? "") \($0["kind"] ?? "") \($0["actual"] ?? "-")"
        }))
  }
}
