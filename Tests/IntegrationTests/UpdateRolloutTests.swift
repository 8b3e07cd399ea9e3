import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// How `update` judges a rollout on real AWS, where a new deployment first runs IN_PROGRESS beside
/// the old one, and may fail or be rolled back by the circuit breaker: scripted answers of the
/// recording fakes of `aws` and `docker` (Tests/Fixtures/bin-fake), a list per call, in turn.
/// The fakes refuse any call they were not told to expect, and each test checks none was.
final class UpdateRolloutTests: XCTestCase {
  static let cluster = "arn:aws:ecs:ap-northeast-2:123456789012:cluster/unisync-cluster"
  static let old = "arn:aws:ecs:ap-northeast-2:123456789012:task-definition/unisync-api-gateway:1"
  static let new = "arn:aws:ecs:ap-northeast-2:123456789012:task-definition/unisync-api-gateway:2"

  static func deployment(
    _ id: String, _ status: String, _ state: String, running: Int, definition: String = new,
    reason: String? = nil
  ) -> [String: Any] {
    var deployment: [String: Any] = [
      "id": id, "status": status, "taskDefinition": definition, "desiredCount": 2,
      "runningCount": running,
      "pendingCount": 2 - running, "failedTasks": 0, "rolloutState": state,
    ]
    if let reason { deployment["rolloutStateReason"] = reason }
    return deployment
  }

  /// One `describe-services` answer: the service on `definition`, with these deployments and events (newest first).
  static func service(_ definition: String, _ deployments: [[String: Any]], events: [String])
    -> [String: Any]
  {
    let service: [String: Any] = [
      "serviceName": "api-gateway", "status": "ACTIVE", "taskDefinition": definition,
      "desiredCount": 2,
      "runningCount": 2, "deployments": deployments,
      "events": events.enumerated().map {
        ["id": "event-\(events.count - $0.offset)", "message": $0.element]
      },
    ]
    return [
      "stdout": String(
        decoding: try! JSONSerialization.data(withJSONObject: ["services": [service]]),
        as: UTF8.self)
    ]
  }

  static func updated(_ id: String) -> [String: Any] {
    let service: [String: Any] = [
      "serviceName": "api-gateway",
      "deployments": [deployment(id, "PRIMARY", "IN_PROGRESS", running: 0)],
    ]
    return [
      "stdout": String(
        decoding: try! JSONSerialization.data(withJSONObject: ["service": service]), as: UTF8.self)
    ]
  }

  /// Before the update: one settled deployment on revision 1.
  nonisolated(unsafe) static let settled = service(
    old, [deployment("ecs-svc/1", "PRIMARY", "COMPLETED", running: 2, definition: old)],
    events: ["(service api-gateway) has reached a steady state."])

  /// Answers for `run update --tag v2 --service api-gateway`, with these `describe-services` answers.
  static func answers(describe: [[String: Any]], updates: [[String: Any]]) -> [String: Any] {
    let definition: [String: Any] = [
      "taskDefinitionArn": old, "family": "unisync-api-gateway", "revision": 1, "status": "ACTIVE",
      "compatibilities": ["EC2", "FARGATE"], "requiresCompatibilities": ["FARGATE"],
      "networkMode": "awsvpc",
      "cpu": "256", "memory": "512",
      "containerDefinitions": [
        [
          "name": "api-gateway", "image": "127.0.0.1:5000/unisync/api-gateway:v1",
          "essential": true,
        ]
      ],
    ]
    let described = String(
      decoding: try! JSONSerialization.data(withJSONObject: [
        "taskDefinition": definition, "tags": [],
      ]), as: UTF8.self)
    return [
      "sts get-caller-identity": ["stdout": "123456789012\n"],
      "ecr get-login-password": ["stdout": "token\n"],
      "docker version": ["stdout": "27.5.1\n"],
      "docker login": ["stdout": "Login Succeeded\n"],
      "docker build": ["stdout": "Successfully built 0123456789ab\n"],
      "docker push": [
        "stdout": "v2: digest: sha256:\(String(repeating: "cd", count: 32)) size: 524\n"
      ],
      "ecs describe-task-definition": ["stdout": described],
      "ecs register-task-definition": ["stdout": new + "\n"],
      "ecs describe-services": describe,
      "ecs update-service": updates,
    ]
  }

  /// Runs the update against the fakes; returns the run, the aws calls and the checkpoint's exports.
  func update(_ answers: [String: Any], timeout: Int = 60, name: String = #function) async throws
    -> (run: ToolRun, calls: [[String: Any]], exports: [String: String])
  {
    let workspace = try Workspace(name: name) { config in
      var ecs = config["ecs"] as? [String: Any] ?? [:]
      ecs["deploymentTimeoutSeconds"] = timeout
      config["ecs"] = ecs
    }
    // What the earlier steps would have recorded.
    var checkpoint = Checkpoint(deployment: "unisync", region: "ap-northeast-2")
    checkpoint.account = "123456789012"
    checkpoint.exports = ["CLUSTER_ARN": Self.cluster, "TASK_DEF_API_GATEWAY": Self.old]
    try StateDirectory(path: workspace.stateDirectory).prepare()
    try StateDirectory(path: workspace.stateDirectory).save(checkpoint)
    let log = workspace.directory.appendingPathComponent("fake.log").path
    let responses = workspace.directory.appendingPathComponent("responses.json")
    try JSONSerialization.data(withJSONObject: answers).write(to: responses)
    let run = try await workspace.run(
      ["run", "update", "--tag", "v2", "--service", "api-gateway", "--yes"],
      environment: [
        "PATH": repositoryRoot.appendingPathComponent("Tests/Fixtures/bin-fake").path + ":"
          + Workspace.shimmedPath,
        "RUNBOOK_FAKE_LOG": log, "RUNBOOK_FAKE_RESPONSES": responses.path,
      ])
    let calls = loggedAWSCalls(log)
    XCTAssertEqual(
      calls.filter { $0["refused"] as? Bool == true }.compactMap { $0["argv"] as? [String] }, [],
      "calls the fakes were not told to expect")
    return (run, calls, try workspace.checkpoint().exports)
  }

  /// The task definitions `update-service` was given, in order.
  func updates(_ calls: [[String: Any]]) -> [String] {
    calls.filter { $0["key"] as? String == "ecs update-service" }.compactMap { call in
      let argv = call["argv"] as? [String] ?? []
      return argv.firstIndex(of: "--task-definition").map { argv[$0 + 1] }
    }
  }

  func testInProgressThenCompletedSucceedsPrintingEventsAndDeploymentChanges() async throws {
    let answers = Self.answers(
      describe: [
        Self.settled,
        Self.service(
          Self.new,
          [
            Self.deployment("ecs-svc/2", "PRIMARY", "IN_PROGRESS", running: 1),
            Self.deployment("ecs-svc/1", "ACTIVE", "COMPLETED", running: 1, definition: Self.old),
          ],
          events: [
            "(service api-gateway) has started 1 tasks: (task 1a2b).",
            "(service api-gateway) has reached a steady state.",
          ]),
        Self.service(
          Self.new, [Self.deployment("ecs-svc/2", "PRIMARY", "COMPLETED", running: 2)],
          events: [
            "(service api-gateway) has reached a steady state.",
            "(service api-gateway) has started 1 tasks: (task 1a2b).",
            "(service api-gateway) has reached a steady state.",
          ]),
      ], updates: [Self.updated("ecs-svc/2")])
    let (run, calls, exports) = try await update(answers)
    XCTAssertEqual(run.status, 0, run.summary)
    XCTAssertEqual(updates(calls), [Self.new])
    for line in [
      "[api-gateway]   containerDefinitions[api-gateway].image: 127.0.0.1:5000/unisync/api-gateway:v1 -> 127.0.0.1:5000/unisync/api-gateway:v2",
      "[api-gateway] registered unisync-api-gateway:2",
      "[api-gateway] deployment ecs-svc/2 PRIMARY IN_PROGRESS: running 1/2",
      "[api-gateway] event: (service api-gateway) has started 1 tasks: (task 1a2b).",
      "[api-gateway] deployment ecs-svc/2 PRIMARY COMPLETED: running 2/2",
      "api-gateway         updated      unisync-api-gateway:2             ecs-svc/2 COMPLETED",
    ] {
      XCTAssertTrue(run.stdout.contains(line), "missing '\(line)' in:\n\(run.stdout)")
    }
    // Only events that are new since the update are printed, each once.
    XCTAssertEqual(
      run.stdout.components(separatedBy: "event: (service api-gateway) has reached a steady state.")
        .count, 2)
    XCTAssertEqual(exports["ROLLBACK_TASK_DEF_API_GATEWAY"], Self.old)
    XCTAssertEqual(exports["TASK_DEF_API_GATEWAY"], Self.new)
    // The new task definition is the described one with the new image, without the read-only fields.
    let register = try XCTUnwrap(
      calls.first { $0["key"] as? String == "ecs register-task-definition" })
    let argv = register["argv"] as? [String] ?? []
    XCTAssertTrue(argv.contains("--cli-input-json"), "\(argv)")
    XCTAssertFalse(
      calls.contains { $0["key"] as? String == "ecs wait" }, "never aws ecs wait services-stable")
  }

  func testAFailedDeploymentIsRolledBackAndTheRunFails() async throws {
    let answers = Self.answers(
      describe: [
        Self.settled,
        Self.service(
          Self.new,
          [
            Self.deployment("ecs-svc/2", "PRIMARY", "IN_PROGRESS", running: 0),
            Self.deployment("ecs-svc/1", "ACTIVE", "COMPLETED", running: 2, definition: Self.old),
          ], events: ["(service api-gateway) has reached a steady state."]),
        Self.service(
          Self.new,
          [
            Self.deployment(
              "ecs-svc/2", "PRIMARY", "FAILED", running: 0,
              reason: "ECS deployment circuit breaker: tasks failed to start."),
            Self.deployment("ecs-svc/1", "ACTIVE", "COMPLETED", running: 2, definition: Self.old),
          ], events: ["(service api-gateway) deployment failed: tasks failed to start."]),
        // Back to revision 1: a new deployment, then done.
        Self.service(
          Self.old,
          [
            Self.deployment(
              "ecs-svc/3", "PRIMARY", "IN_PROGRESS", running: 1, definition: Self.old),
            Self.deployment("ecs-svc/2", "ACTIVE", "FAILED", running: 0),
          ], events: ["(service api-gateway) deployment failed: tasks failed to start."]),
        Self.service(
          Self.old,
          [Self.deployment("ecs-svc/3", "PRIMARY", "COMPLETED", running: 2, definition: Self.old)],
          events: ["(service api-gateway) has reached a steady state."]),
      ], updates: [Self.updated("ecs-svc/2"), Self.updated("ecs-svc/3")])
    let (run, calls, exports) = try await update(answers)
    XCTAssertEqual(run.status, 1, run.summary)
    XCTAssertEqual(updates(calls), [Self.new, Self.old], "update to revision 2, then back to 1")
    XCTAssertTrue(
      run.stderr.contains(
        "api-gateway: deployment ecs-svc/2 failed (ECS deployment circuit breaker: tasks failed to start.); back on unisync-api-gateway:1"
      ),
      run.stderr)
    XCTAssertTrue(
      run.stdout.contains("[api-gateway] deployment ecs-svc/3 PRIMARY COMPLETED: running 2/2"),
      run.stdout)
    XCTAssertTrue(
      run.stdout.contains("api-gateway         rolled back  unisync-api-gateway:1"), run.stdout)
    XCTAssertEqual(exports["TASK_DEF_API_GATEWAY"], Self.old)
    XCTAssertEqual(exports["ROLLBACK_TASK_DEF_API_GATEWAY"], Self.old)
  }

  func testADeploymentTheCircuitBreakerRolledBackIsAFailure() async throws {
    let rollback = Self.deployment(
      "ecs-svc/9", "PRIMARY", "IN_PROGRESS", running: 1, definition: Self.old)
    let answers = Self.answers(
      describe: [
        Self.settled,
        Self.service(
          Self.new,
          [
            Self.deployment("ecs-svc/2", "PRIMARY", "IN_PROGRESS", running: 0),
            Self.deployment("ecs-svc/1", "ACTIVE", "COMPLETED", running: 2, definition: Self.old),
          ], events: ["(service api-gateway) has reached a steady state."]),
        // ECS rolled back by itself: deployment 2 is gone, a rollback deployment runs revision 1.
        Self.service(
          Self.old, [rollback],
          events: [
            "(service api-gateway) rolling back to deployment ecs-svc/1.",
            "(service api-gateway) has reached a steady state.",
          ]),
        Self.service(
          Self.old, [rollback],
          events: ["(service api-gateway) rolling back to deployment ecs-svc/1."]),
        Self.service(
          Self.old,
          [Self.deployment("ecs-svc/9", "PRIMARY", "COMPLETED", running: 2, definition: Self.old)],
          events: ["(service api-gateway) has reached a steady state."]),
      ], updates: [Self.updated("ecs-svc/2")])
    let (run, calls, exports) = try await update(answers)
    XCTAssertEqual(run.status, 1, run.summary)
    XCTAssertEqual(updates(calls), [Self.new], "ECS went back by itself: the tool waits for that")
    XCTAssertTrue(
      run.stderr.contains(
        "deployment ecs-svc/2 failed (deployment ecs-svc/2 is gone: ECS rolled it back (deployment circuit breaker); last event: (service api-gateway) rolling back to deployment ecs-svc/1.)"
      ),
      run.stderr)
    XCTAssertTrue(
      run.stdout.contains("[api-gateway] deployment ecs-svc/9 PRIMARY COMPLETED: running 2/2"),
      run.stdout)
    XCTAssertEqual(exports["TASK_DEF_API_GATEWAY"], Self.old)
  }

  func testARolloutThatNeverEndsTimesOutAndGoesBack() async throws {
    let stuck = Self.service(
      Self.new,
      [
        Self.deployment("ecs-svc/2", "PRIMARY", "IN_PROGRESS", running: 1),
        Self.deployment("ecs-svc/1", "ACTIVE", "COMPLETED", running: 1, definition: Self.old),
      ], events: ["(service api-gateway) has reached a steady state."])
    let back = Self.service(
      Self.old,
      [Self.deployment("ecs-svc/3", "PRIMARY", "COMPLETED", running: 2, definition: Self.old)],
      events: ["(service api-gateway) has reached a steady state."])
    // The service answers by what the tool did, not by how often it looked (that depends on the
    // machine's speed): settled before the update, stuck after it for as long as the tool looks,
    // and back on revision 1 once the tool has sent it back.
    var answers = Self.answers(
      describe: [], updates: [Self.updated("ecs-svc/2"), Self.updated("ecs-svc/3")])
    answers["ecs describe-services"] = [
      "after": "ecs update-service", "answers": [Self.settled, stuck, back],
    ]
    let (run, calls, exports) = try await update(answers, timeout: 2)
    XCTAssertEqual(run.status, 1, run.summary)
    XCTAssertTrue(
      run.stderr.contains("deployment ecs-svc/2 failed (still IN_PROGRESS after"), run.stderr)
    XCTAssertTrue(run.stderr.contains("(ecs.deploymentTimeoutSeconds 2)"), run.stderr)
    // The way back: the service is sent back to revision 1, and the tool waits until it is there.
    XCTAssertEqual(updates(calls), [Self.new, Self.old], "update to revision 2, then back to 1")
    XCTAssertTrue(run.stderr.contains("back on unisync-api-gateway:1"), run.stderr)
    XCTAssertTrue(
      run.stdout.contains("[api-gateway] deployment ecs-svc/3 PRIMARY COMPLETED: running 2/2"),
      run.stdout)
    XCTAssertTrue(
      run.stdout.contains("api-gateway         rolled back  unisync-api-gateway:1"), run.stdout)
    XCTAssertEqual(exports["TASK_DEF_API_GATEWAY"], Self.old)
    XCTAssertEqual(exports["ROLLBACK_TASK_DEF_API_GATEWAY"], Self.old)
  }
}
