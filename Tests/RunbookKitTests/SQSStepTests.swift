import Foundation
import XCTest

@testable import RunbookProcess
@testable import RunbookAWS
@testable import RunbookState
@testable import RunbookEngine
@testable import UniSyncRunbook
@testable import RunbookCLI

/// Guide 8: the commands the SQS step runs, without running them.
final class SQSStepArgvTests: XCTestCase {
  static let queues = [
    "assignment-events-queue-dlq", "assignment-events-queue", "submission-events-queue",
    "task-creation-queue",
    "llm-analysis-queue",
  ]

  func testDeadLetterQueueComesFirstAndEveryQueueExportsItsURLAndARN() throws {
    let deployment = try configuredDeployment()
    let step = SQSStep()
    XCTAssertEqual(
      step.actions(for: deployment).map(\.name),
      ["existing-queues"] + Self.queues.flatMap { ["queue-\($0)", "queue-arn-\($0)"] })
    XCTAssertEqual(step.requiredExports(for: deployment), [])
    XCTAssertEqual(
      Set(step.producedExports(for: deployment)),
      Set(
        Self.queues.flatMap { queue in
          let suffix = queue.uppercased().replacingOccurrences(of: "-", with: "_")
          return ["QUEUE_URL_\(suffix)", "QUEUE_ARN_\(suffix)"]
        }))
    XCTAssertEqual(
      SQSStep.urlExport("assignment-events-queue"), "QUEUE_URL_ASSIGNMENT_EVENTS_QUEUE")
  }

  func testRedrivePolicyNamesTheDeadLetterQueueARNAndTheConfiguredCount() throws {
    var deployment = try configuredDeployment()
    deployment.sqs.maxReceiveCount = 3
    let action = try XCTUnwrap(
      SQSStep().actions(for: deployment).first { $0.name == "queue-assignment-events-queue" })
    let dlqARN = "arn:aws:sqs:ap-northeast-2:123456789012:assignment-events-queue-dlq"
    let attributes = try XCTUnwrap(action.command.argument(after: "--attributes"))
    guard case .document = attributes.fragments.first else {
      return XCTFail("attributes are not a document: \(attributes)")
    }
    let document = try json(
      render(attributes, with: ["QUEUE_ARN_ASSIGNMENT_EVENTS_QUEUE_DLQ": dlqARN]))
    let policy = try XCTUnwrap(
      (document as? [String: Any])?["RedrivePolicy"] as? String, "RedrivePolicy is a JSON string")
    XCTAssertEqual(
      try json(policy) as? NSDictionary,
      ["deadLetterTargetArn": dlqARN, "maxReceiveCount": "3"] as NSDictionary)
    XCTAssertEqual(
      action.exportReferences, ["QUEUE_ARN_ASSIGNMENT_EVENTS_QUEUE_DLQ", ContextValue.lineage])
  }

  func testQueuesWithoutDeadLetterAreIndependent() throws {
    let actions = SQSStep().actions(for: try configuredDeployment())
    let needs = StepExecution.dependencies(of: actions)
    // Every create waits for the one listing of the queues that exist (someone else's queue of
    // the same name is not created over), and nothing else but its dead-letter queue's ARN.
    XCTAssertEqual(
      needs["queue-assignment-events-queue"],
      ["queue-arn-assignment-events-queue-dlq", "existing-queues"])
    XCTAssertEqual(
      needs["queue-arn-assignment-events-queue-dlq"], ["queue-assignment-events-queue-dlq"])
    for queue in [
      "assignment-events-queue-dlq", "submission-events-queue", "task-creation-queue",
      "llm-analysis-queue",
    ] {
      XCTAssertEqual(needs["queue-\(queue)"], ["existing-queues"], queue)
    }
    let withAttributes = actions.filter { $0.command.argument(after: "--attributes") != nil }.map(
      \.name)
    XCTAssertEqual(withAttributes, ["queue-assignment-events-queue"])
  }

  func testCreateIsTaggedRepeatableAndExplainsAConflictingQueue() throws {
    let actions = SQSStep().actions(for: try configuredDeployment())
    let action = try XCTUnwrap(actions.first { $0.name == "queue-llm-analysis-queue" })
    XCTAssertEqual(
      action.command.arguments.prefix(4).map { render($0, with: [:]) },
      ["sqs", "create-queue", "--queue-name", "llm-analysis-queue"])
    let tags = try jsonArgument(action.command, after: "--tags", with: [ContextValue.lineage: "L"])
    XCTAssertEqual(
      tags as? NSDictionary,
      [
        "Name": "llm-analysis-queue", "runbook:deployment": "unisync", "runbook:lineage": "L",
        "runbook:action": "sqs/queue-llm-analysis-queue",
      ] as NSDictionary)
    XCTAssertTrue(action.idempotent)
    XCTAssertEqual(
      action.lookup?.command.arguments.map { render($0, with: [:]) },
      [
        "sqs", "get-queue-url", "--queue-name", "llm-analysis-queue", "--query", "QueueUrl",
        "--output", "text",
      ])
    let advice = try XCTUnwrap(action.errorAdvice["QueueAlreadyExists"])
    XCTAssertTrue(advice.contains("'llm-analysis-queue'"), advice)
    let url = try XCTUnwrap(action.capture)
    XCTAssertTrue(
      url.accepts("https://sqs.ap-northeast-2.amazonaws.com/123456789012/llm-analysis-queue"))
    XCTAssertFalse(
      url.accepts("https://sqs.ap-northeast-2.amazonaws.com/123456789012/llm-analysis-queue-dlq"))
    let arn = try XCTUnwrap(actions.first { $0.name == "queue-arn-llm-analysis-queue" }?.capture)
    XCTAssertTrue(arn.accepts("arn:aws:sqs:ap-northeast-2:123456789012:llm-analysis-queue"))
    XCTAssertFalse(arn.accepts("None"))
  }

  private func json(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8))
  }
}
