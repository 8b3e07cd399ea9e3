import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// Guide 8 against the real aws CLI and the local emulator.
final class SQSStepTests: XCTestCase {
  override func setUp() async throws { try Emulator.reset() }

  static let expectedQueues = [
    "assignment-events-queue", "assignment-events-queue-dlq", "llm-analysis-queue",
    "submission-events-queue",
    "task-creation-queue",
  ]

  func testRunCreatesEveryQueueOnceWithTheRedrivePolicyAndRerunMakesNoCall() async throws {
    let workspace = try Workspace()
    let (first, calls) = try await workspace.runLogged(["run", "sqs", "--yes"])
    XCTAssertEqual(first.status, 0, first.summary)
    let writes = calls.filter { $0["write"] as? Bool == true }
    XCTAssertEqual(writes.count, 5, "one create-queue per queue")

    let queues = try await sqsInventory(workspace)
    XCTAssertEqual(queues.map(\.name), Self.expectedQueues)
    try assertQueuesAndExports(workspace, queues)
    let tags = try await workspace.aws(["sqs", "list-queue-tags", "--queue-url", queues[0].url])
    XCTAssertEqual(
      (tags as? [String: Any])?["Tags"] as? [String: String],
      [
        "Name": "assignment-events-queue", "runbook:deployment": "unisync",
        "runbook:lineage": try workspace.checkpoint().lineage,
        "runbook:action": "sqs/queue-assignment-events-queue",
      ])

    try await assertRerunCallsNothing(workspace, step: "sqs")
  }

  /// 3 of the 5 create-queue calls (every one with `make crash-all`) are interrupted once, right
  /// after AWS answered it.
  func testKilledAfterEveryWriteResumesToExactlyOneOfEach() async throws {
    let workspace = try Workspace()
    try await assertResumesAfterEveryKill(workspace, step: "sqs", writes: 5, sampled: 3)
    let queues = try await sqsInventory(workspace)
    XCTAssertEqual(queues.map(\.name), Self.expectedQueues)
    try assertQueuesAndExports(workspace, queues)
    let outcomes = try workspace.checkpoint().actions.filter { $0.key.hasPrefix("sqs/queue-") }
      .values
      .compactMap(\.outcome)
    XCTAssertEqual(
      outcomes.filter { $0 == .recovered }.count, crashAll ? 5 : 3,
      "each resumed run should have found the earlier write")
  }

  /// The guide's plain `create-queue` run by hand earlier (or someone else's queue of the same
  /// name, in a shared account): CreateQueue would hand it over as if it were new, so the step
  /// stops before creating anything over it, and says how to take it over.
  func testQueueThatExistsAlreadyStopsTheStep() async throws {
    let workspace = try Workspace()
    let created = try await workspace.aws([
      "sqs", "create-queue", "--queue-name", "assignment-events-queue",
    ])
    let url = try XCTUnwrap((created as? [String: Any])?["QueueUrl"] as? String)

    // One job: the step stops at the conflict before it starts the other queues.
    let run = try await workspace.run(["run", "sqs", "--yes", "--jobs", "1"])
    XCTAssertEqual(run.status, 1, run.summary)
    XCTAssertTrue(
      run.stderr.contains("failed at action 'queue-assignment-events-queue'"), run.stderr)
    XCTAssertTrue(
      run.stderr.contains(
        "queue 'assignment-events-queue' exists already, and this deployment did not create it"),
      run.stderr)
    XCTAssertTrue(run.stderr.contains("pass --adopt to use it as it is"), run.stderr)
    let attributes = try await workspace.aws([
      "sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "All",
    ])
    XCTAssertNil(
      ((attributes as? [String: Any])?["Attributes"] as? [String: Any])?["RedrivePolicy"])
    let tags = try await workspace.aws(["sqs", "list-queue-tags", "--queue-url", url])
    XCTAssertEqual(
      (tags as? [String: Any])?["Tags"] as? [String: String] ?? [:], [:],
      "the queue got no tags of this deployment")
    XCTAssertNil(try workspace.checkpoint().exports["QUEUE_URL_ASSIGNMENT_EVENTS_QUEUE"])
    let listed = try await workspace.aws(["sqs", "list-queues"])
    XCTAssertEqual(
      ((listed as? [String: Any])?["QueueUrls"] as? [String] ?? []).map {
        $0.split(separator: "/").last ?? ""
      }.sorted(),
      ["assignment-events-queue", "assignment-events-queue-dlq"])
  }

  /// Someone else's queue, with a message in it: `--adopt` uses it as it is (no tag, no setting
  /// of this deployment's), and `destroy` leaves it whole, message and all.
  func testAdoptedQueueOfSomeoneElseSurvivesDestroyWithItsMessages() async throws {
    let workspace = try Workspace()
    let created = try await workspace.aws([
      "sqs", "create-queue", "--queue-name", "task-creation-queue",
      "--attributes", #"{"VisibilityTimeout":"45"}"#,
    ])
    let url = try XCTUnwrap((created as? [String: Any])?["QueueUrl"] as? String)
    _ = try await workspace.aws([
      "sqs", "send-message", "--queue-url", url, "--message-body", "someone else's work",
    ])

    let run = try await workspace.run(["run", "sqs", "--yes", "--adopt"])
    XCTAssertEqual(run.status, 0, run.summary)
    XCTAssertEqual(
      try workspace.checkpoint().actions["sqs/queue-task-creation-queue"]?.outcome, .adopted)
    let tags = try await workspace.aws(["sqs", "list-queue-tags", "--queue-url", url])
    XCTAssertEqual(
      (tags as? [String: Any])?["Tags"] as? [String: String] ?? [:], [:],
      "an adopted queue gets no tags")

    let destroy = try await workspace.run(["destroy", "--yes", "--force"])
    XCTAssertEqual(destroy.status, 0, destroy.summary)
    let remaining = try await sqsInventory(workspace)
    XCTAssertEqual(remaining.map(\.name), ["task-creation-queue"])
    let attributes = try await workspace.aws([
      "sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "All",
    ])
    let kept = (attributes as? [String: Any])?["Attributes"] as? [String: Any]
    XCTAssertEqual(kept?["VisibilityTimeout"] as? String, "45")
    XCTAssertEqual(kept?["ApproximateNumberOfMessages"] as? String, "1")
  }

  /// Each export names its queue; the source queue redrives to the DLQ after the configured count.
  func assertQueuesAndExports(
    _ workspace: Workspace, _ queues: [QueueState], file: StaticString = #filePath,
    line: UInt = #line
  ) throws {
    let exports = try workspace.checkpoint().exports
    for queue in queues {
      let suffix = queue.name.uppercased().replacingOccurrences(of: "-", with: "_")
      XCTAssertEqual(exports["QUEUE_URL_\(suffix)"], queue.url, queue.name, file: file, line: line)
      XCTAssertEqual(exports["QUEUE_ARN_\(suffix)"], queue.arn, queue.name, file: file, line: line)
    }
    let dlq = try XCTUnwrap(
      queues.first { $0.name == "assignment-events-queue-dlq" }, file: file, line: line)
    let source = try XCTUnwrap(
      queues.first { $0.name == "assignment-events-queue" }, file: file, line: line)
    let policy = try XCTUnwrap(source.redrivePolicy, "no redrive policy", file: file, line: line)
    XCTAssertEqual(policy["deadLetterTargetArn"] as? String, dlq.arn, file: file, line: line)
    XCTAssertEqual(policy["maxReceiveCount"].map { "\($0)" }, "5", file: file, line: line)
    for queue in queues where queue.name != source.name {
      XCTAssertNil(queue.redrivePolicy, queue.name, file: file, line: line)
    }
  }
}

/// One queue as the emulator describes it.
struct QueueState {
  var name: String
  var url: String
  var arn: String?
  var redrivePolicy: [String: Any]?
}

/// Every queue in the emulator, sorted by name.
func sqsInventory(_ workspace: Workspace) async throws -> [QueueState] {
  let listed = try await workspace.aws(["sqs", "list-queues"])
  var queues: [QueueState] = []
  for url in (listed as? [String: Any])?["QueueUrls"] as? [String] ?? [] {
    let described = try await workspace.aws([
      "sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "QueueArn",
      "RedrivePolicy",
    ])
    let attributes = (described as? [String: Any])?["Attributes"] as? [String: String] ?? [:]
    let policy = attributes["RedrivePolicy"].flatMap {
      try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
    queues.append(
      QueueState(
        name: String(url.split(separator: "/").last ?? ""), url: url, arn: attributes["QueueArn"],
        redrivePolicy: policy))
  }
  return queues.sorted { $0.name < $1.name }
}
